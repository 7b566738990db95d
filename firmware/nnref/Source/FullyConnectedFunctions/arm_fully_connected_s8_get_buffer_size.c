/* nnref: arm_fully_connected_s8_get_buffer_size (documented in arm_nnfunctions.h).
 * Answers for the CPU class this file is compiled for. */
#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

int32_t arm_fully_connected_s8_get_buffer_size(const cmsis_nn_dims *filter_dims)
{
#if NNREF_USE_FC_KERNEL_SUMS
    return arm_fully_connected_s8_get_buffer_size_mve(filter_dims);
#else
    return arm_fully_connected_s8_get_buffer_size_dsp(filter_dims);
#endif
}
