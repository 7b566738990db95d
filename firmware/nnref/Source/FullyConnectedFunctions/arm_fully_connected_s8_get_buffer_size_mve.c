/* nnref: arm_fully_connected_s8_get_buffer_size_mve (documented in arm_nnfunctions.h).
 * The MVE contract: one int32 kernel sum per output channel. */
#include "arm_nnfunctions.h"

int32_t arm_fully_connected_s8_get_buffer_size_mve(const cmsis_nn_dims *filter_dims)
{
    return filter_dims->c * (int32_t)sizeof(int32_t);
}
