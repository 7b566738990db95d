/* nnref: arm_fully_connected_s8_get_buffer_size_dsp (documented in arm_nnfunctions.h).
 * Without MVE the fully connected functions need no scratch. */
#include "arm_nnfunctions.h"

int32_t arm_fully_connected_s8_get_buffer_size_dsp(const cmsis_nn_dims *filter_dims)
{
    (void)filter_dims;
    return 0;
}
