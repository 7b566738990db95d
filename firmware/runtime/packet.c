/* Packets: header, body, CRC-32; sent as one COBS frame and a 0x00 delimiter. */
#include "runtime.h"

void mcd_packet_send(uint8_t *packet, size_t body_len, uint8_t type, uint16_t seq) {
    packet[0] = type;
    packet[1] = 0; /* flags */
    mcd_put16(packet + 2, seq);
    size_t n = MCD_HEADER_BYTES + body_len;
    mcd_put32(packet + n, mcd_crc32(packet, n));
    mcd_cobs_encode(packet, n + MCD_CRC_BYTES, mcd_uart_putc);
    mcd_uart_putc(0);
}
