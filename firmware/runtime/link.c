/* The link layer: frames in, responses out, repeats answered without running a request twice.
 *
 * One buffer holds the frame being received, the request decoded in place and then its response,
 * built over the request's body: the device does nothing else while it executes a request. A
 * repeat of the last request (same seq and CRC) overwrote that response as it arrived, so it is
 * answered again: from the copy kept of an INVOKE's or STACK's response (running the model again
 * would advance a stateful model; the stack's mark may move), else by executing it again, which
 * gives the same bytes (HELLO, READ, WRITE and RESET change nothing a second time, and nothing
 * ran in between). */
#include <string.h>

#include "runtime.h"

/* The longest response body kept: INVOKE's 10 bytes (STACK's are 8, an ERROR's 1). */
#define KEPT_BODY 10u

static uint8_t frame[MCD_MAX_FRAME];

/* The last executed request (seq and CRC identify a retransmission) and, for INVOKE and STACK,
 * its response (`kept`: 0 until one is). */
static struct {
    uint8_t kept;
    uint8_t type;
    uint8_t len;
    uint16_t seq;
    uint32_t crc;
    uint8_t body[KEPT_BODY];
} last;

static void nak(uint8_t reason) {
    uint8_t packet[MCD_HEADER_BYTES + 1u + MCD_CRC_BYTES];
    packet[MCD_HEADER_BYTES] = reason;
    mcd_packet_send(packet, 1, MCD_NAK, MCD_SEQ_UNSOLICITED);
}

static int keeps_response(uint8_t request) { return request == MCD_INVOKE || request == MCD_STACK; }

static void handle_frame(size_t n) {
    int32_t len = mcd_cobs_decode(frame, n, frame);
    if (len < 0) {
        nak(MCD_NAK_COBS);
        return;
    }
    if ((size_t)len < MCD_HEADER_BYTES + MCD_CRC_BYTES) {
        nak(MCD_NAK_TOO_SHORT);
        return;
    }
    size_t body_len = (size_t)len - MCD_HEADER_BYTES - MCD_CRC_BYTES;
    uint32_t crc = mcd_get32(frame + MCD_HEADER_BYTES + body_len);
    if (mcd_crc32(frame, MCD_HEADER_BYTES + body_len) != crc) {
        nak(MCD_NAK_CRC);
        return;
    }
    uint16_t seq = mcd_get16(frame + 2);
    uint8_t *body = frame + MCD_HEADER_BYTES;
    if (last.kept && last.seq == seq && last.crc == crc) {
        memcpy(body, last.body, last.len);
        mcd_packet_send(frame, last.len, last.type, seq);
        return;
    }
    uint8_t request = frame[0];
    mcd_response r = mcd_execute(request, body, body_len, body);
    last.kept = (uint8_t)(keeps_response(request) && r.len <= KEPT_BODY);
    last.type = r.type;
    last.len = (uint8_t)(last.kept ? r.len : 0u);
    last.seq = seq;
    last.crc = crc;
    if (last.kept) {
        memcpy(last.body, body, r.len);
    }
    mcd_packet_send(frame, r.len, r.type, seq);
    if (r.exit_code >= 0) {
        mcd_uart_flush();
        mcd_exit((uint32_t)r.exit_code);
    }
}

void mcd_serve(void) {
    size_t n = 0;
    int overflow = 0;
    for (;;) {
        uint8_t c = mcd_uart_getc();
        if (c != 0) {
            if (n < sizeof frame) {
                frame[n++] = c;
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
