/* Stopping the device: semihosting exit where the board has it, else sleep forever. */
#include "runtime.h"

#define SYS_EXIT_EXTENDED 0x20u
#define ADP_STOPPED_APPLICATION_EXIT 0x20026u

void mcd_exit(uint32_t code) {
#if MCD_SEMIHOSTING
    uint32_t block[2] = {ADP_STOPPED_APPLICATION_EXIT, code};
    register uint32_t r0 __asm("r0") = SYS_EXIT_EXTENDED;
    register uint32_t *r1 __asm("r1") = block;
    __asm volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
#else
    (void)code;
#endif
    for (;;) {
        __asm volatile("wfi");
    }
}
