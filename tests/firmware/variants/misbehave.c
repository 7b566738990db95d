/*
 * Test-only firmware variant (tests/test_faults.py): the real generated model, misbehaving on
 * purpose through the runtime's MCD_TEST_LAYER_HOOK (firmware/runtime/runtime.h). Defines:
 *   MCD_TEST_LAYER_HOOK  mcd_test_misbehave
 *   MCD_TEST_MISBEHAVE   1 BusFault (load from an unmapped address), 2 endless loop,
 *                        3 stuck UART (transmitter and receiver switched off), 4 device exits (0)
 *   MCD_TEST_AT_INVOKE   the invoke (0-based) at which it misbehaves (default 0)
 *   MCD_TEST_AT_LAYER    the layer before which it misbehaves (default 0)
 */
#include <stdint.h>

#ifndef MCD_TEST_AT_INVOKE
#define MCD_TEST_AT_INVOKE 0
#endif
#ifndef MCD_TEST_AT_LAYER
#define MCD_TEST_AT_LAYER 0
#endif

#define UNMAPPED_ADDRESS 0xF0000000u
#define UART_CTRL (*(volatile uint32_t *)(uintptr_t)(MCD_UART_BASE + 0x08u))

void mcd_exit(uint32_t code) __attribute__((noreturn));
void mcd_test_misbehave(uint16_t layer);

static uint32_t invokes;

void mcd_test_misbehave(uint16_t layer) {
    if (layer == 0) {
        invokes++;
    }
    if (invokes != MCD_TEST_AT_INVOKE + 1u || layer != MCD_TEST_AT_LAYER) {
        return;
    }
#if MCD_TEST_MISBEHAVE == 1
    (void)*(volatile int8_t *)(uintptr_t)UNMAPPED_ADDRESS;
#elif MCD_TEST_MISBEHAVE == 2
    for (;;) {
        __asm volatile("");
    }
#elif MCD_TEST_MISBEHAVE == 3
    UART_CTRL = 0;
#elif MCD_TEST_MISBEHAVE == 4
    mcd_exit(0);
#else
#error "MCD_TEST_MISBEHAVE must be 1..4"
#endif
}
