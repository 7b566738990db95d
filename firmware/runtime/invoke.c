/* Running the model: layers in order, each timed in SysTick ticks. */
#include "mcd_model.h"
#include "runtime.h"

uint32_t mcd_layer_ticks[MCD_MAX_LAYERS];

mcd_invoke_result mcd_invoke(uint16_t last) {
    for (uint32_t i = 0; i < MCD_MAX_LAYERS; i++) {
        mcd_layer_ticks[i] = 0;
    }
    mcd_invoke_result result = {.status = 0, .layer = last, .ticks = 0};
    uint64_t start = mcd_ticks();
    uint64_t before = start;
    for (uint16_t i = 0; i <= last; i++) {
#ifdef MCD_TEST_LAYER_HOOK
        MCD_TEST_LAYER_HOOK(i);
#endif
        int32_t status = mcd_model_layer(i);
        uint64_t after = mcd_ticks();
        mcd_layer_ticks[i] = (uint32_t)(after - before);
        before = after;
        if (status != 0) {
            result.status = status;
            result.layer = i;
            break;
        }
    }
    result.ticks = (uint32_t)(before - start);
    return result;
}
