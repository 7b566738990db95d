/* The link layer: frames in, responses out, repeats answered from the cache of the last one. */
#include "runtime.h"

static uint8_t rx[MCD_MAX_FRAME];
static uint8_t tx[MCD_MAX_PACKET];

/* The last executed request (seq and CRC identify a retransmission) and its response. */
static struct {
    int valid;
    uint16_t seq;
    uint32_t crc;
    uint8_t type;
    uint16_t len;
} last;

static void nak(uint8_t reason) {
    uint8_t packet[MCD_HEADER_BYTES + 1u + MCD_CRC_BYTES];
    packet[MCD_HEADER_BYTES] = reason;
    mcd_packet_send(packet, 1, MCD_NAK, MCD_SEQ_UNSOLICITED);
}

static void handle_frame(size_t n) {
    int32_t len = mcd_cobs_decode(rx, n, rx);
    if (len < 0) {
        nak(MCD_NAK_COBS);
        return;
    }
    if ((size_t)len < MCD_HEADER_BYTES + MCD_CRC_BYTES) {
        nak(MCD_NAK_TOO_SHORT);
        return;
    }
    size_t body_len = (size_t)len - MCD_HEADER_BYTES - MCD_CRC_BYTES;
    uint32_t crc = mcd_get32(rx + MCD_HEADER_BYTES + body_len);
    if (mcd_crc32(rx, MCD_HEADER_BYTES + body_len) != crc) {
        nak(MCD_NAK_CRC);
        return;
    }
    uint16_t seq = mcd_get16(rx + 2);
    if (!(last.valid && last.seq == seq && last.crc == crc)) {
        mcd_response r = mcd_execute(rx[0], rx + MCD_HEADER_BYTES, body_len, tx + MCD_HEADER_BYTES);
        last.valid = 1;
        last.seq = seq;
        last.crc = crc;
        last.type = r.type;
        last.len = r.len;
        if (r.exit_code >= 0) {
            mcd_packet_send(tx, r.len, r.type, seq);
            mcd_uart_flush();
            mcd_exit((uint32_t)r.exit_code);
        }
    }
    mcd_packet_send(tx, last.len, last.type, seq);
}

void mcd_serve(void) {
    size_t n = 0;
    int overflow = 0;
    for (;;) {
        uint8_t c = mcd_uart_getc();
        if (c != 0) {
            if (n < sizeof rx) {
                rx[n++] = c;
            } else {
                overflow = 1;
            }
            continue;
        }
        if (overflow) {
            nak(MCD_NAK_TOO_LONG);
        } else if (n > 0) {
            handle_frame(n);
        }
        n = 0;
        overflow = 0;
    }
}
