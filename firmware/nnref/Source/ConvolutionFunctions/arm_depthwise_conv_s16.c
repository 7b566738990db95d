/* nnref: arm_depthwise_conv_s16 (documented in arm_nnfunctions.h). */
#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

#include <stddef.h>

arm_cmsis_nn_status arm_depthwise_conv_s16(const cmsis_nn_context *ctx,
                                           const cmsis_nn_dw_conv_params *dw_conv_params,
                                           const cmsis_nn_per_channel_quant_params *quant_params,
                                           const cmsis_nn_dims *input_dims,
                                           const int16_t *input_data,
                                           const cmsis_nn_dims *filter_dims,
                                           const int8_t *filter_data,
                                           const cmsis_nn_dims *bias_dims,
                                           const int64_t *bias_data,
                                           const cmsis_nn_dims *output_dims,
                                           int16_t *output_data)
{
    (void)ctx;
    (void)bias_dims;

    const int32_t batches = input_dims->n;
    const int32_t in_h = input_dims->h;
    const int32_t in_w = input_dims->w;
    const int32_t in_c = input_dims->c;
    const int32_t k_h = filter_dims->h;
    const int32_t k_w = filter_dims->w;
    const int32_t out_h = output_dims->h;
    const int32_t out_w = output_dims->w;
    const int32_t out_c = output_dims->c;
    const int32_t ch_mult = dw_conv_params->ch_mult;
    const int32_t stride_h = dw_conv_params->stride.h;
    const int32_t stride_w = dw_conv_params->stride.w;
    const int32_t dil_h = dw_conv_params->dilation.h;
    const int32_t dil_w = dw_conv_params->dilation.w;
    const int32_t pad_h = dw_conv_params->padding.h;
    const int32_t pad_w = dw_conv_params->padding.w;
    const int32_t act_min = dw_conv_params->activation.min;
    const int32_t act_max = dw_conv_params->activation.max;

    if (ch_mult < 1 || out_c != in_c * ch_mult || filter_dims->c != out_c || stride_h < 1 || stride_w < 1 ||
        dil_h < 1 || dil_w < 1)
    {
        return ARM_CMSIS_NN_ARG_ERROR;
    }

    const int32_t in_row_stride = in_w * in_c;
    const int32_t *const mult = quant_params->multiplier;
    const int32_t *const shift = quant_params->shift;
    int64_t acc[NNREF_CH_BLOCK];

    for (int32_t b = 0; b < batches; b++)
    {
        const int16_t *const in_batch = input_data + (size_t)b * (size_t)in_h * (size_t)in_row_stride;
        for (int32_t oy = 0; oy < out_h; oy++)
        {
            const int32_t in_y0 = oy * stride_h - pad_h;
            int32_t ky_start;
            int32_t ky_end;
            arm_nn_kernel_range(in_y0, dil_h, in_h, k_h, &ky_start, &ky_end);

            for (int32_t ox = 0; ox < out_w; ox++)
            {
                const int32_t in_x0 = ox * stride_w - pad_w;
                int32_t kx_start;
                int32_t kx_end;
                arm_nn_kernel_range(in_x0, dil_w, in_w, k_w, &kx_start, &kx_end);

                /* Output channels in blocks, so the innermost loop runs over contiguous channels. */
                for (int32_t o0 = 0; o0 < out_c; o0 += NNREF_CH_BLOCK)
                {
                    const int32_t len = arm_nn_min_i32(NNREF_CH_BLOCK, out_c - o0);
                    const int32_t ic0 = o0 / ch_mult;
                    const int32_t m0 = o0 - ic0 * ch_mult;
                    for (int32_t j = 0; j < len; j++)
                    {
                        acc[j] = bias_data != NULL ? bias_data[o0 + j] : 0;
                    }
                    for (int32_t ky = ky_start; ky < ky_end; ky++)
                    {
                        const int32_t iy = in_y0 + ky * dil_h;
                        for (int32_t kx = kx_start; kx < kx_end; kx++)
                        {
                            const int32_t ix = in_x0 + kx * dil_w;
                            const int16_t *const in_px = in_batch + iy * in_row_stride + ix * in_c;
                            const int8_t *const w_px = filter_data + (ky * k_w + kx) * out_c + o0;
                            if (ch_mult == 1)
                            {
                                const int16_t *const in_ch = in_px + o0;
                                for (int32_t j = 0; j < len; j++)
                                {
                                    acc[j] += (int32_t)in_ch[j] * (int32_t)w_px[j];
                                }
                            }
                            else
                            {
                                int32_t ic = ic0;
                                int32_t m = m0;
                                for (int32_t j = 0; j < len; j++)
                                {
                                    acc[j] += (int32_t)in_px[ic] * (int32_t)w_px[j];
                                    if (++m == ch_mult)
                                    {
                                        m = 0;
                                        ic++;
                                    }
                                }
                            }
                        }
                    }
                    for (int32_t j = 0; j < len; j++)
                    {
                        const int32_t o = o0 + j;
                        const int32_t v = arm_nn_requantize_s64(acc[j], mult[o], shift[o]);
                        output_data[o] = (int16_t)arm_nn_clamp_i32(v, act_min, act_max);
                    }
                }
                output_data += out_c;
            }
        }
    }
    return ARM_CMSIS_NN_SUCCESS;
}
