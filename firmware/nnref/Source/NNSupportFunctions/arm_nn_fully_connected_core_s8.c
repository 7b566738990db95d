/* nnref: internal fully connected kernel (declared in arm_nnsupportfunctions.h). */
#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

#include <stddef.h>

arm_cmsis_nn_status arm_nn_fully_connected_core_s8(const cmsis_nn_context *ctx,
                                                   const cmsis_nn_fc_params *fc_params,
                                                   const int32_t *multiplier,
                                                   const int32_t *shift,
                                                   int32_t per_channel,
                                                   const cmsis_nn_dims *input_dims,
                                                   const int8_t *input_data,
                                                   const cmsis_nn_dims *filter_dims,
                                                   const int8_t *filter_data,
                                                   const int32_t *bias_data,
                                                   const cmsis_nn_dims *output_dims,
                                                   int8_t *output_data)
{
    const int32_t batches = input_dims->n;
    const int32_t depth = filter_dims->n;
    const int32_t out_c = output_dims->c;
    const int32_t input_offset = fc_params->input_offset;
    const int32_t output_offset = fc_params->output_offset;
    const int32_t act_min = fc_params->activation.min;
    const int32_t act_max = fc_params->activation.max;
    const int32_t q_step = per_channel ? 1 : 0;

    if (fc_params->filter_offset != 0 || filter_dims->c != out_c)
    {
        return ARM_CMSIS_NN_ARG_ERROR;
    }

#if NNREF_USE_FC_KERNEL_SUMS
    /* MVE contract: kernel_sum[o] = input_offset * sum_k filter[o][k] + bias[o], from arm_vector_sum_s8. */
    if (ctx == NULL || ctx->buf == NULL || ctx->size < out_c * (int32_t)sizeof(int32_t))
    {
        return ARM_CMSIS_NN_ARG_ERROR;
    }
    const int32_t *const kernel_sum = (const int32_t *)ctx->buf;
    (void)bias_data;
    (void)input_offset;
#else
    (void)ctx;
#endif

    for (int32_t b = 0; b < batches; b++)
    {
        const int8_t *const in_row = input_data + (size_t)b * (size_t)depth;
        const int8_t *w_row = filter_data;
        int32_t q = 0;
        for (int32_t o = 0; o < out_c; o++)
        {
            int32_t acc = 0;
#if NNREF_USE_FC_KERNEL_SUMS
            for (int32_t k = 0; k < depth; k++)
            {
                acc += (int32_t)in_row[k] * (int32_t)w_row[k];
            }
            acc += kernel_sum[o];
#else
            for (int32_t k = 0; k < depth; k++)
            {
                acc += ((int32_t)in_row[k] + input_offset) * (int32_t)w_row[k];
            }
            if (bias_data != NULL)
            {
                acc += bias_data[o];
            }
#endif
            acc = arm_nn_requantize(acc, multiplier[q], shift[q]) + output_offset;
            output_data[o] = (int8_t)arm_nn_clamp_i32(acc, act_min, act_max);
            w_row += depth;
            q += q_step;
        }
        output_data += out_c;
    }
    return ARM_CMSIS_NN_SUCCESS;
}
