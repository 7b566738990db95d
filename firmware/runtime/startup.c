/* Reset and the vector table: the first code that runs. */
#include "runtime.h"

int main(void);

/* Linker script symbols (mcudeploy/codegen/templates/linker.ld.j2). */
extern uint32_t __data_load__[], __data_start__[], __data_end__[];
extern uint32_t __bss_start__[], __bss_end__[];
extern uint32_t __stack_limit__[], __stack_top__[];

#define SCB_VTOR MCD_REG(0xE000ED08u)
#define SCB_CPACR MCD_REG(0xE000ED88u)
#define CPACR_CP10_CP11_FULL (0xFu << 20)

typedef void (*mcd_handler)(void);

/* The architecture's 16 system vectors; no device interrupt is used. */
typedef struct {
    uint32_t *initial_sp;
    mcd_handler handlers[15];
} mcd_vector_table;

__attribute__((section(".vectors"), used)) const mcd_vector_table mcd_vectors = {
    .initial_sp = __stack_top__,
    .handlers = {
        Reset_Handler,
        mcd_fault_entry, /* NMI */
        mcd_fault_entry, /* HardFault */
        mcd_fault_entry, /* MemManage */
        mcd_fault_entry, /* BusFault */
        mcd_fault_entry, /* UsageFault */
        mcd_fault_entry, /* SecureFault (v8-M) */
        0, 0, 0,
        mcd_fault_entry, /* SVCall */
        mcd_fault_entry, /* DebugMonitor */
        0,
        mcd_fault_entry, /* PendSV */
        SysTick_Handler,
    },
};

void Reset_Handler(void) {
#if MCD_HAS_FPU
    SCB_CPACR |= CPACR_CP10_CP11_FULL;
    __asm volatile("dsb\n\tisb" ::: "memory");
#endif
#if MCD_HAS_MSPLIM
    /* Stack overflow becomes a UsageFault (STKOF) instead of silent corruption. */
    __asm volatile("msr msplim, %0" : : "r"(__stack_limit__));
#endif
#if MCD_HAS_CFSR
    SCB_VTOR = (uint32_t)(uintptr_t)&mcd_vectors;
#endif
    for (uint32_t *src = __data_load__, *dst = __data_start__; dst < __data_end__;) {
        *dst++ = *src++;
    }
    for (uint32_t *dst = __bss_start__; dst < __bss_end__;) {
        *dst++ = 0;
    }
    main();
    mcd_exit(0);
}
