/*
 * The user's start-up code: vector table, Reset_Handler (FPU on, .data copied, .bss zeroed, main),
 * faults and exit through semihosting. The symbols are the CubeMX linker script's.
 */
#include <stdint.h>

#include "semihost.h"

extern uint32_t _estack, _sidata, _sdata, _edata, _sbss, _ebss;
int main(void);
void Reset_Handler(void);
void Fault_Handler(void);

__attribute__((section(".isr_vector"), used)) const struct {
    uint32_t *stack_top;
    void (*handlers[15])(void);
} vector_table = {
    &_estack,
    {Reset_Handler, Fault_Handler, Fault_Handler, Fault_Handler, Fault_Handler, Fault_Handler, 0, 0, 0, 0,
     Fault_Handler, Fault_Handler, 0, Fault_Handler, Fault_Handler},
};

void Reset_Handler(void)
{
    *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20; /* CPACR: CP10, CP11 (FPU, MVE) */
    __asm volatile("dsb\n\tisb" ::: "memory");
    for (uint32_t *src = &_sidata, *dst = &_sdata; dst < &_edata;) {
        *dst++ = *src++;
    }
    for (uint32_t *dst = &_sbss; dst < &_ebss;) {
        *dst++ = 0;
    }
    semihost_exit((uint32_t)main());
}

void Fault_Handler(void)
{
    semihost_print("fault\n");
    semihost_exit(3);
}
