/* The CMSDK APB UART: polled transmit and receive of single bytes.
 * Defines: MCD_UART_CMSDK, MCD_UART_BASE, MCD_UART_BAUDDIV (the BAUDDIV register value). */
#include "runtime.h"

#ifdef MCD_UART_CMSDK
#ifndef MCD_UART_BAUDDIV
#error "MCD_UART_BAUDDIV must be defined by the build"
#endif

#define UART_DATA MCD_REG(MCD_UART_BASE + 0x00u)
#define UART_STATE MCD_REG(MCD_UART_BASE + 0x04u)
#define UART_CTRL MCD_REG(MCD_UART_BASE + 0x08u)
#define UART_BAUDDIV MCD_REG(MCD_UART_BASE + 0x10u)

#define STATE_TX_FULL (1u << 0)
#define STATE_RX_FULL (1u << 1)
#define STATE_RX_OVERRUN (1u << 3)
#define CTRL_TX_RX_ENABLE 3u

void mcd_uart_init(void) {
    UART_BAUDDIV = MCD_UART_BAUDDIV;
    UART_CTRL = CTRL_TX_RX_ENABLE;
}

void mcd_uart_putc(uint8_t c) {
    while (UART_STATE & STATE_TX_FULL) {
    }
    UART_DATA = c;
}

int mcd_uart_getc(void) {
    uint32_t state = UART_STATE;
    if (state & STATE_RX_OVERRUN) {
        UART_STATE = STATE_RX_OVERRUN; /* write-one-to-clear; the frame's CRC catches the loss */
    }
    if (!(state & STATE_RX_FULL)) {
        return -1;
    }
    return (int)(UART_DATA & 0xFFu);
}

void mcd_uart_flush(void) {
    while (UART_STATE & STATE_TX_FULL) {
    }
}
#endif
