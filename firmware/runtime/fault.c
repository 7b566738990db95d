/* Fault handling: report the fault registers and the stacked PC/LR/xPSR to the host, then stop. */
#include "runtime.h"

#define SCB_SHCSR MCD_REG(0xE000ED24u)
#define SCB_CFSR MCD_REG(0xE000ED28u)
#define SCB_HFSR MCD_REG(0xE000ED2Cu)
#define SCB_MMFAR MCD_REG(0xE000ED34u)
#define SCB_BFAR MCD_REG(0xE000ED38u)

#define SHCSR_MEM_BUS_USAGE_FAULT_ENA (7u << 16)
#define FAULT_EXIT_CODE 3u
#define FAULT_WORDS 8u
#define FRAME_WORDS 8u
#define NO_FRAME 0xFFFFFFFFu

/* Exception frame words: r0 r1 r2 r3 r12 lr pc xpsr. */
#define FRAME_LR 5
#define FRAME_PC 6
#define FRAME_XPSR 7

/* The handler runs on its own stack, so that a stack overflow can still be reported: the top of
 * the arena (linker.ld.j2), whose contents are dead once a fault is reported. */
extern uint32_t __stack_limit__[], __stack_top__[], __fault_stack_top__[];

void mcd_fault_report(const uint32_t *frame) __attribute__((noreturn, used));

void mcd_faults_init(void) {
#if MCD_HAS_CFSR
    SCB_SHCSR |= SHCSR_MEM_BUS_USAGE_FAULT_ENA;
#endif
}

/* Picks the stack the exception frame was pushed to (EXC_RETURN bit 2: PSP), then switches to
 * the fault stack (its top is 8-byte aligned), lifting the v8-M stack limit first. Thumb-1
 * instructions only. */
__attribute__((naked)) void mcd_fault_entry(void) {
    __asm volatile(
        "mov r1, lr\n\t"
        "movs r0, #4\n\t"
        "tst r0, r1\n\t"
        "beq 1f\n\t"
        "mrs r0, psp\n\t"
        "b 2f\n"
        "1:\n\t"
        "mrs r0, msp\n"
        "2:\n\t"
#if MCD_HAS_MSPLIM
        "movs r2, #0\n\t"
        "msr msplim, r2\n\t"
#endif
        "ldr r2, =__fault_stack_top__\n\t"
        "mov sp, r2\n\t"
        "bl mcd_fault_report\n\t"
        ".ltorg");
}

void mcd_fault_report(const uint32_t *frame) {
    uint32_t ipsr;
    __asm volatile("mrs %0, ipsr" : "=r"(ipsr));
    /* The CPU pushed no frame when it lies outside the stack (an overflow below the stack's
     * region, where reading it could fault again) or still holds the stack's paint (an entry the
     * stack limit cut short): then PC, LR and xPSR are reported as NO_FRAME. */
    uint32_t pc = NO_FRAME, lr = NO_FRAME, xpsr = NO_FRAME;
    if (frame >= __stack_limit__ && frame + FRAME_WORDS <= __stack_top__ &&
        frame[FRAME_PC] != MCD_STACK_PAINT) {
        pc = frame[FRAME_PC];
        lr = frame[FRAME_LR];
        xpsr = frame[FRAME_XPSR];
    }
#if MCD_HAS_CFSR
    const uint32_t words[FAULT_WORDS] = {SCB_CFSR, SCB_HFSR, SCB_MMFAR, SCB_BFAR,
                                         pc,       lr,       xpsr,      ipsr & 0x1FFu};
#else
    const uint32_t words[FAULT_WORDS] = {0, 0, 0, 0, pc, lr, xpsr, ipsr & 0x3Fu};
#endif
    uint8_t packet[MCD_HEADER_BYTES + 4u * FAULT_WORDS + MCD_CRC_BYTES];
    for (uint32_t i = 0; i < FAULT_WORDS; i++) {
        mcd_put32(packet + MCD_HEADER_BYTES + 4u * i, words[i]);
    }
    mcd_uart_putc(0); /* end whatever partial frame was on the line */
    mcd_packet_send(packet, 4u * FAULT_WORDS, MCD_FAULT, MCD_SEQ_UNSOLICITED);
    mcd_exit_after_report(FAULT_EXIT_CODE);
}
