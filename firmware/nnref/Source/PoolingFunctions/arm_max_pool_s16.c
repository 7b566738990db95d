/* nnref: arm_max_pool_s16 (documented in arm_nnfunctions.h). */
#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

#include <stddef.h>

arm_cmsis_nn_status arm_max_pool_s16(const cmsis_nn_context *ctx,
                                     const cmsis_nn_pool_params *pool_params,
                                     const cmsis_nn_dims *input_dims,
                                     const int16_t *src,
                                     const cmsis_nn_dims *filter_dims,
                                     const cmsis_nn_dims *output_dims,
                                     int16_t *dst)
{
    (void)ctx;

    const int32_t batches = input_dims->n;
    const int32_t in_h = input_dims->h;
    const int32_t in_w = input_dims->w;
    const int32_t ch = input_dims->c;
    const int32_t k_h = filter_dims->h;
    const int32_t k_w = filter_dims->w;
    const int32_t out_h = output_dims->h;
    const int32_t out_w = output_dims->w;
    const int32_t stride_h = pool_params->stride.h;
    const int32_t stride_w = pool_params->stride.w;
    const int32_t pad_h = pool_params->padding.h;
    const int32_t pad_w = pool_params->padding.w;
    const int32_t act_min = pool_params->activation.min;
    const int32_t act_max = pool_params->activation.max;

    if (stride_h < 1 || stride_w < 1)
    {
        return ARM_CMSIS_NN_ARG_ERROR;
    }

    const int32_t in_row_stride = in_w * ch;
    int32_t best[NNREF_CH_BLOCK];

    for (int32_t b = 0; b < batches; b++)
    {
        const int16_t *const in_batch = src + (size_t)b * (size_t)in_h * (size_t)in_row_stride;
        for (int32_t oy = 0; oy < out_h; oy++)
        {
            const int32_t in_y0 = oy * stride_h - pad_h;
            int32_t ky_start;
            int32_t ky_end;
            arm_nn_kernel_range(in_y0, 1, in_h, k_h, &ky_start, &ky_end);

            for (int32_t ox = 0; ox < out_w; ox++)
            {
                const int32_t in_x0 = ox * stride_w - pad_w;
                int32_t kx_start;
                int32_t kx_end;
                arm_nn_kernel_range(in_x0, 1, in_w, k_w, &kx_start, &kx_end);

                for (int32_t c0 = 0; c0 < ch; c0 += NNREF_CH_BLOCK)
                {
                    const int32_t len = arm_nn_min_i32(NNREF_CH_BLOCK, ch - c0);
                    /* An empty window leaves INT16_MIN, which the clamp turns into activation.min. */
                    for (int32_t j = 0; j < len; j++)
                    {
                        best[j] = INT16_MIN;
                    }
                    for (int32_t ky = ky_start; ky < ky_end; ky++)
                    {
                        for (int32_t kx = kx_start; kx < kx_end; kx++)
                        {
                            const int16_t *const in_px =
                                in_batch + (in_y0 + ky) * in_row_stride + (in_x0 + kx) * ch + c0;
                            for (int32_t j = 0; j < len; j++)
                            {
                                best[j] = arm_nn_max_i32(best[j], (int32_t)in_px[j]);
                            }
                        }
                    }
                    for (int32_t j = 0; j < len; j++)
                    {
                        dst[c0 + j] = (int16_t)arm_nn_clamp_i32(best[j], act_min, act_max);
                    }
                }
                dst += ch;
            }
        }
    }
    return ARM_CMSIS_NN_SUCCESS;
}
