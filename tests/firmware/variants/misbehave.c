/*
 * Test-only firmware variant (tests/test_faults.py): the real generated model, misbehaving on
 * purpose through the runtime's MCD_TEST_LAYER_HOOK (firmware/runtime/runtime.h). Defines:
 *   MCD_TEST_LAYER_HOOK  mcd_test_misbehave
 *   MCD_TEST_MISBEHAVE   1 BusFault (load from an unmapped address), 2 endless loop,
 *                        3 stuck UART (transmitter and receiver switched off), 4 device exits (0),
 *                        5 unbounded recursion (the stack overflows its region), 6 a deep frame
 *                        (a variable-length array) that reaches into the stack's lowest
 *                        MCD_STACK_GUARD_BYTES without leaving the stack
 *   MCD_TEST_AT_INVOKE   the invoke (0-based) at which it misbehaves (default 0)
 *   MCD_TEST_AT_LAYER    the layer before which it misbehaves (default 0)
 */
#include <stddef.h>
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
extern uint32_t __stack_limit__[];

static uint32_t invokes;

#if MCD_TEST_MISBEHAVE == 5
__attribute__((noinline)) static int32_t recurse(volatile int8_t *p) {
    volatile int8_t frame[64];
    frame[0] = p[0];
    if (frame[0] == 127) {
        return 0;
    }
    return recurse(frame) + frame[1];
}
#endif

#if MCD_TEST_MISBEHAVE == 6
__attribute__((noinline)) static uint8_t reach_into_guard(void) {
    uint8_t *sp;
    __asm volatile("mov %0, sp" : "=r"(sp));
    /* down to 8 bytes below the guard's top (the array's start, 8-byte aligned), no call below */
    size_t n = (size_t)(sp - (uint8_t *)__stack_limit__) - (MCD_STACK_GUARD_BYTES - 8u);
    volatile uint8_t deep[n];
    for (size_t i = 0; i < n; i++) {
        deep[i] = (uint8_t)i;
    }
    return deep[0];
}
#endif

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
#elif MCD_TEST_MISBEHAVE == 5
    int8_t seed = 0;
    (void)recurse(&seed);
#elif MCD_TEST_MISBEHAVE == 6
    (void)reach_into_guard();
#else
#error "MCD_TEST_MISBEHAVE must be 1..6"
#endif
}
