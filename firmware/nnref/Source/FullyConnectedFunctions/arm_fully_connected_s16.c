/* nnref: arm_fully_connected_s16 (documented in arm_nnfunctions.h). */
#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

#include <stddef.h>

arm_cmsis_nn_status arm_fully_connected_s16(const cmsis_nn_context *ctx,
                                            const cmsis_nn_fc_params *fc_params,
                                            const cmsis_nn_per_tensor_quant_params *quant_params,
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

    const int32_t rows = input_dims->n;
    const int32_t depth = filter_dims->n;
    const int32_t out_c = output_dims->c;
    const int32_t act_min = fc_params->activation.min;
    const int32_t act_max = fc_params->activation.max;
    if (filter_dims->c != out_c)
    {
        return ARM_CMSIS_NN_ARG_ERROR;
    }

    for (int32_t r = 0; r < rows; r++)
    {
        const int16_t *const in_row = input_data + (size_t)r * (size_t)depth;
        for (int32_t o = 0; o < out_c; o++)
        {
            const int8_t *const w_row = filter_data + (size_t)o * (size_t)depth;
            int64_t acc = bias_data != NULL ? bias_data[o] : 0;
            /* Blocks of 256 products fit int32 (|w * x| <= 2^22). */
            for (int32_t k0 = 0; k0 < depth; k0 += 256)
            {
                const int32_t k_end = arm_nn_min_i32(depth, k0 + 256);
                int32_t partial = 0;
                for (int32_t k = k0; k < k_end; k++)
                {
                    partial += (int32_t)in_row[k] * (int32_t)w_row[k];
                }
                acc += partial;
            }
            const int32_t v = arm_nn_requantize_s64(acc, quant_params->multiplier, quant_params->shift);
            *output_data++ = (int16_t)arm_nn_clamp_i32(v, act_min, act_max);
        }
    }
    return ARM_CMSIS_NN_SUCCESS;
}
