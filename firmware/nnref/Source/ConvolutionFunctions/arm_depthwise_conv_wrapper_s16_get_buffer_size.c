/* nnref: arm_depthwise_conv_wrapper_s16_get_buffer_size (documented in arm_nnfunctions.h).
 * nnref's int16 depthwise convolution needs no scratch. */
#include "arm_nnfunctions.h"

int32_t arm_depthwise_conv_wrapper_s16_get_buffer_size(const cmsis_nn_dw_conv_params *dw_conv_params,
                                                       const cmsis_nn_dims *input_dims,
                                                       const cmsis_nn_dims *filter_dims,
                                                       const cmsis_nn_dims *output_dims)
{
    (void)dw_conv_params;
    (void)input_dims;
    (void)filter_dims;
    (void)output_dims;
    return 0;
}
