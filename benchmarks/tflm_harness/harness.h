/* The TFLM harness's bare-metal services (startup.c): ticks, the semihosting console, the stack
 * high-water mark, and exit. Written for scripts/tflm_device.py; not part of mcudeploy's firmware. */
#ifndef TFLM_HARNESS_H
#define TFLM_HARNESS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* SysTick on the CPU clock, its 24-bit counter extended by its wraps (QEMU -icount shift=0 makes
 * one tick a fixed number of instructions: the board's instructions_per_tick). */
void harness_ticks_init(void);
uint64_t harness_ticks(void);

/* The semihosting console (SYS_WRITE0): a string, a decimal number, bytes as hex. */
void harness_puts(const char *s);
void harness_put_u64(uint64_t value);
void harness_put_hex(const uint8_t *data, size_t n);

/* `arena=N` on the semihosting command line (QEMU: -append "arena=N"), or 0. */
uint32_t harness_arena_argument(void);

/* Fill the stack below the caller's frame (less `margin` bytes) with a pattern; then the deepest
 * word that no longer holds it gives the bytes used from the top of the stack since the fill. */
void harness_stack_paint(uint32_t margin);
uint32_t harness_stack_peak(void);
uint32_t harness_stack_size(void);

/* Semihosting SYS_EXIT_EXTENDED: `code` becomes QEMU's exit status. */
void harness_exit(uint32_t code) __attribute__((noreturn));

#ifdef __cplusplus
}
#endif

#endif
