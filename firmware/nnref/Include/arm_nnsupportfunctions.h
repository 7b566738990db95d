/*
 * nnref: internal helpers (not part of the public API; generated code must not include this,
 * except to call arm_nn_lstm_step_s8/_s16, Arm's internal LSTM step of the same name and
 * arguments, the only way to keep an LSTM's state from one call to the next).
 *
 * Fixed-point arithmetic of the TFLite int8 reference kernels ("double rounding" requantization),
 * of their 64-bit twin for the int16 kernels, of the int16 lookup tables, and of the gemmlowp
 * fixed-point routines used by the int8 softmax, written from their
 * mathematical definitions. All helpers are static inline and free of undefined behaviour for
 * every int32 input: wrapping operations are done on uint32_t. Right shifts of negative values
 * assume the usual arithmetic shift (GCC, Clang, Arm Compiler and MSVC all do this).
 */
#ifndef ARM_NNSUPPORTFUNCTIONS_H
#define ARM_NNSUPPORTFUNCTIONS_H

#include <stddef.h>
#include <stdint.h>

#include "arm_nn_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Fully connected "kernel sums" contract. Arm's library, when built for MVE (Helium), expects the
 * caller to precompute per-row filter sums (arm_vector_sum_s8) into ctx->buf. nnref mirrors that
 * contract when __ARM_FEATURE_MVE is defined; defining NNREF_FC_KERNEL_SUMS forces the same
 * behaviour on any target (useful to test the MVE contract from a host build).
 */
#if defined(__ARM_FEATURE_MVE) || defined(NNREF_FC_KERNEL_SUMS)
#define NNREF_USE_FC_KERNEL_SUMS 1
#else
#define NNREF_USE_FC_KERNEL_SUMS 0
#endif

/** Channels processed together by the depthwise and pooling kernels (stack accumulators). */
#define NNREF_CH_BLOCK 32

static inline int32_t arm_nn_min_i32(int32_t a, int32_t b) { return a < b ? a : b; }
static inline int32_t arm_nn_max_i32(int32_t a, int32_t b) { return a > b ? a : b; }

/** Clamp v to [lo, hi]. */
static inline int32_t arm_nn_clamp_i32(int32_t v, int32_t lo, int32_t hi)
{
    return v < lo ? lo : (v > hi ? hi : v);
}

/** Two's complement wrapping add / subtract (gemmlowp fixed-point + and -). */
static inline int32_t arm_nn_wrap_add(int32_t a, int32_t b) { return (int32_t)((uint32_t)a + (uint32_t)b); }
static inline int32_t arm_nn_wrap_sub(int32_t a, int32_t b) { return (int32_t)((uint32_t)a - (uint32_t)b); }

/** x * 2^e with int32 wrap-around, 0 <= e <= 31. */
static inline int32_t arm_nn_shl_wrap(int32_t x, int32_t e) { return (int32_t)((uint32_t)x << e); }

/**
 * SaturatingRoundingDoublingHighMul: a * b / 2^31 rounded to nearest. The nudge is +2^30 for a
 * non-negative product and 1 - 2^30 otherwise, followed by a division truncating toward zero.
 * Saturates only for INT32_MIN * INT32_MIN. Also the product of two fixed-point numbers
 * (integer bits add up).
 */
static inline int32_t arm_nn_doubling_high_mult(int32_t a, int32_t b)
{
    if (a == INT32_MIN && b == INT32_MIN)
    {
        return INT32_MAX;
    }
    const int64_t ab = (int64_t)a * (int64_t)b;
    const int64_t nudge = ab >= 0 ? ((int64_t)1 << 30) : ((int64_t)1 - ((int64_t)1 << 30));
    return (int32_t)((ab + nudge) / ((int64_t)1 << 31));
}

/**
 * RoundingDivideByPOT: x / 2^e rounded to nearest, ties away from zero. 0 <= e <= 31;
 * larger e is treated as 31.
 */
static inline int32_t arm_nn_divide_by_power_of_two(int32_t x, int32_t e)
{
    if (e > 31)
    {
        e = 31;
    }
    const int32_t mask = (int32_t)(((uint32_t)1 << e) - 1u);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> e) + (remainder > threshold ? 1 : 0);
}

/**
 * MultiplyByQuantizedMultiplier (TFLite, double rounding): x * multiplier * 2^(shift - 31).
 * shift > 0 is a left shift applied before the multiply (with int32 wrap-around), shift <= 0 a
 * rounding right shift applied after it.
 */
static inline int32_t arm_nn_requantize(int32_t x, int32_t multiplier, int32_t shift)
{
    const int32_t left = shift > 0 ? shift : 0;
    const int32_t right = shift > 0 ? 0 : -shift;
    return arm_nn_divide_by_power_of_two(arm_nn_doubling_high_mult(arm_nn_shl_wrap(x, left), multiplier), right);
}

/**
 * MultiplyByQuantizedMultiplier of TFLite for a 64-bit accumulator (the int16 kernels with int64
 * bias): the Q31 multiplier is first rounded to 16 bits (0x7FFF from 0x7FFF0000 up), then
 * x * reduced * 2^(shift - 15) is computed with one rounding shift whose ties go up (toward +inf).
 * shift in [-31, 7]; |x| < 2^47 keeps the product inside int64 (larger x wraps, as on TFLite's
 * hosts). The result is the low 32 bits.
 */
static inline int32_t arm_nn_requantize_s64(int64_t x, int32_t multiplier, int32_t shift)
{
    const int32_t reduced = multiplier < 0x7FFF0000 ? (multiplier + (1 << 15)) >> 16 : 0x7FFF;
    const int32_t total_shift = 15 - shift;
    const uint64_t product = (uint64_t)x * (uint64_t)(int64_t)reduced;
    const int64_t rounded = (int64_t)(product + ((uint64_t)1 << (total_shift - 1)));
    return (int32_t)(uint32_t)(uint64_t)(rounded >> total_shift);
}

/** Saturate to int16. */
static inline int16_t arm_nn_sat_i16(int32_t v)
{
    return (int16_t)arm_nn_clamp_i32(v, INT16_MIN, INT16_MAX);
}

/** Two's complement truncation to int16 (what a C++ static_cast<int16_t> does on TFLite's hosts). */
static inline int16_t arm_nn_wrap_i16(int32_t v)
{
    const uint32_t low = (uint32_t)v & 0xFFFFu;
    return (int16_t)(low >= 0x8000u ? (int32_t)low - 0x10000 : (int32_t)low);
}

/**
 * TFLite's int16 table lookup with linear interpolation (LUTLookup): a 513-entry table over the
 * int16 range, indexed by the top 9 bits of value; the low 7 bits interpolate to the next entry.
 */
static inline int16_t arm_nn_lut_lookup_s16(int16_t value, const int16_t *lut)
{
    const int32_t index = 256 + ((int32_t)value >> 7);
    const int32_t offset = (int32_t)value & 0x7F;
    const int32_t base = lut[index];
    const int32_t slope = arm_nn_wrap_i16((int32_t)lut[index + 1] - base);
    const int32_t delta = (slope * offset + 64) >> 7;
    return arm_nn_wrap_i16(base + delta);
}

/**
 * sigmoid(i / 24) in unsigned 0.16 fixed point for i = 0..255 (255 saturated to 65535): the table
 * behind TFLite's int16 LOGISTIC and TANH (tanh(x) = 2 * sigmoid(2x) - 1), used by
 * arm_nn_activation_s16.
 */
extern const uint16_t arm_nn_sigmoid_table_s16[256];

/**
 * Valid kernel taps along one axis: taps k in [*k_start, *k_end) satisfy
 * 0 <= origin + k * dilation < in_size. dilation >= 1. May return an empty range.
 */
static inline void arm_nn_kernel_range(
    int32_t origin, int32_t dilation, int32_t in_size, int32_t k_size, int32_t *k_start, int32_t *k_end)
{
    int32_t start = 0;
    int32_t end = k_size;
    if (origin < 0)
    {
        start = (-origin + dilation - 1) / dilation;
    }
    if (origin >= in_size)
    {
        end = 0;
    }
    else
    {
        end = arm_nn_min_i32(k_size, (in_size - origin + dilation - 1) / dilation);
    }
    *k_start = start;
    *k_end = end;
}

/* ---------------- broadcasting of two NHWC inputs to one output ---------------- */

/** Element strides of two inputs read as the output's shape: stride[k][axis] for input k and
 * axis n, h, w, c; 0 along an axis where the input has extent 1 (broadcast). */
typedef struct
{
    size_t stride[2][4];
} arm_nn_broadcast_walk;

/**
 * Fill walk for inputs a and b broadcast to out. Returns 0 (and leaves walk unusable) when an
 * input's extent is neither the output's nor 1 along some axis, else 1.
 */
static inline int32_t arm_nn_broadcast_init(arm_nn_broadcast_walk *walk,
                                            const cmsis_nn_dims *a,
                                            const cmsis_nn_dims *b,
                                            const cmsis_nn_dims *out)
{
    const cmsis_nn_dims *const inputs[2] = {a, b};
    const int32_t o[4] = {out->n, out->h, out->w, out->c};
    for (int32_t k = 0; k < 2; k++)
    {
        const int32_t d[4] = {inputs[k]->n, inputs[k]->h, inputs[k]->w, inputs[k]->c};
        size_t step = 1;
        for (int32_t axis = 3; axis >= 0; axis--)
        {
            if (d[axis] != o[axis] && d[axis] != 1)
            {
                return 0;
            }
            walk->stride[k][axis] = d[axis] == 1 ? 0u : step;
            step *= (size_t)d[axis];
        }
    }
    return 1;
}

/** Offset of element (n, h, w, 0) of input k in a broadcast walk. */
static inline size_t arm_nn_broadcast_offset(const arm_nn_broadcast_walk *walk, int32_t k, int32_t n, int32_t h, int32_t w)
{
    return (size_t)n * walk->stride[k][0] + (size_t)h * walk->stride[k][1] + (size_t)w * walk->stride[k][2];
}

/* ---------------- gemmlowp-style fixed point (int32 raw values) ---------------- */

/** Count leading zeros of a uint32 (32 for 0). */
static inline int32_t arm_nn_clz_u32(uint32_t x)
{
    if (x == 0u)
    {
        return 32;
    }
#if defined(__GNUC__) || defined(__clang__)
    return (int32_t)__builtin_clz(x);
#else
    int32_t n = 0;
    while ((x & 0x80000000u) == 0u)
    {
        x <<= 1;
        n++;
    }
    return n;
#endif
}

/** SaturatingRoundingMultiplyByPOT<e> for 1 <= e <= 31: saturating left shift. */
static inline int32_t arm_nn_sat_shl(int32_t x, int32_t e)
{
    const int32_t threshold = (int32_t)(((uint32_t)1 << (31 - e)) - 1u);
    if (x > threshold)
    {
        return INT32_MAX;
    }
    if (x < -threshold)
    {
        return INT32_MIN;
    }
    return arm_nn_shl_wrap(x, e);
}

/** gemmlowp RoundingHalfSum: (a + b) / 2 rounded half away from zero. */
static inline int32_t arm_nn_rounding_half_sum(int32_t a, int32_t b)
{
    const int64_t sum = (int64_t)a + (int64_t)b;
    const int64_t sign = sum >= 0 ? 1 : -1;
    return (int32_t)((sum + sign) / 2);
}

/**
 * exp(a) for a in [-1/4, 0) with a and the result in Q0.31 (0 integer bits).
 * Taylor expansion around -1/8.
 */
static inline int32_t arm_nn_exp_on_interval_neg_quarter_to_0(int32_t a)
{
    const int32_t c_exp_neg_1_8 = 1895147668; /* exp(-1/8) */
    const int32_t c_1_3 = 715827883;          /* 1/3 */
    const int32_t x = arm_nn_wrap_add(a, (int32_t)1 << 28); /* a + 1/8 */
    const int32_t x2 = arm_nn_doubling_high_mult(x, x);
    const int32_t x3 = arm_nn_doubling_high_mult(x2, x);
    const int32_t x4 = arm_nn_doubling_high_mult(x2, x2);
    const int32_t x4_over_4 = arm_nn_divide_by_power_of_two(x4, 2);
    const int32_t poly = arm_nn_divide_by_power_of_two(
        arm_nn_wrap_add(arm_nn_doubling_high_mult(arm_nn_wrap_add(x4_over_4, x3), c_1_3), x2), 1);
    return arm_nn_wrap_add(c_exp_neg_1_8, arm_nn_doubling_high_mult(c_exp_neg_1_8, arm_nn_wrap_add(x, poly)));
}

/**
 * exp(a) for a <= 0, a in Q5.26 (5 integer bits), result in Q0.31.
 * exp(a) = exp(a mod 1/4 - 1/4) * product of exp(-2^k) for the bits of the remainder.
 */
static inline int32_t arm_nn_exp_on_negative_values_q5(int32_t a)
{
    static const int32_t multipliers[7] = {
        1672461947, /* exp(-1/4) */
        1302514674, /* exp(-1/2) */
        790015084,  /* exp(-1)   */
        290630308,  /* exp(-2)   */
        39332535,   /* exp(-4)   */
        720401,     /* exp(-8)   */
        242,        /* exp(-16)  */
    };
    const int32_t frac_bits = 26;
    const int32_t quarter = (int32_t)1 << (frac_bits - 2);
    const int32_t mask = quarter - 1;
    const int32_t a_mod_minus_quarter = arm_nn_wrap_sub(a & mask, quarter);
    /* Rescale from 5 to 0 integer bits. */
    int32_t result = arm_nn_exp_on_interval_neg_quarter_to_0(arm_nn_sat_shl(a_mod_minus_quarter, 5));
    const int32_t remainder = arm_nn_wrap_sub(a_mod_minus_quarter, a);
    for (int32_t k = 0; k < 7; k++)
    {
        /* Bit for exp(-2^(k-2)), i.e. bit 26 + (k - 2). */
        if ((uint32_t)remainder & ((uint32_t)1 << (frac_bits - 2 + k)))
        {
            result = arm_nn_doubling_high_mult(result, multipliers[k]);
        }
    }
    if (a == 0)
    {
        result = INT32_MAX;
    }
    return result;
}

/**
 * 1 / (1 + a) for a in [0, 1), a and the result in Q0.31. Newton-Raphson on the half
 * denominator with the iterate in Q2.29.
 */
static inline int32_t arm_nn_one_over_one_plus_x_for_x_in_0_1(int32_t a)
{
    const int32_t half_den = arm_nn_rounding_half_sum(a, INT32_MAX);
    const int32_t c_48_over_17 = 1515870810;      /* Q2.29 */
    const int32_t c_neg_32_over_17 = -1010580540; /* Q2.29 */
    const int32_t one_q2 = (int32_t)1 << 29;
    int32_t x = arm_nn_wrap_add(c_48_over_17, arm_nn_doubling_high_mult(half_den, c_neg_32_over_17));
    for (int32_t i = 0; i < 3; i++)
    {
        const int32_t half_den_times_x = arm_nn_doubling_high_mult(half_den, x);         /* Q2.29 */
        const int32_t one_minus = arm_nn_wrap_sub(one_q2, half_den_times_x);             /* Q2.29 */
        const int32_t delta = arm_nn_sat_shl(arm_nn_doubling_high_mult(x, one_minus), 2); /* Q4 -> Q2 */
        x = arm_nn_wrap_add(x, delta);
    }
    /* x approximates 2 / (1 + a) in Q2.29; halve it exactly by reinterpreting the raw value as
     * Q1.30 (no bit operation), then rescale Q1.30 -> Q0.31 with a saturating left shift by 1. */
    return arm_nn_sat_shl(x, 1);
}

/* ---------------- internal non-inline kernels ---------------- */

/**
 * Shared fully connected kernel behind arm_fully_connected_s8, arm_fully_connected_per_channel_s8
 * and arm_fully_connected_wrapper_s8. multiplier/shift point to one value (per_channel == 0) or
 * to output_dims->c values (per_channel != 0). Arguments and return codes as for
 * arm_fully_connected_s8.
 */
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
                                                   int8_t *output_data);

/**
 * Shared element-wise kernel behind arm_maximum_s8 (take_max != 0) and arm_minimum_s8
 * (take_max == 0). Arguments and return codes as for arm_maximum_s8.
 */
arm_cmsis_nn_status arm_nn_extremum_s8(const int8_t *input_1_data,
                                       const cmsis_nn_dims *input_1_dims,
                                       const int8_t *input_2_data,
                                       const cmsis_nn_dims *input_2_dims,
                                       int8_t *output_data,
                                       const cmsis_nn_dims *output_dims,
                                       int32_t take_max);

/**
 * One time step of arm_lstm_unidirectional_s8 for every batch (Arm's internal entry point, same
 * name and arguments): the four gates from data_in and hidden_in, the cell state in
 * buffers->cell_state updated in place, the new hidden state written to hidden_out.
 *
 * @param[in]     data_in       Input of this step: batch b starts at data_in + b * batch_offset *
 *                              input_size.
 * @param[in]     hidden_in     Hidden state of the previous step, batch b at hidden_in + b *
 *                              batch_offset * hidden_size; NULL for a zero hidden state (the
 *                              recurrent FC is skipped).
 * @param[out]    hidden_out    New hidden state, same layout as hidden_in; may be hidden_in itself
 *                              (it is written after every gate has read hidden_in).
 * @param[in]     params        The layer, see arm_lstm_unidirectional_s8.
 * @param[in,out] buffers       temp1 and temp2: batch_size * hidden_size int16 scratch each;
 *                              cell_state: batch_size * hidden_size int16, read and updated.
 * @param[in]     batch_offset  1 for time-major data; time_steps for batch-major data read in
 *                              place inside the whole sequence.
 *
 * Calling it step by step with a persistent hidden state and cell state carries the LSTM's state
 * from call to call, as TFLite's variable tensors do.
 *
 * @return ARM_CMSIS_NN_SUCCESS.
 */
arm_cmsis_nn_status arm_nn_lstm_step_s8(const int8_t *data_in,
                                        const int8_t *hidden_in,
                                        int8_t *hidden_out,
                                        const cmsis_nn_lstm_params *params,
                                        cmsis_nn_lstm_context *buffers,
                                        const int32_t batch_offset);

/**
 * One time step of arm_lstm_unidirectional_s16 (int16 data and hidden state, int64 effective
 * biases). Arguments and return code as arm_nn_lstm_step_s8.
 */
arm_cmsis_nn_status arm_nn_lstm_step_s16(const int16_t *data_in,
                                         const int16_t *hidden_in,
                                         int16_t *hidden_out,
                                         const cmsis_nn_lstm_params *params,
                                         cmsis_nn_lstm_context *buffers,
                                         const int32_t batch_offset);

/**
 * The first half of the LSTM cell state update, shared by both LSTM steps, on batch_size *
 * hidden_size int16 values: cell = sat16(requantize(forget * cell)) (TFLite's int16 MUL with
 * forget_to_cell_multiplier/shift).
 */
void arm_nn_lstm_forget_cell_s16(const cmsis_nn_lstm_params *params, const int16_t *forget_gate, int16_t *cell_state);

/**
 * The second half: cell = sat16(cell + sat16(requantize(input * cell_gate))) with
 * input_to_cell_multiplier/shift, then clamped to [-cell_clip, cell_clip] when cell_clip > 0.
 * Together with arm_nn_lstm_forget_cell_s16 this is TFLite's update
 * cell = clip(sat16(mul(forget, cell) + mul(input, cell_gate))).
 */
void arm_nn_lstm_add_cell_s16(const cmsis_nn_lstm_params *params,
                              const int16_t *input_gate,
                              const int16_t *cell_gate,
                              int16_t *cell_state);

#ifdef __cplusplus
}
#endif

#endif /* ARM_NNSUPPORTFUNCTIONS_H */
