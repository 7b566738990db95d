/* nnref: arm_convolve_wrapper_s16_get_buffer_size_mve (documented in arm_nnfunctions.h).
 * nnref's int16 convolution needs no scratch on MVE (Helium) CPUs either. */
#include "arm_nnfunctions.h"

int32_t arm_convolve_wrapper_s16_get_buffer_size_mve(const cmsis_nn_conv_params *conv_params,
                                                     const cmsis_nn_dims *input_dims,
                                                     const cmsis_nn_dims *filter_dims,
                                                     const cmsis_nn_dims *output_dims)
{
    return arm_convolve_wrapper_s16_get_buffer_size(conv_params, input_dims, filter_dims, output_dims);
}
