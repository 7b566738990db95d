/* Stopping the device: semihosting exit where the board has it; else (a real board, no debugger to
 * stop for) a system reset, so that the board serves the next run without a press of its button. */
#include "runtime.h"

#define SYS_EXIT_EXTENDED 0x20u
#define ADP_STOPPED_APPLICATION_EXIT 0x20026u
#define SCB_AIRCR MCD_REG(0xE000ED0Cu)
#define AIRCR_VECTKEY_SYSRESETREQ 0x05FA0004u
/* Polls of the UART without a byte that end the drain (a few milliseconds). */
#define QUIET_POLLS 200000u

void mcd_exit_after_report(uint32_t code) {
    mcd_uart_flush();
    for (uint32_t quiet = 0; quiet < QUIET_POLLS; quiet++) {
        if (mcd_uart_take() >= 0) {
            quiet = 0;
        }
    }
    mcd_exit(code);
}

void mcd_exit(uint32_t code) {
#if MCD_SEMIHOSTING
    uint32_t block[2] = {ADP_STOPPED_APPLICATION_EXIT, code};
    register uint32_t r0 __asm("r0") = SYS_EXIT_EXTENDED;
    register uint32_t *r1 __asm("r1") = block;
    __asm volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
#else
    (void)code;
    SCB_AIRCR = AIRCR_VECTKEY_SYSRESETREQ;
    __asm volatile("dsb" ::: "memory");
#endif
    for (;;) {
        __asm volatile("wfi");
    }
}
