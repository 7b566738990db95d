/* The firmware's main: bring up the UART and SysTick, prepare the model (timed), serve the host. */
#include "mcd_model.h"
#include "runtime.h"

int main(void) {
    mcd_uart_init();
    mcd_ticks_init();
    mcd_faults_init();
    mcd_model_reset();
    uint64_t start = mcd_ticks();
    int32_t init_status = mcd_model_init();
    mcd_init_ticks = (uint32_t)(mcd_ticks() - start);
    mcd_commands_init(init_status);
    mcd_serve();
}
