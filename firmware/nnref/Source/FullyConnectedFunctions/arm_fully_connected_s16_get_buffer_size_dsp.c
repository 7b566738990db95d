/* nnref: arm_fully_connected_s16_get_buffer_size_dsp (documented in arm_nnfunctions.h).
 * nnref's int16 fully connected layer needs no scratch on DSP-extension CPUs either. */
#include "arm_nnfunctions.h"

int32_t arm_fully_connected_s16_get_buffer_size_dsp(const cmsis_nn_dims *filter_dims)
{
    return arm_fully_connected_s16_get_buffer_size(filter_dims);
}
