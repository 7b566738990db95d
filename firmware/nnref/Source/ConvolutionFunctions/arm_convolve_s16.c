/* nnref: arm_convolve_s16 (documented in arm_nnfunctions.h). */
#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

#include <stddef.h>

arm_cmsis_nn_status arm_convolve_s16(const cmsis_nn_context *ctx,
                                     const cmsis_nn_conv_params *conv_params,
                                     const cmsis_nn_per_channel_quant_params *quant_params,
                                     const cmsis_nn_dims *input_dims,
                                     const int16_t *input_data,
                                     const cmsis_nn_dims *filter_dims,
                                     const int8_t *filter_data,
                                     const cmsis_nn_dims *bias_dims,
                                     const cmsis_nn_bias_data *bias_data,
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
    const int32_t stride_h = conv_params->stride.h;
    const int32_t stride_w = conv_params->stride.w;
    const int32_t dil_h = conv_params->dilation.h;
    const int32_t dil_w = conv_params->dilation.w;
    const int32_t pad_h = conv_params->padding.h;
    const int32_t pad_w = conv_params->padding.w;
    const int32_t act_min = conv_params->activation.min;
    const int32_t act_max = conv_params->activation.max;

    if (filter_dims->c != in_c || filter_dims->n != out_c || stride_h < 1 || stride_w < 1 || dil_h < 1 ||
        dil_w < 1)
    {
        return ARM_CMSIS_NN_ARG_ERROR;
    }
    /* int32 bias (or none, declared int32): TFLite accumulates in int32 and requantizes with the
     * 32-bit MultiplyByQuantizedMultiplier; int64 bias: int64 and the 64-bit one. */
    const int32_t int32_bias = bias_data != NULL && bias_data->is_int32_bias;
    const void *const bias = bias_data != NULL ? bias_data->data : NULL;
    const int32_t *const bias32 = int32_bias ? (const int32_t *)bias : NULL;
    const int64_t *const bias64 = int32_bias ? NULL : (const int64_t *)bias;
    const int32_t filter_o_stride = k_h * k_w * in_c;
    const int32_t in_row_stride = in_w * in_c;
    const int32_t *const mult = quant_params->multiplier;
    const int32_t *const shift = quant_params->shift;

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

                for (int32_t o = 0; o < out_c; o++)
                {
                    const int8_t *const filter_o = filter_data + (size_t)o * (size_t)filter_o_stride;
                    /* One pixel's products fit int32 (|w * x| <= 2^22, at most 2^8 of them per
                     * block); the sum over the window is int64. */
                    int64_t acc = 0;
                    for (int32_t ky = ky_start; ky < ky_end; ky++)
                    {
                        const int32_t iy = in_y0 + ky * dil_h;
                        for (int32_t kx = kx_start; kx < kx_end; kx++)
                        {
                            const int16_t *const in_px = in_batch + iy * in_row_stride + (in_x0 + kx * dil_w) * in_c;
                            const int8_t *const w_px = filter_o + (ky * k_w + kx) * in_c;
                            for (int32_t c0 = 0; c0 < in_c; c0 += 256)
                            {
                                const int32_t c_end = arm_nn_min_i32(in_c, c0 + 256);
                                int32_t partial = 0;
                                for (int32_t ci = c0; ci < c_end; ci++)
                                {
                                    partial += (int32_t)in_px[ci] * (int32_t)w_px[ci];
                                }
                                acc += partial;
                            }
                        }
                    }
                    int32_t v;
                    if (int32_bias)
                    {
                        /* The low 32 bits of the sum are what a wrapping int32 sum gives. */
                        const int32_t acc32 = arm_nn_wrap_add((int32_t)(uint32_t)(uint64_t)acc,
                                                              bias32 != NULL ? bias32[o] : 0);
                        v = arm_nn_requantize(acc32, mult[o], shift[o]);
                    }
                    else
                    {
                        v = arm_nn_requantize_s64(acc + (bias64 != NULL ? bias64[o] : 0), mult[o], shift[o]);
                    }
                    *output_data++ = (int16_t)arm_nn_clamp_i32(v, act_min, act_max);
                }
            }
        }
    }
    return ARM_CMSIS_NN_SUCCESS;
}
