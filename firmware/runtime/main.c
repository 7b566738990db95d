/* The firmware's main: bring up the UART and SysTick, prepare the model, serve the host. */
#include "mcd_model.h"
#include "runtime.h"

int main(void) {
    mcd_uart_init();
    mcd_ticks_init();
    mcd_faults_init();
    mcd_model_reset();
    mcd_commands_init(mcd_model_init());
    mcd_serve();
}
