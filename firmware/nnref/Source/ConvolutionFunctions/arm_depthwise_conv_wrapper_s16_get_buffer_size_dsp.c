/* nnref: arm_depthwise_conv_wrapper_s16_get_buffer_size_dsp (documented in arm_nnfunctions.h).
 * nnref's int16 depthwise convolution needs no scratch on DSP-extension CPUs either. */
#include "arm_nnfunctions.h"

int32_t arm_depthwise_conv_wrapper_s16_get_buffer_size_dsp(const cmsis_nn_dw_conv_params *dw_conv_params,
                                                           const cmsis_nn_dims *input_dims,
                                                           const cmsis_nn_dims *filter_dims,
                                                           const cmsis_nn_dims *output_dims)
{
    return arm_depthwise_conv_wrapper_s16_get_buffer_size(dw_conv_params, input_dims, filter_dims, output_dims);
}
