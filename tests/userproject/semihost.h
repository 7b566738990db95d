/* Semihosting: text to the debugger's console, and the exit status. */
#ifndef SEMIHOST_H
#define SEMIHOST_H

#include <stdint.h>

static inline uint32_t semihost_call(uint32_t operation, const void *argument)
{
    register uint32_t r0 __asm("r0") = operation;
    register const void *r1 __asm("r1") = argument;
    __asm volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

static inline void semihost_print(const char *text) { semihost_call(0x04u, text); } /* SYS_WRITE0 */

static inline void semihost_exit(uint32_t status)
{
    const uint32_t block[2] = {0x20026u, status}; /* ADP_Stopped_ApplicationExit */
    semihost_call(0x20u, block);                   /* SYS_EXIT_EXTENDED */
    for (;;) {
    }
}

#endif
