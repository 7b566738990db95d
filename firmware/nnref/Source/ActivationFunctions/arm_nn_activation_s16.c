/* nnref: arm_nn_activation_s16 (documented in arm_nnfunctions.h). */
#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

/* |x| in the table's units: sigmoid reads entry |x| >> 9 and interpolates with the low 9 bits;
 * tanh(x) = 2 sigmoid(2x) - 1 reads entry |x| >> 8 with the low 8 bits. */
static int16_t sigmoid_s16(int32_t x)
{
    const uint32_t magnitude = (uint32_t)(x < 0 ? -x : x);
    const uint32_t entry = magnitude >> 9;
    uint32_t r;
    if (entry >= 255u)
    {
        r = 0x7FFFu << 10;
    }
    else
    {
        const uint32_t a = arm_nn_sigmoid_table_s16[entry];
        const uint32_t b = arm_nn_sigmoid_table_s16[entry + 1u];
        r = (a << 9) + (magnitude & 0x1FFu) * (b - a);
    }
    r = x >= 0 ? r + (1u << 9) : (1u << 25) - r + (1u << 9) - 1u;
    return (int16_t)(r >> 10);
}

static int16_t tanh_s16(int32_t x)
{
    const uint32_t magnitude = (uint32_t)(x < 0 ? -x : x);
    const uint32_t entry = magnitude >> 8;
    int32_t r;
    if (entry >= 255u)
    {
        r = 0xFFFF << 8;
    }
    else
    {
        const uint32_t a = arm_nn_sigmoid_table_s16[entry];
        const uint32_t b = arm_nn_sigmoid_table_s16[entry + 1u];
        r = (int32_t)((a << 8) + (magnitude & 0xFFu) * (b - a));
    }
    r = x >= 0 ? r - (1 << 23) + (1 << 7) : -r + (1 << 23) + (1 << 7) - 1;
    return (int16_t)(r >> 8);
}

arm_cmsis_nn_status arm_nn_activation_s16(const int16_t *input,
                                          int16_t *output,
                                          const int32_t size,
                                          const int32_t left_shift,
                                          const arm_nn_activation_type type)
{
    /* The input in units of 1/(3 * 2^12): times 3 << left_shift, or times 3 and a rounding
     * right shift for a negative left_shift. */
    const int32_t right = left_shift < 0 ? -left_shift : 0;
    const int32_t multiplier = left_shift < 0 ? 3 : 3 * (1 << left_shift);
    const int32_t round = right > 0 ? 1 << (right - 1) : 0;
    for (int32_t i = 0; i < size; i++)
    {
        const int32_t x = ((int32_t)input[i] * multiplier + round) >> right;
        output[i] = type == ARM_TANH ? tanh_s16(x) : sigmoid_s16(x);
    }
    return ARM_CMSIS_NN_SUCCESS;
}
