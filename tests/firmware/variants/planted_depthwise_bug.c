/*
 * Test-only firmware variant (tests/test_localise.py): a planted bug in one channel of every
 * depthwise convolution, for the per-layer localisation to find. The build defines
 *   arm_depthwise_conv_wrapper_s8=planted_depthwise_conv_wrapper_s8
 * for the model and this file (not for the NN library), so the model's calls come here; this
 * wrapper calls the library's real function with the output shift of channel
 * PLANTED_CHANNEL (default 5) one step too far left: that channel comes out doubled.
 */
#include "arm_nnfunctions.h"

#undef arm_depthwise_conv_wrapper_s8

#ifndef PLANTED_CHANNEL
#define PLANTED_CHANNEL 5
#endif
#define MAX_CHANNELS 1024

/* The library's own function (its prototype above was renamed by the define). */
arm_cmsis_nn_status arm_depthwise_conv_wrapper_s8(
    const cmsis_nn_context *ctx, const cmsis_nn_dw_conv_params *dw_conv_params,
    const cmsis_nn_per_channel_quant_params *quant_params, const cmsis_nn_dims *input_dims,
    const int8_t *input_data, const cmsis_nn_dims *filter_dims, const int8_t *filter_data,
    const cmsis_nn_dims *bias_dims, const int32_t *bias_data, const cmsis_nn_dims *output_dims,
    int8_t *output_data);

static int32_t shifts[MAX_CHANNELS];

arm_cmsis_nn_status planted_depthwise_conv_wrapper_s8(
    const cmsis_nn_context *ctx, const cmsis_nn_dw_conv_params *dw_conv_params,
    const cmsis_nn_per_channel_quant_params *quant_params, const cmsis_nn_dims *input_dims,
    const int8_t *input_data, const cmsis_nn_dims *filter_dims, const int8_t *filter_data,
    const cmsis_nn_dims *bias_dims, const int32_t *bias_data, const cmsis_nn_dims *output_dims,
    int8_t *output_data) {
    cmsis_nn_per_channel_quant_params planted = *quant_params;
    int32_t channels = output_dims->c;
    if (channels > PLANTED_CHANNEL && channels <= MAX_CHANNELS) {
        for (int32_t c = 0; c < channels; c++) {
            shifts[c] = quant_params->shift[c];
        }
        shifts[PLANTED_CHANNEL] += 1;
        planted.shift = shifts;
    }
    return arm_depthwise_conv_wrapper_s8(ctx, dw_conv_params, &planted, input_dims, input_data,
                                         filter_dims, filter_data, bias_dims, bias_data,
                                         output_dims, output_data);
}
