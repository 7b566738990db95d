/* Reset, vectors, SysTick, semihosting and the stack paint of the TFLM harness (harness.h). */
#include "harness.h"

#define REG(addr) (*(volatile uint32_t *)(uintptr_t)(addr))
#define SCB_CPACR REG(0xE000ED88u)
#define SCB_VTOR REG(0xE000ED08u)
#define SCB_CFSR REG(0xE000ED28u)
#define SCB_BFAR REG(0xE000ED38u)
#define SYST_CSR REG(0xE000E010u)
#define SYST_RVR REG(0xE000E014u)
#define SYST_CVR REG(0xE000E018u)
#define SCB_ICSR REG(0xE000ED04u)
#define RELOAD 0x00FFFFFFu
#define STACK_PATTERN 0xC5AC5AC5u
#define SYS_WRITE0 0x04u
#define SYS_GET_CMDLINE 0x15u
#define SYS_EXIT_EXTENDED 0x20u
#define ADP_STOPPED_APPLICATION_EXIT 0x20026u
#define FAULT_EXIT_CODE 3u

int main(void);
void Reset_Handler(void);
void SysTick_Handler(void);
void harness_fault(void);

/* The linker script (scripts/tflm_device.py) defines these. */
extern uint32_t __data_load__[], __data_start__[], __data_end__[], __bss_start__[], __bss_end__[];
extern uint32_t __stack_limit__[], __stack_top__[];
typedef void (*harness_fn)(void);
extern harness_fn __preinit_array_start[], __preinit_array_end[], __init_array_start[], __init_array_end[];

__attribute__((section(".vectors"), used)) const void *const harness_vectors[16] = {
    __stack_top__, (void *)Reset_Handler,
    (void *)harness_fault, (void *)harness_fault, (void *)harness_fault, (void *)harness_fault,
    (void *)harness_fault, (void *)harness_fault, 0, 0, 0,
    (void *)harness_fault, (void *)harness_fault, 0, (void *)harness_fault, (void *)SysTick_Handler,
};

static uint32_t semihost(uint32_t op, const void *arg) {
    register uint32_t r0 __asm("r0") = op;
    register const void *r1 __asm("r1") = arg;
    __asm volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

void harness_exit(uint32_t code) {
    uint32_t block[2] = {ADP_STOPPED_APPLICATION_EXIT, code};
    semihost(SYS_EXIT_EXTENDED, block);
    for (;;) {
    }
}

void harness_puts(const char *s) { semihost(SYS_WRITE0, s); }

uint32_t harness_arena_argument(void) {
    static char line[128] __attribute__((section(".harness_bss")));
    struct {
        char *buffer;
        uint32_t length;
    } block = {line, sizeof(line)};
    if (semihost(SYS_GET_CMDLINE, &block) != 0u) {
        return 0;
    }
    /* QEMU's command line is the kernel's path, then -append's text. */
    for (const char *p = line; p + 6 <= line + block.length; p++) {
        if (p[0] == 'a' && p[1] == 'r' && p[2] == 'e' && p[3] == 'n' && p[4] == 'a' && p[5] == '=') {
            uint32_t value = 0;
            for (p += 6; *p >= '0' && *p <= '9'; p++) {
                value = value * 10u + (uint32_t)(*p - '0');
            }
            return value;
        }
    }
    return 0;
}

void harness_put_u64(uint64_t value) {
    char text[21];
    char *p = text + sizeof(text) - 1;
    *p = '\0';
    do {
        *--p = (char)('0' + value % 10u);
        value /= 10u;
    } while (value != 0u);
    harness_puts(p);
}

void harness_put_hex(const uint8_t *data, size_t n) {
    static const char digits[] = "0123456789abcdef";
    char chunk[65];
    size_t used = 0;
    for (size_t i = 0; i < n; i++) {
        chunk[used++] = digits[data[i] >> 4];
        chunk[used++] = digits[data[i] & 15u];
        if (used == sizeof(chunk) - 1u || i + 1u == n) {
            chunk[used] = '\0';
            harness_puts(chunk);
            used = 0;
        }
    }
}

void harness_fault_report(const uint32_t *frame) __attribute__((noreturn, used));

/* Every fault: the exception frame is on the main stack (no thread mode stack here); move to a
 * stack of its own, so that an overflow is reported too. */
__attribute__((naked)) void harness_fault(void) {
    __asm volatile(
#if defined(__ARM_ARCH_8M_MAIN__) || defined(__ARM_ARCH_8_1M_MAIN__)
        "movs r1, #0\n\t"
        "msr msplim, r1\n\t"
#endif
        "mrs r0, msp\n\t"
        "ldr r1, =harness_fault_stack + 512\n\t"
        "mov sp, r1\n\t"
        "bl harness_fault_report\n\t"
        ".ltorg");
}

/* The harness's own buffers go to .harness_bss, so that TFLM's static RAM is counted without them. */
uint64_t harness_fault_stack[64] __attribute__((section(".harness_bss")));

void harness_fault_report(const uint32_t *frame) {
    uint32_t ipsr;
    __asm volatile("mrs %0, ipsr" : "=r"(ipsr));
    harness_puts("harness-fault exception ");
    harness_put_u64(ipsr & 0x1FFu);
    harness_puts(" cfsr ");
    harness_put_u64(SCB_CFSR);
    harness_puts(" bfar ");
    harness_put_u64(SCB_BFAR);
    harness_puts(" pc ");
    harness_put_u64(frame[6]);
    harness_puts(" lr ");
    harness_put_u64(frame[5]);
    harness_puts("\n");
    harness_exit(FAULT_EXIT_CODE);
}

static volatile uint32_t wraps;

void SysTick_Handler(void) { wraps++; }

void harness_ticks_init(void) {
    SYST_RVR = RELOAD;
    SYST_CVR = 0;
    SYST_CSR = 7u; /* enable, interrupt, CPU clock */
    while (SYST_CVR == 0u) {
    }
}

uint64_t harness_ticks(void) {
    uint32_t primask;
    __asm volatile("mrs %0, primask\n\tcpsid i" : "=r"(primask) : : "memory");
    uint32_t count = wraps;
    uint32_t value = SYST_CVR;
    if ((SCB_ICSR & (1u << 26)) && value > RELOAD / 2u) { /* a wrap still pending */
        count++;
    }
    __asm volatile("msr primask, %0" : : "r"(primask) : "memory");
    return ((uint64_t)count << 24) + (RELOAD - value);
}

__attribute__((noinline)) void harness_stack_paint(uint32_t margin) {
    uint32_t sp;
    __asm volatile("mov %0, sp" : "=r"(sp));
    for (volatile uint32_t *p = __stack_limit__; (uintptr_t)p < sp - margin; p++) {
        *p = STACK_PATTERN;
    }
}

uint32_t harness_stack_peak(void) {
    const uint32_t *p = __stack_limit__;
    while (p < __stack_top__ && *p == STACK_PATTERN) {
        p++;
    }
    return (uint32_t)((uintptr_t)__stack_top__ - (uintptr_t)p);
}

uint32_t harness_stack_size(void) { return (uint32_t)((uintptr_t)__stack_top__ - (uintptr_t)__stack_limit__); }

void Reset_Handler(void) {
    SCB_CPACR |= 0xFu << 20; /* CP10, CP11: the FPU and MVE */
    __asm volatile("dsb\n\tisb" ::: "memory");
    SCB_VTOR = (uint32_t)(uintptr_t)harness_vectors;
#if defined(__ARM_ARCH_8M_MAIN__) || defined(__ARM_ARCH_8_1M_MAIN__)
    __asm volatile("msr msplim, %0" : : "r"(__stack_limit__)); /* overflow: a fault, not corruption */
#endif
    for (uint32_t *src = __data_load__, *dst = __data_start__; dst < __data_end__;) {
        *dst++ = *src++;
    }
    for (uint32_t *dst = __bss_start__; dst < __bss_end__;) {
        *dst++ = 0;
    }
    for (harness_fn *f = __preinit_array_start; f < __preinit_array_end; f++) {
        (*f)();
    }
    for (harness_fn *f = __init_array_start; f < __init_array_end; f++) {
        (*f)();
    }
    harness_exit((uint32_t)main());
}
