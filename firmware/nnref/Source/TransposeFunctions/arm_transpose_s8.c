/* nnref: arm_transpose_s8 (documented in arm_nnfunctions.h). */
#include "arm_nnfunctions.h"

#include <stddef.h>

arm_cmsis_nn_status arm_transpose_s8(const int8_t *input,
                                     int8_t *const output,
                                     const cmsis_nn_dims *const input_dims,
                                     const cmsis_nn_dims *const output_dims,
                                     const cmsis_nn_transpose_params *const transpose_params)
{
    const int32_t rank = transpose_params->num_dims;
    const uint32_t *const perm = transpose_params->permutations;
    const int32_t in_shape[4] = {input_dims->n, input_dims->h, input_dims->w, input_dims->c};
    const int32_t out_shape[4] = {output_dims->n, output_dims->h, output_dims->w, output_dims->c};
    /* Axes beyond the rank have extent 1 and stride 0, so the walk below is always 4-D. */
    int32_t shape[4] = {1, 1, 1, 1};
    size_t in_stride[4] = {0, 0, 0, 0};
    size_t stride = 1;
    uint32_t seen = 0;

    if (rank < 1 || rank > 4)
    {
        return ARM_CMSIS_NN_ARG_ERROR;
    }
    for (int32_t i = 0; i < rank; i++)
    {
        if (perm[i] >= (uint32_t)rank || (seen & (1u << perm[i])) != 0u || out_shape[i] != in_shape[perm[i]])
        {
            return ARM_CMSIS_NN_ARG_ERROR;
        }
        seen |= 1u << perm[i];
    }
    /* in_stride[i]: step in the input for one step along output axis i. */
    for (int32_t a = rank - 1; a >= 0; a--)
    {
        for (int32_t i = 0; i < rank; i++)
        {
            if (perm[i] == (uint32_t)a)
            {
                in_stride[i] = stride;
                shape[i] = out_shape[i];
            }
        }
        stride *= (size_t)in_shape[a];
    }

    int8_t *out = output;
    for (int32_t i0 = 0; i0 < shape[0]; i0++)
    {
        for (int32_t i1 = 0; i1 < shape[1]; i1++)
        {
            for (int32_t i2 = 0; i2 < shape[2]; i2++)
            {
                const int8_t *in = input + (size_t)i0 * in_stride[0] + (size_t)i1 * in_stride[1] +
                                   (size_t)i2 * in_stride[2];
                for (int32_t i3 = 0; i3 < shape[3]; i3++)
                {
                    *out++ = *in;
                    in += in_stride[3];
                }
            }
        }
    }
    return ARM_CMSIS_NN_SUCCESS;
}
