/* nnref: arm_convolve_wrapper_s8 (documented in arm_nnfunctions.h). */
#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

#include <stddef.h>

arm_cmsis_nn_status arm_convolve_wrapper_s8(const cmsis_nn_context *ctx,
                                            const cmsis_nn_conv_params *conv_params,
                                            const cmsis_nn_per_channel_quant_params *quant_params,
                                            const cmsis_nn_dims *input_dims,
                                            const int8_t *input_data,
                                            const cmsis_nn_dims *filter_dims,
                                            const int8_t *filter_data,
                                            const cmsis_nn_dims *bias_dims,
                                            const int32_t *bias_data,
                                            const cmsis_nn_dims *output_dims,
                                            int8_t *output_data)
{
    (void)ctx;
    (void)bias_dims;

    const int32_t batches = input_dims->n;
    const int32_t in_h = input_dims->h;
    const int32_t in_w = input_dims->w;
    const int32_t in_c = input_dims->c;
    const int32_t k_h = filter_dims->h;
    const int32_t k_w = filter_dims->w;
    const int32_t f_c = filter_dims->c;
    const int32_t out_h = output_dims->h;
    const int32_t out_w = output_dims->w;
    const int32_t out_c = output_dims->c;
    const int32_t stride_h = conv_params->stride.h;
    const int32_t stride_w = conv_params->stride.w;
    const int32_t dil_h = conv_params->dilation.h;
    const int32_t dil_w = conv_params->dilation.w;
    const int32_t pad_h = conv_params->padding.h;
    const int32_t pad_w = conv_params->padding.w;
    const int32_t input_offset = conv_params->input_offset;
    const int32_t output_offset = conv_params->output_offset;
    const int32_t act_min = conv_params->activation.min;
    const int32_t act_max = conv_params->activation.max;

    if (f_c < 1 || in_c % f_c != 0 || filter_dims->n != out_c || stride_h < 1 || stride_w < 1 || dil_h < 1 ||
        dil_w < 1)
    {
        return ARM_CMSIS_NN_ARG_ERROR;
    }
    const int32_t groups = in_c / f_c;
    if (out_c % groups != 0)
    {
        return ARM_CMSIS_NN_ARG_ERROR;
    }
    const int32_t out_c_per_group = out_c / groups;
    const int32_t filter_o_stride = k_h * k_w * f_c;
    const int32_t in_row_stride = in_w * in_c;
    const int32_t in_dil_w_stride = dil_w * in_c;

    const int32_t *const mult = quant_params->multiplier;
    const int32_t *const shift = quant_params->shift;

    for (int32_t b = 0; b < batches; b++)
    {
        const int8_t *const in_batch = input_data + (size_t)b * (size_t)in_h * (size_t)in_row_stride;
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

                int32_t o = 0;
                for (int32_t g = 0; g < groups; g++)
                {
                    const int8_t *const in_group = in_batch + g * f_c;
                    for (int32_t og = 0; og < out_c_per_group; og++, o++)
                    {
                        const int8_t *const filter_o = filter_data + (size_t)o * (size_t)filter_o_stride;
                        int32_t acc = 0;
                        for (int32_t ky = ky_start; ky < ky_end; ky++)
                        {
                            const int32_t iy = in_y0 + ky * dil_h;
                            int32_t in_idx = iy * in_row_stride + (in_x0 + kx_start * dil_w) * in_c;
                            int32_t w_idx = (ky * k_w + kx_start) * f_c;
                            for (int32_t kx = kx_start; kx < kx_end; kx++)
                            {
                                const int8_t *const in_px = in_group + in_idx;
                                const int8_t *const w_px = filter_o + w_idx;
                                for (int32_t ci = 0; ci < f_c; ci++)
                                {
                                    acc += ((int32_t)in_px[ci] + input_offset) * (int32_t)w_px[ci];
                                }
                                in_idx += in_dil_w_stride;
                                w_idx += f_c;
                            }
                        }
                        if (bias_data != NULL)
                        {
                            acc += bias_data[o];
                        }
                        acc = arm_nn_requantize(acc, mult[o], shift[o]) + output_offset;
                        *output_data++ = (int8_t)arm_nn_clamp_i32(acc, act_min, act_max);
                    }
                }
            }
        }
    }
    return ARM_CMSIS_NN_SUCCESS;
}
