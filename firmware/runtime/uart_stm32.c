/* ST's USART or LPUART (the register set with ISR, ICR, RDR, TDR: STM32F0/F3/F7/G0/G4/H7/L4/L5/U5;
 * not the F1/F2/F4 USART): transmit and receive of single bytes, 8N1, no FIFO. With
 * MCD_UART_RX_IRQ (the UART's global interrupt) the core sleeps until RXNE: the wait enables
 * RXNEIE and the handler disables it, since only reading RDR would clear the interrupt.
 * Defines (from the board's [uart] table, mcudeploy/build.py):
 *   MCD_UART_STM32      1
 *   MCD_UART_BASE       the USART/LPUART base address
 *   MCD_UART_BRR        its BRR value (the host computes it from the kernel clock and the baud rate)
 *   MCD_UART_ENABLES    pairs "register address, bit" set in order before anything else: the bus
 *                       clocks of the GPIO port and the UART, an I/O supply (e.g. VDDIO2)
 *   MCD_UART_GPIO       base address of the GPIO port of both pins
 *   MCD_UART_TX_PIN, MCD_UART_RX_PIN, MCD_UART_AF   the pins (0..15) and their alternate function
 *   MCD_UART_RX_IRQ     optional: the UART's NVIC line
 */
#include "runtime.h"

#ifdef MCD_UART_STM32
#if !defined(MCD_UART_BRR) || !defined(MCD_UART_ENABLES) || !defined(MCD_UART_GPIO) || \
    !defined(MCD_UART_TX_PIN) || !defined(MCD_UART_RX_PIN) || !defined(MCD_UART_AF)
#error "the STM32 UART needs MCD_UART_BRR, _ENABLES, _GPIO, _TX_PIN, _RX_PIN and _AF from the build"
#endif

#define UART_CR1 MCD_REG(MCD_UART_BASE + 0x00u)
#define UART_BRR MCD_REG(MCD_UART_BASE + 0x0Cu)
#define UART_ISR MCD_REG(MCD_UART_BASE + 0x1Cu)
#define UART_ICR MCD_REG(MCD_UART_BASE + 0x20u)
#define UART_RDR MCD_REG(MCD_UART_BASE + 0x24u)
#define UART_TDR MCD_REG(MCD_UART_BASE + 0x28u)

#define CR1_UE (1u << 0)
#define CR1_RE (1u << 2)
#define CR1_TE (1u << 3)
#define CR1_RXNEIE (1u << 5)
#define ISR_ORE (1u << 3)
#define ISR_RXNE (1u << 5)
#define ISR_TC (1u << 6)
#define ISR_TXE (1u << 7)
#define ICR_ORECF (1u << 3)

#define GPIO_MODER MCD_REG(MCD_UART_GPIO + 0x00u)
#define GPIO_OSPEEDR MCD_REG(MCD_UART_GPIO + 0x08u)
#define GPIO_PUPDR MCD_REG(MCD_UART_GPIO + 0x0Cu)
#define GPIO_AFR(pin) MCD_REG(MCD_UART_GPIO + 0x20u + 4u * ((pin) >> 3))

#define MODE_ALTERNATE 2u
#define SPEED_HIGH 2u
#define PULL_UP 1u

static const uint32_t enables[] = {MCD_UART_ENABLES};

static void set_field(volatile uint32_t *reg, uint32_t shift, uint32_t width, uint32_t value) {
    uint32_t mask = ((1u << width) - 1u) << shift;
    *reg = (*reg & ~mask) | (value << shift);
}

static void alternate_function(uint32_t pin, uint32_t pull) {
    set_field(&GPIO_AFR(pin), 4u * (pin & 7u), 4u, MCD_UART_AF);
    set_field(&GPIO_OSPEEDR, 2u * pin, 2u, SPEED_HIGH);
    set_field(&GPIO_PUPDR, 2u * pin, 2u, pull);
    set_field(&GPIO_MODER, 2u * pin, 2u, MODE_ALTERNATE);
}

void mcd_uart_init(void) {
    for (size_t i = 0; i + 1u < sizeof enables / sizeof enables[0]; i += 2u) {
        MCD_REG(enables[i]) |= 1u << enables[i + 1u];
        (void)MCD_REG(enables[i]); /* the read-back lets the enabled clock settle (RM: 2 cycles) */
    }
    alternate_function(MCD_UART_TX_PIN, 0u);
    alternate_function(MCD_UART_RX_PIN, PULL_UP); /* an idle line reads 1 with nothing attached */
    UART_CR1 = 0u;
    UART_BRR = MCD_UART_BRR;
    UART_CR1 = CR1_UE | CR1_RE | CR1_TE;
#ifdef MCD_UART_RX_IRQ
    mcd_irq_enable(MCD_UART_RX_IRQ);
#endif
}

void mcd_uart_putc(uint8_t c) {
    while (!(UART_ISR & ISR_TXE)) {
    }
    UART_TDR = c;
}

static int rx_not_empty(void) {
    uint32_t isr = UART_ISR;
    if (isr & ISR_ORE) {
        UART_ICR = ICR_ORECF; /* the frame's CRC catches the lost byte */
    }
    return (isr & ISR_RXNE) != 0;
}

int32_t mcd_uart_take(void) {
    return rx_not_empty() ? (int32_t)(UART_RDR & 0xFFu) : -1;
}

uint8_t mcd_uart_getc(void) {
#ifdef MCD_UART_RX_IRQ
    /* Masked from each check to the WFI: a byte arriving in between leaves the interrupt pending,
     * which wakes the WFI at once. */
    mcd_irq_mask();
    while (!rx_not_empty()) {
        UART_CR1 |= CR1_RXNEIE;
        mcd_sleep_masked();
    }
    mcd_irq_unmask();
#else
    while (!rx_not_empty()) {
    }
#endif
    return (uint8_t)UART_RDR;
}

#ifdef MCD_UART_RX_IRQ
void mcd_uart_rx_irq(void) {
    UART_CR1 &= ~CR1_RXNEIE;
    (void)UART_CR1; /* the write lands before the return, else the interrupt is taken again */
}
#endif

void mcd_uart_flush(void) {
    while (!(UART_ISR & ISR_TC)) {
    }
}
#endif
