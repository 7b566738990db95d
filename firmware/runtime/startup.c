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

/* The architecture's 16 system vectors, then the device interrupts up to the UART's receive
 * interrupt, the only one used; the others report themselves as faults. VTOR needs the table
 * aligned to its size rounded up to a power of two: it starts its region (linker.ld.j2). */
typedef struct {
    uint32_t *initial_sp;
    mcd_handler handlers[15];
#ifdef MCD_UART_RX_IRQ
    mcd_handler irqs[MCD_UART_RX_IRQ + 1];
#endif
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
#ifdef MCD_UART_RX_IRQ
    .irqs = {
#if MCD_UART_RX_IRQ > 0
        [0 ... MCD_UART_RX_IRQ - 1] = mcd_fault_entry,
#endif
        [MCD_UART_RX_IRQ] = mcd_uart_rx_irq,
    },
#endif
};

void Reset_Handler(void) {
    mcd_stack_paint();
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
