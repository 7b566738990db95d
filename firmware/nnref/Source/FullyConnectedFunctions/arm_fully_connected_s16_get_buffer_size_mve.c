/* nnref: arm_fully_connected_s16_get_buffer_size_mve (documented in arm_nnfunctions.h).
 * nnref's int16 fully connected layer needs no scratch on MVE (Helium) CPUs either. */
#include "arm_nnfunctions.h"

int32_t arm_fully_connected_s16_get_buffer_size_mve(const cmsis_nn_dims *filter_dims)
{
    return arm_fully_connected_s16_get_buffer_size(filter_dims);
}
