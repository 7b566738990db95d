/* The CMSDK APB UART: transmit and receive of single bytes; the receive interrupt, when the board
 * names its NVIC line, wakes the sleeping core and does nothing else.
 * Defines: MCD_UART_CMSDK, MCD_UART_BASE, MCD_UART_BAUDDIV (the BAUDDIV register value), and
 * optionally MCD_UART_RX_IRQ. */
#include "runtime.h"

#ifdef MCD_UART_CMSDK
#ifndef MCD_UART_BAUDDIV
#error "MCD_UART_BAUDDIV must be defined by the build"
#endif

#define UART_DATA MCD_REG(MCD_UART_BASE + 0x00u)
#define UART_STATE MCD_REG(MCD_UART_BASE + 0x04u)
#define UART_CTRL MCD_REG(MCD_UART_BASE + 0x08u)
#define UART_INTCLEAR MCD_REG(MCD_UART_BASE + 0x0Cu)
#define UART_BAUDDIV MCD_REG(MCD_UART_BASE + 0x10u)

#define STATE_TX_FULL (1u << 0)
#define STATE_RX_FULL (1u << 1)
#define STATE_RX_OVERRUN (1u << 3)
#define CTRL_TX_RX_ENABLE 3u
#define CTRL_RX_INT_ENABLE (1u << 3)
#define INT_RX (1u << 1)

void mcd_uart_init(void) {
    UART_BAUDDIV = MCD_UART_BAUDDIV;
#ifdef MCD_UART_RX_IRQ
    UART_CTRL = CTRL_TX_RX_ENABLE | CTRL_RX_INT_ENABLE;
    mcd_irq_enable(MCD_UART_RX_IRQ);
#else
    UART_CTRL = CTRL_TX_RX_ENABLE;
#endif
}

void mcd_uart_putc(uint8_t c) {
    while (UART_STATE & STATE_TX_FULL) {
    }
    UART_DATA = c;
}

static int rx_full(void) {
    uint32_t state = UART_STATE;
    if (state & STATE_RX_OVERRUN) {
        UART_STATE = STATE_RX_OVERRUN; /* write-one-to-clear; the frame's CRC catches the loss */
    }
    return (state & STATE_RX_FULL) != 0;
}

uint8_t mcd_uart_getc(void) {
#ifdef MCD_UART_RX_IRQ
    /* Masked from each check to the WFI: a byte arriving in between leaves its interrupt pending,
     * which wakes the WFI at once. */
    mcd_irq_mask();
    while (!rx_full()) {
        mcd_sleep_masked();
    }
    mcd_irq_unmask();
#else
    while (!rx_full()) {
    }
#endif
    return (uint8_t)UART_DATA;
}

int32_t mcd_uart_take(void) {
    return rx_full() ? (int32_t)(UART_DATA & 0xFFu) : -1;
}

#ifdef MCD_UART_RX_IRQ
void mcd_uart_rx_irq(void) {
    UART_INTCLEAR = INT_RX; /* else the line stays high: INTSTATUS.RX outlives the byte's read */
}
#endif

void mcd_uart_flush(void) {
    while (UART_STATE & STATE_TX_FULL) {
    }
}
#endif
