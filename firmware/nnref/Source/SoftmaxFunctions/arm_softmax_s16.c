/* nnref: arm_softmax_s16 (documented in arm_nnfunctions.h). */
#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

#include <stddef.h>

arm_cmsis_nn_status arm_softmax_s16(const int16_t *input,
                                    const int32_t num_rows,
                                    const int32_t row_size,
                                    const int32_t mult,
                                    const int32_t shift,
                                    const cmsis_nn_softmax_lut_s16 *softmax_params,
                                    int16_t *output)
{
    if (softmax_params == NULL || softmax_params->exp_lut == NULL || softmax_params->one_by_one_lut == NULL ||
        row_size < 1 || row_size > 65536)
    {
        return ARM_CMSIS_NN_ARG_ERROR;
    }
    const int16_t *const exp_lut = softmax_params->exp_lut;
    const int16_t *const recip_lut = softmax_params->one_by_one_lut;

    for (int32_t r = 0; r < num_rows; r++)
    {
        const int16_t *const in = input + (size_t)r * (size_t)row_size;
        int16_t *const out = output + (size_t)r * (size_t)row_size;
        int32_t max = INT16_MIN;
        for (int32_t c = 0; c < row_size; c++)
        {
            max = arm_nn_max_i32(max, in[c]);
        }
        /* exp of each difference to the row maximum, scaled so that [-65535, 0] spans the exp
         * table's [-10, 0], in Q0.15; kept in the output until the sum is known. At most 65536
         * values of at most 32767 each: the sum fits int32. */
        int32_t sum = 0;
        for (int32_t c = 0; c < row_size; c++)
        {
            const int32_t scaled = arm_nn_requantize((int32_t)in[c] - max, mult, shift);
            out[c] = arm_nn_lut_lookup_s16(arm_nn_sat_i16(scaled + 32767), exp_lut);
            sum += out[c];
        }
        if (sum < 2)
        {
            return ARM_CMSIS_NN_ARG_ERROR; /* only tables that are not TFLite's give this */
        }
        /* 1 / sum from the 1 / (1 + x) table: sum normalised to [1, 2) in Q1.15, then x = sum - 1
         * recentred on the int16 range. */
        const int32_t headroom_plus_one = arm_nn_clz_u32((uint32_t)sum);
        const int32_t shifted_sum =
            (int32_t)((((int64_t)sum << (headroom_plus_one - 1)) + (1 << 13)) >> 14);
        const int16_t reciprocal =
            arm_nn_lut_lookup_s16(arm_nn_sat_i16(shifted_sum - (1 << 15) - (1 << 16)), recip_lut);
        const int32_t right_shift = 31 - headroom_plus_one;
        const int64_t round = (int64_t)1 << (right_shift - 1);
        for (int32_t c = 0; c < row_size; c++)
        {
            const int32_t v = (int32_t)(((int64_t)out[c] * reciprocal + round) >> right_shift);
            out[c] = (int16_t)arm_nn_clamp_i32(v, 0, INT16_MAX);
        }
    }
    return ARM_CMSIS_NN_SUCCESS;
}
