/*
 * Which NVIC lines a CMSDK UART raises, found on the emulator itself (tests/test_runtime_uart.py
 * checks each QEMU board file's uart.rx_irq against it). Not the runtime: its own vectors, no
 * handlers, interrupts masked throughout, every NVIC line enabled so that any of them can pend.
 *
 * Sends two lines over the UART, each "<tag> " and the 16 NVIC_ISPR words in hex:
 *   "tx ..."  the lines pending with only the transmit interrupt enabled (TX buffer empty);
 *   "rx ..."  the lines pending with only the receive interrupt enabled, after the host's byte.
 * Between them it sends "send\n" and waits for that byte. Then it exits through semihosting.
 * Defines (mcudeploy/build.py board_defines): MCD_UART_BASE, MCD_UART_BAUDDIV.
 */
#include <stdint.h>

#define REG(addr) (*(volatile uint32_t *)(uintptr_t)(addr))
#define UART_DATA REG(MCD_UART_BASE + 0x00u)
#define UART_STATE REG(MCD_UART_BASE + 0x04u)
#define UART_CTRL REG(MCD_UART_BASE + 0x08u)
#define UART_INTCLEAR REG(MCD_UART_BASE + 0x0Cu)
#define UART_BAUDDIV REG(MCD_UART_BASE + 0x10u)
#define NVIC_ISER(n) REG(0xE000E100u + 4u * (n))
#define NVIC_ICER(n) REG(0xE000E180u + 4u * (n))
#define NVIC_ISPR(n) REG(0xE000E200u + 4u * (n))
#define NVIC_ICPR(n) REG(0xE000E280u + 4u * (n))
#define NVIC_WORDS 16

#define STATE_TX_FULL 1u
#define STATE_RX_FULL 2u
#define CTRL_TX_RX 3u
#define CTRL_TX_INT 4u
#define CTRL_RX_INT 8u
#define INT_TX_RX 3u

extern uint32_t __stack_top__[];
void Reset_Handler(void);

__attribute__((section(".vectors"), used)) const void *const vectors[2] = {__stack_top__, Reset_Handler};

static void put(char c) {
    while (UART_STATE & STATE_TX_FULL) {
    }
    UART_DATA = (uint8_t)c;
}

static void put_string(const char *s) {
    while (*s) {
        put(*s++);
    }
}

static void put_pending(const char *tag) {
    put_string(tag);
    for (int i = 0; i < NVIC_WORDS; i++) {
        uint32_t word = NVIC_ISPR(i);
        put(' ');
        for (int shift = 28; shift >= 0; shift -= 4) {
            put("0123456789abcdef"[(word >> shift) & 15u]);
        }
    }
    put('\n');
}

static void clear_pending(void) {
    UART_INTCLEAR = INT_TX_RX;
    for (int i = 0; i < NVIC_WORDS; i++) {
        NVIC_ICPR(i) = ~0u;
    }
}

void Reset_Handler(void) {
    __asm volatile("cpsid i" ::: "memory");
    UART_BAUDDIV = MCD_UART_BAUDDIV;
    UART_CTRL = CTRL_TX_RX;
    for (int i = 0; i < NVIC_WORDS; i++) {
        NVIC_ICER(i) = ~0u;
    }
    clear_pending();
    for (int i = 0; i < NVIC_WORDS; i++) {
        NVIC_ISER(i) = ~0u;
    }
    UART_CTRL = CTRL_TX_RX | CTRL_TX_INT;
    put_pending("tx");
    UART_CTRL = CTRL_TX_RX | CTRL_RX_INT;
    while (UART_STATE & STATE_TX_FULL) {
    }
    clear_pending();
    put_string("send\n");
    while (!(UART_STATE & STATE_RX_FULL)) {
    }
    put_pending("rx");
    while (UART_STATE & STATE_TX_FULL) {
    }
    static const uint32_t exit_block[2] = {0x20026u, 0u}; /* SYS_EXIT_EXTENDED, status 0 */
    register uint32_t r0 __asm("r0") = 0x20u;
    register const uint32_t *r1 __asm("r1") = exit_block;
    __asm volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    for (;;) {
    }
}
