/*
 * The firmware runtime's internal interface: one section per source file of firmware/runtime.
 *
 * Board-dependent values arrive as -D defines from the build (mcudeploy/build.py):
 *   MCD_UART_CMSDK or MCD_UART_STM32   which UART driver carries the protocol (exactly one is 1):
 *                     uart_cmsdk.c (Arm CMSDK APB UART) or uart_stm32.c (ST USART/LPUART); each
 *                     driver lists the further MCD_UART_* defines it needs
 *   MCD_UART_BASE     base address of that UART
 *   MCD_UART_RX_IRQ   optional: the NVIC line its receive interrupt raises. With it the core sleeps
 *                     (WFI) while it waits for a byte; without it, it polls the UART
 *   MCD_SEMIHOSTING   1: stop the device with a semihosting SYS_EXIT_EXTENDED; 0: reset it
 *   MCD_HAS_FPU       1: enable the FPU / MVE coprocessors (CPACR CP10, CP11) at reset
 *   MCD_SYSTICK_HZ    the SysTick clock (the CPU clock), reported to the host in HELLO
 *   MCD_MAX_CHUNK     largest data block of one READ or WRITE (default 256)
 *   MCD_MAX_LAYERS    largest model the per-layer tick array holds (default 256)
 *   MCD_STACK_GUARD_BYTES  the lowest bytes of the stack that must stay unused (stack.c): part of
 *                     the room mcudeploy's stack size keeps for a fault's exception frame
 * Tests only (tests/firmware/variants, never set by `mcudeploy`):
 *   MCD_TEST_LAYER_HOOK  the name of a function void f(uint16_t layer), called before each layer
 * The wire protocol is docs/protocol.md.
 */
#ifndef MCD_RUNTIME_H
#define MCD_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#if defined(MCD_UART_CMSDK) + defined(MCD_UART_STM32) != 1
#error "exactly one of MCD_UART_CMSDK and MCD_UART_STM32 must be defined by the build"
#endif
#ifndef MCD_UART_BASE
#error "MCD_UART_BASE must be defined by the build"
#endif
#ifndef MCD_SEMIHOSTING
#error "MCD_SEMIHOSTING must be defined by the build"
#endif
#ifndef MCD_HAS_FPU
#error "MCD_HAS_FPU must be defined by the build"
#endif
#ifndef MCD_SYSTICK_HZ
#error "MCD_SYSTICK_HZ must be defined by the build"
#endif
#ifndef MCD_STACK_GUARD_BYTES
#error "MCD_STACK_GUARD_BYTES must be defined by the build"
#endif
#if MCD_STACK_GUARD_BYTES < 4 || MCD_STACK_GUARD_BYTES % 4 != 0
#error "MCD_STACK_GUARD_BYTES must be a positive multiple of 4"
#endif
#ifndef MCD_MAX_CHUNK
#define MCD_MAX_CHUNK 256
#endif
#ifndef MCD_MAX_LAYERS
#define MCD_MAX_LAYERS 256
#endif
#if MCD_MAX_CHUNK < 64 || MCD_MAX_CHUNK > 4096
#error "MCD_MAX_CHUNK must be within 64..4096"
#endif
#if (defined(__ARM_FP) || defined(__ARM_FEATURE_MVE)) && !MCD_HAS_FPU
#error "the compiler emits FPU/MVE code but MCD_HAS_FPU is 0: the first FP instruction would fault"
#endif

/* v7-M and v8-M Mainline have the configurable fault handlers and CFSR; v8-M Mainline has MSPLIM. */
#if defined(__ARM_ARCH_7M__) || defined(__ARM_ARCH_7EM__) || defined(__ARM_ARCH_8M_MAIN__) || \
    defined(__ARM_ARCH_8_1M_MAIN__)
#define MCD_HAS_CFSR 1
#else
#define MCD_HAS_CFSR 0
#endif
#if defined(__ARM_ARCH_8M_MAIN__) || defined(__ARM_ARCH_8_1M_MAIN__)
#define MCD_HAS_MSPLIM 1
#else
#define MCD_HAS_MSPLIM 0
#endif

#define MCD_REG(addr) (*(volatile uint32_t *)(uintptr_t)(addr))

/* ---- Protocol constants (docs/protocol.md) ---- */
#define MCD_PROTOCOL_VERSION 1u
#define MCD_HEADER_BYTES 4u
#define MCD_CRC_BYTES 4u
/* The longest request body is a WRITE: u8 space, u16 index, u32 offset, data. */
#define MCD_MAX_BODY (7u + MCD_MAX_CHUNK)
#define MCD_MAX_PACKET (MCD_HEADER_BYTES + MCD_MAX_BODY + MCD_CRC_BYTES)
/* COBS adds one byte per 254 and one more at the start. */
#define MCD_MAX_FRAME (MCD_MAX_PACKET + MCD_MAX_PACKET / 254u + 1u)

enum {
    MCD_HELLO = 0x01,
    MCD_WRITE = 0x02,
    MCD_INVOKE = 0x03,
    MCD_READ = 0x04,
    MCD_RESET = 0x05,
    MCD_EXIT = 0x06,
    MCD_STACK = 0x07,
    MCD_RESPONSE = 0x80,
    MCD_ERROR = 0xEE,
    MCD_NAK = 0xEF,
    MCD_FAULT = 0xF0,
    MCD_OVERFLOW = 0xF1,
};

enum {
    MCD_SPACE_INPUT = 0,
    MCD_SPACE_OUTPUT = 1,
    MCD_SPACE_TENSOR = 2,
    MCD_SPACE_TICKS = 3,
};

enum {
    MCD_ERR_UNKNOWN_TYPE = 1,
    MCD_ERR_BAD_SPACE = 2,
    MCD_ERR_BAD_INDEX = 3,
    MCD_ERR_RANGE = 4,
    MCD_ERR_TOO_LONG = 5,
    MCD_ERR_SHORT_BODY = 6,
    MCD_ERR_READ_ONLY = 7,
    MCD_ERR_TOO_MANY_LAYERS = 8,
};

enum {
    MCD_NAK_CRC = 1,
    MCD_NAK_COBS = 2,
    MCD_NAK_TOO_LONG = 3,
    MCD_NAK_TOO_SHORT = 4,
};

#define MCD_SEQ_UNSOLICITED 0xFFFFu

/* ---- Little-endian fields (unaligned-safe) ---- */
static inline uint16_t mcd_get16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

static inline uint32_t mcd_get32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static inline void mcd_put16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static inline void mcd_put32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/* ---- startup.c ---- */
/* The reset entry: paints the stack, enables FPU/MVE, sets the stack limit, copies .data, zeroes
 * .bss, runs main. */
void Reset_Handler(void) __attribute__((noreturn));

/* ---- stack.c: the stack's high-water mark and its guard ---- */
/* The word every unused word of the stack holds. */
#define MCD_STACK_PAINT 0x5AC3A55Au
/* Paints the stack from its limit up to the caller's frame (called first thing at reset). */
void mcd_stack_paint(void);
/* The stack's size in bytes (the linker script's __stack_top__ - __stack_limit__). */
uint32_t mcd_stack_bytes(void);
/* The high-water mark since reset: bytes from the top of the stack to the lowest word written. */
uint32_t mcd_stack_used(void);
/* Returns if the lowest MCD_STACK_GUARD_BYTES still hold the paint; else sends OVERFLOW and stops
 * the device with exit status 3. */
void mcd_stack_check(void);

/* ---- Interrupts: the NVIC line and PRIMASK, for the UART drivers ---- */
static inline void mcd_irq_enable(uint32_t irq) {
    MCD_REG(0xE000E100u + 4u * (irq >> 5)) = 1u << (irq & 31u); /* NVIC_ISERn */
}

static inline void mcd_irq_mask(void) { __asm volatile("cpsid i" ::: "memory"); }

static inline void mcd_irq_unmask(void) { __asm volatile("cpsie i" ::: "memory"); }

/* Called with interrupts masked: sleeps until an enabled interrupt is pending (one that became
 * pending after the caller's last check wakes WFI at once), lets the pending interrupts be taken,
 * and masks them again. */
static inline void mcd_sleep_masked(void) {
    __asm volatile("dsb\n\twfi\n\tcpsie i\n\tisb\n\tcpsid i" ::: "memory");
}

/* ---- uart_cmsdk.c or uart_stm32.c: the board's UART ---- */
/* Sets the UART up, and with MCD_UART_RX_IRQ its receive interrupt (it only wakes the core). */
void mcd_uart_init(void);
/* Blocks while the transmit buffer is full. */
void mcd_uart_putc(uint8_t c);
/* Waits for the next received byte: asleep until the receive interrupt with MCD_UART_RX_IRQ,
 * else polling. Other interrupts (SysTick) are served meanwhile. */
uint8_t mcd_uart_getc(void);
/* Waits until the last byte has left the transmit buffer. */
void mcd_uart_flush(void);
/* The received byte waiting, or -1 when none is (never waits). */
int32_t mcd_uart_take(void);
#ifdef MCD_UART_RX_IRQ
/* The receive interrupt's handler (startup.c's vector table): acknowledges the interrupt, so that
 * the next wait sleeps again; mcd_uart_getc reads the byte. */
void mcd_uart_rx_irq(void);
#endif

/* ---- ticks.c: SysTick as a free-running 64-bit counter of CPU clock ticks ---- */
void mcd_ticks_init(void);
/* Ticks since mcd_ticks_init; safe against the 24-bit counter wrapping during the read. */
uint64_t mcd_ticks(void);
void SysTick_Handler(void);

/* ---- exit.c ---- */
/* Stops the device: semihosting SYS_EXIT_EXTENDED with `code` when MCD_SEMIHOSTING, else resets it. */
void mcd_exit(uint32_t code) __attribute__((noreturn));
/* After an unsolicited report (FAULT, OVERFLOW): waits until it has left the UART, reads and drops
 * what the host sent while the model ran until the line is quiet, then mcd_exit(code). A simulator
 * that stops with bytes it never read (a request the host resent when no answer came) closes its
 * socket with a reset, and the host loses the end of the report. */
void mcd_exit_after_report(uint32_t code) __attribute__((noreturn));

/* ---- fault.c ---- */
/* Enables the MemManage, BusFault and UsageFault handlers (else they escalate to HardFault). */
void mcd_faults_init(void);
/* The handler of every fault and unexpected exception: sends FAULT, then mcd_exit(3). */
void mcd_fault_entry(void) __attribute__((noreturn));

/* ---- crc32.c: CRC-32 (IEEE 802.3, reflected, as zlib.crc32) ---- */
uint32_t mcd_crc32(const uint8_t *data, size_t n);

/* ---- cobs.c: Consistent Overhead Byte Stuffing ---- */
/* Encodes n bytes, passing each output byte to put (no trailing delimiter). */
void mcd_cobs_encode(const uint8_t *src, size_t n, void (*put)(uint8_t));
/* Decodes n bytes (without delimiter) into dst, which may equal src. Returns the decoded
 * length, or -1 if the input is not valid COBS. */
int32_t mcd_cobs_decode(const uint8_t *src, size_t n, uint8_t *dst);

/* ---- packet.c ---- */
/* Completes the packet at `packet` (header, then body_len bytes of body already in place at
 * packet + MCD_HEADER_BYTES, then room for the CRC) and sends it as one frame. */
void mcd_packet_send(uint8_t *packet, size_t body_len, uint8_t type, uint16_t seq);

/* ---- invoke.c ---- */
typedef struct {
    int32_t status;   /* 0, or the first non-zero layer status */
    uint16_t layer;   /* the last layer run */
    uint32_t ticks;   /* SysTick ticks for the whole run */
} mcd_invoke_result;

/* Ticks of each layer in the last invoke (0 for layers not run). */
extern uint32_t mcd_layer_ticks[MCD_MAX_LAYERS];
/* Runs layers 0..last in order, stopping at the first non-zero status. */
mcd_invoke_result mcd_invoke(uint16_t last);
#ifdef MCD_TEST_LAYER_HOOK
/* Test builds only: a firmware variant that faults or hangs on purpose (tests/firmware/variants). */
void MCD_TEST_LAYER_HOOK(uint16_t layer);
#endif

/* ---- commands.c ---- */
typedef struct {
    uint8_t type;      /* response type */
    uint16_t len;      /* response body bytes */
    int32_t exit_code; /* >= 0: stop the device with this code once the response is sent */
} mcd_response;

/* Ticks of mcd_model_init at start-up, set by main.c; the TICKS space's index 1. */
extern uint32_t mcd_init_ticks;
/* Records the model's start-up status for HELLO. */
void mcd_commands_init(int32_t init_status);
/* Executes one request; writes the response body to `out` (room for MCD_MAX_BODY bytes), which
 * may be `body` itself: each request reads all of its body before it writes `out`. */
mcd_response mcd_execute(uint8_t type, const uint8_t *body, size_t len, uint8_t *out);

/* ---- link.c ---- */
/* Receives frames forever: NAKs bad ones, executes the rest, answers a repeat of the last request
 * without running it twice. */
void mcd_serve(void) __attribute__((noreturn));

#endif
