/* nnref: arm_softmax_s8 (documented in arm_nnfunctions.h). */
#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

#include <stddef.h>

/* exp(diff * beta * scale) in Q0.31 for diff <= 0: the difference is scaled into Q5.26 by
 * mult * 2^shift (MultiplyByQuantizedMultiplierGreaterThanOne). */
static int32_t nnref_softmax_exp(int32_t diff, int32_t mult, int32_t shift)
{
    const int32_t scaled = arm_nn_doubling_high_mult(arm_nn_shl_wrap(diff, shift), mult);
    return arm_nn_exp_on_negative_values_q5(scaled);
}

void arm_softmax_s8(const int8_t *input,
                    const int32_t num_rows,
                    const int32_t row_size,
                    const int32_t mult,
                    const int32_t shift,
                    const int32_t diff_min,
                    int8_t *output)
{
    const int32_t accum_int_bits = 12; /* sum of exps in Q12.19 */
    const int32_t output_bits = 8;

    for (int32_t r = 0; r < num_rows; r++)
    {
        const int8_t *const in = input + (size_t)r * (size_t)row_size;
        int8_t *const out = output + (size_t)r * (size_t)row_size;

        int32_t max = INT8_MIN;
        for (int32_t c = 0; c < row_size; c++)
        {
            max = arm_nn_max_i32(max, (int32_t)in[c]);
        }

        int32_t sum = 0;
        for (int32_t c = 0; c < row_size; c++)
        {
            const int32_t diff = (int32_t)in[c] - max;
            if (diff >= diff_min)
            {
                /* Rescale Q0.31 -> Q12.19. */
                const int32_t e = arm_nn_divide_by_power_of_two(nnref_softmax_exp(diff, mult, shift), accum_int_bits);
                sum = arm_nn_wrap_add(sum, e);
            }
        }

        if (sum == 0)
        {
            /* Only possible for an empty row or a positive diff_min (invalid parameters). */
            for (int32_t c = 0; c < row_size; c++)
            {
                out[c] = (int8_t)INT8_MIN;
            }
            continue;
        }

        /* Reciprocal of the sum: normalise it to 1 + x with x in [0, 1), Q0.31. */
        const int32_t headroom = arm_nn_clz_u32((uint32_t)sum);
        const int32_t num_bits_over_unit = accum_int_bits - headroom;
        const int32_t shifted_sum_minus_one = (int32_t)(((uint32_t)sum << headroom) - ((uint32_t)1 << 31));
        const int32_t recip = arm_nn_one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one);
        const int32_t out_shift = num_bits_over_unit + 31 - output_bits;

        for (int32_t c = 0; c < row_size; c++)
        {
            const int32_t diff = (int32_t)in[c] - max;
            if (diff >= diff_min)
            {
                const int32_t e = nnref_softmax_exp(diff, mult, shift);
                const int32_t v = arm_nn_divide_by_power_of_two(arm_nn_doubling_high_mult(recip, e), out_shift) + INT8_MIN;
                out[c] = (int8_t)arm_nn_clamp_i32(v, INT8_MIN, INT8_MAX);
            }
            else
            {
                out[c] = (int8_t)INT8_MIN;
            }
        }
    }
}
