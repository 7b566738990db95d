/* The stack's high-water mark and its guard (docs/protocol.md: STACK, OVERFLOW).
 *
 * At reset every word of the stack below the reset code's own frame is painted with a pattern;
 * the high-water mark is then the distance from the top of the stack down to the lowest word that
 * no longer holds it. The lowest MCD_STACK_GUARD_BYTES are never reached by a firmware whose stack
 * is sized as mcudeploy sizes it (they are part of the room kept for a fault's exception frame):
 * after each request they must still hold the pattern, else the stack overflowed and the device
 * stops with exit status 3 instead of answering. */
#include "runtime.h"

extern uint32_t __stack_limit__[], __stack_top__[];

#define GUARD_WORDS (MCD_STACK_GUARD_BYTES / 4u)
#define OVERFLOW_EXIT_CODE 3u

void mcd_stack_paint(void) {
    uint32_t *sp;
    __asm volatile("mov %0, sp" : "=r"(sp));
    for (uint32_t *p = __stack_limit__; p < sp; p++) {
        *p = MCD_STACK_PAINT;
    }
}

uint32_t mcd_stack_bytes(void) { return (uint32_t)((uintptr_t)__stack_top__ - (uintptr_t)__stack_limit__); }

uint32_t mcd_stack_used(void) {
    const uint32_t *p = __stack_limit__;
    while (p < __stack_top__ && *p == MCD_STACK_PAINT) {
        p++;
    }
    return (uint32_t)((uintptr_t)__stack_top__ - (uintptr_t)p);
}

void mcd_stack_check(void) {
    for (uint32_t i = 0; i < GUARD_WORDS; i++) {
        if (__stack_limit__[i] != MCD_STACK_PAINT) {
            uint8_t packet[MCD_HEADER_BYTES + 8u + MCD_CRC_BYTES];
            mcd_put32(packet + MCD_HEADER_BYTES, mcd_stack_bytes());
            mcd_put32(packet + MCD_HEADER_BYTES + 4u, mcd_stack_used());
            mcd_uart_putc(0); /* end whatever partial frame was on the line */
            mcd_packet_send(packet, 8u, MCD_OVERFLOW, MCD_SEQ_UNSOLICITED);
            mcd_exit_after_report(OVERFLOW_EXIT_CODE);
        }
    }
}
