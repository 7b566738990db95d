/* SysTick on the CPU clock as a 64-bit tick counter: the 24-bit down-counter plus its wraps. */
#include "runtime.h"

#define SYST_CSR MCD_REG(0xE000E010u)
#define SYST_RVR MCD_REG(0xE000E014u)
#define SYST_CVR MCD_REG(0xE000E018u)
#define SCB_ICSR MCD_REG(0xE000ED04u)

#define RELOAD 0x00FFFFFFu
#define CSR_ENABLE_TICKINT_CPUCLK 7u
#define ICSR_PENDSTSET (1u << 26)

static volatile uint32_t wraps;

void SysTick_Handler(void) { wraps++; }

void mcd_ticks_init(void) {
    SYST_RVR = RELOAD;
    SYST_CVR = 0;
    SYST_CSR = CSR_ENABLE_TICKINT_CPUCLK;
    /* The counter reads 0 until its first reload (one tick), which mcd_ticks would take for a
     * whole period elapsed: wait for it, so that even the first reads are right. */
    while (SYST_CVR == 0) {
    }
}

uint64_t mcd_ticks(void) {
    uint32_t primask;
    __asm volatile("mrs %0, primask\n\tcpsid i" : "=r"(primask) : : "memory");
    uint32_t count = wraps;
    uint32_t value = SYST_CVR;
    /* A wrap whose interrupt is still pending: the value read after it is near RELOAD. */
    if ((SCB_ICSR & ICSR_PENDSTSET) && value > RELOAD / 2u) {
        count++;
    }
    __asm volatile("msr primask, %0" : : "r"(primask) : "memory");
    return ((uint64_t)count << 24) + (RELOAD - value);
}
