/* nnref: arm_nn_extremum_s8 (documented in arm_nnsupportfunctions.h). */
#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

#include <stddef.h>

arm_cmsis_nn_status arm_nn_extremum_s8(const int8_t *input_1_data,
                                       const cmsis_nn_dims *input_1_dims,
                                       const int8_t *input_2_data,
                                       const cmsis_nn_dims *input_2_dims,
                                       int8_t *output_data,
                                       const cmsis_nn_dims *output_dims,
                                       int32_t take_max)
{
    arm_nn_broadcast_walk walk;
    if (!arm_nn_broadcast_init(&walk, input_1_dims, input_2_dims, output_dims))
    {
        return ARM_CMSIS_NN_ARG_ERROR;
    }
    for (int32_t n = 0; n < output_dims->n; n++)
    {
        for (int32_t h = 0; h < output_dims->h; h++)
        {
            for (int32_t w = 0; w < output_dims->w; w++)
            {
                const size_t i1 = arm_nn_broadcast_offset(&walk, 0, n, h, w);
                const size_t i2 = arm_nn_broadcast_offset(&walk, 1, n, h, w);
                for (int32_t c = 0; c < output_dims->c; c++)
                {
                    const int8_t a = input_1_data[i1 + (size_t)c * walk.stride[0][3]];
                    const int8_t b = input_2_data[i2 + (size_t)c * walk.stride[1][3]];
                    *output_data++ = (a > b) == (take_max != 0) ? a : b;
                }
            }
        }
    }
    return ARM_CMSIS_NN_SUCCESS;
}
