/*
 * nnref: portable C implementation of a subset of the CMSIS-NN API.
 *
 * Function names, argument order, types and header names match Arm's CMSIS-NN (v6/v7), so code
 * that includes "arm_nnfunctions.h" compiles unchanged against either library. Results are
 * bit-exact with the TFLite int8 reference kernels (default "double rounding" requantization).
 * Written for mcudeploy from the API description and the TFLite arithmetic; it contains no
 * CMSIS-NN or TFLite code. Plain C11, no dynamic memory, no floating point.
 *
 * This header is the only place where the functions are documented.
 *
 * Conventions used by every function:
 *  - Tensors are NHWC: dims {n, h, w, c} = [batch, height, width, channels], int8 data.
 *  - Weights are int8 with zero point 0, biases int32 with zero point 0 (bias may be NULL = 0).
 *  - input_offset  = -input_zero_point, range [-127, 128];
 *    output_offset = +output_zero_point, range [-128, 127].
 *  - Requantization: out = clamp(MultiplyByQuantizedMultiplier(acc, multiplier, shift) +
 *    output_offset, activation.min, activation.max), multiplier a Q31 value in [2^30, 2^31)
 *    (0 is allowed), shift in [-31, 30] with positive = left.
 *  - Padding: padding.w / padding.h are the left / top padding; the right / bottom padding is
 *    implied by output_dims. Positions outside the input contribute nothing (for convolutions
 *    this equals padding with the input zero point).
 *  - stride and dilation must be >= 1 (ARM_CMSIS_NN_ARG_ERROR otherwise).
 *  - Scratch: nnref needs no scratch memory except the fully connected kernel sums on MVE builds
 *    (see arm_fully_connected_s8). Every other *_get_buffer_size* query returns 0 and the
 *    corresponding function ignores ctx (which may then be NULL).
 *
 * Build-time options:
 *  - __ARM_FEATURE_MVE (set by the compiler for Helium targets, e.g. -mcpu=cortex-m55) or
 *    NNREF_FC_KERNEL_SUMS (set by hand, e.g. for a host build) select the MVE contract of the
 *    fully connected functions: kernel sums precomputed with arm_vector_sum_s8 in ctx->buf.
 */
#ifndef ARM_NNFUNCTIONS_H
#define ARM_NNFUNCTIONS_H

#include <stdint.h>

#include "arm_nn_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ======================================================================================
 * Convolution
 * ====================================================================================== */

/**
 * @brief Convolution (optionally grouped) with per-channel requantization, int8 in/out.
 *
 * @param[in]  ctx           Scratch context. Not used by nnref (may be NULL).
 * @param[in]  conv_params   input_offset, output_offset, stride, padding (left/top), dilation,
 *                           activation (output clamp, within [-128, 127]).
 * @param[in]  quant_params  Per-channel multiplier[C_out] and shift[C_out].
 * @param[in]  input_dims    [N, H, W, C_in].
 * @param[in]  input_data    Input, NHWC.
 * @param[in]  filter_dims   n = C_out, h = KH, w = KW, c = C_f (input channels per group).
 * @param[in]  filter_data   Filter, OHWI: [C_out][KH][KW][C_f].
 * @param[in]  bias_dims     [C_out] in c (not used).
 * @param[in]  bias_data     Bias[C_out], or NULL for no bias.
 * @param[in]  output_dims   [N, H_out, W_out, C_out] (n is taken from input_dims).
 * @param[out] output_data   Output, NHWC.
 *
 * Grouped convolution: groups = C_in / C_f; output channel o belongs to group
 * g = o / (C_out / groups) and reads input channels [g * C_f, (g + 1) * C_f).
 * Output pixel (y, x) reads input row y * stride.h - padding.h + ky * dilation.h and column
 * x * stride.w - padding.w + kx * dilation.w.
 *
 * @return ARM_CMSIS_NN_SUCCESS, or ARM_CMSIS_NN_ARG_ERROR if C_f < 1, C_in % C_f != 0,
 *         C_out % groups != 0, filter_dims->n != output_dims->c, or stride/dilation < 1.
 */
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
                                            int8_t *output_data);

/**
 * @brief Scratch size in bytes needed by arm_convolve_wrapper_s8 for the CPU class the library
 *        was built for (plain), for DSP-extension CPUs (_dsp) and for MVE CPUs (_mve).
 *
 * @param[in] conv_params  Convolution parameters.
 * @param[in] input_dims   [N, H, W, C_in].
 * @param[in] filter_dims  [C_out, KH, KW, C_f].
 * @param[in] output_dims  [N, H_out, W_out, C_out].
 * @return Bytes of scratch; always 0 for nnref.
 */
int32_t arm_convolve_wrapper_s8_get_buffer_size(const cmsis_nn_conv_params *conv_params,
                                                const cmsis_nn_dims *input_dims,
                                                const cmsis_nn_dims *filter_dims,
                                                const cmsis_nn_dims *output_dims);
/** @copydoc arm_convolve_wrapper_s8_get_buffer_size */
int32_t arm_convolve_wrapper_s8_get_buffer_size_dsp(const cmsis_nn_conv_params *conv_params,
                                                    const cmsis_nn_dims *input_dims,
                                                    const cmsis_nn_dims *filter_dims,
                                                    const cmsis_nn_dims *output_dims);
/** @copydoc arm_convolve_wrapper_s8_get_buffer_size */
int32_t arm_convolve_wrapper_s8_get_buffer_size_mve(const cmsis_nn_conv_params *conv_params,
                                                    const cmsis_nn_dims *input_dims,
                                                    const cmsis_nn_dims *filter_dims,
                                                    const cmsis_nn_dims *output_dims);

/**
 * @brief Depthwise convolution with per-channel requantization, int8 in/out.
 *
 * @param[in]  ctx             Scratch context. Not used by nnref (may be NULL).
 * @param[in]  dw_conv_params  input_offset, output_offset, ch_mult (>= 1), stride, padding
 *                             (left/top), dilation, activation.
 * @param[in]  quant_params    Per-channel multiplier[C_out] and shift[C_out].
 * @param[in]  input_dims      [N, H, W, C_in].
 * @param[in]  input_data      Input, NHWC.
 * @param[in]  filter_dims     [1, KH, KW, C_out].
 * @param[in]  filter_data     Filter, [KH][KW][C_out].
 * @param[in]  bias_dims       [C_out] in c (not used).
 * @param[in]  bias_data       Bias[C_out], or NULL for no bias.
 * @param[in]  output_dims     [N, H_out, W_out, C_out] with C_out = C_in * ch_mult
 *                             (n is taken from input_dims).
 * @param[out] output_data     Output, NHWC.
 *
 * Output channel o reads input channel o / ch_mult. Any ch_mult, batch, stride, dilation and
 * padding.
 *
 * @return ARM_CMSIS_NN_SUCCESS, or ARM_CMSIS_NN_ARG_ERROR if ch_mult < 1,
 *         output_dims->c != input_dims->c * ch_mult, filter_dims->c != output_dims->c, or
 *         stride/dilation < 1.
 */
arm_cmsis_nn_status arm_depthwise_conv_wrapper_s8(const cmsis_nn_context *ctx,
                                                  const cmsis_nn_dw_conv_params *dw_conv_params,
                                                  const cmsis_nn_per_channel_quant_params *quant_params,
                                                  const cmsis_nn_dims *input_dims,
                                                  const int8_t *input_data,
                                                  const cmsis_nn_dims *filter_dims,
                                                  const int8_t *filter_data,
                                                  const cmsis_nn_dims *bias_dims,
                                                  const int32_t *bias_data,
                                                  const cmsis_nn_dims *output_dims,
                                                  int8_t *output_data);

/**
 * @brief Scratch size in bytes needed by arm_depthwise_conv_wrapper_s8 (plain, _dsp, _mve).
 *
 * @param[in] dw_conv_params  Depthwise convolution parameters.
 * @param[in] input_dims      [N, H, W, C_in].
 * @param[in] filter_dims     [1, KH, KW, C_out].
 * @param[in] output_dims     [N, H_out, W_out, C_out].
 * @return Bytes of scratch; always 0 for nnref.
 */
int32_t arm_depthwise_conv_wrapper_s8_get_buffer_size(const cmsis_nn_dw_conv_params *dw_conv_params,
                                                      const cmsis_nn_dims *input_dims,
                                                      const cmsis_nn_dims *filter_dims,
                                                      const cmsis_nn_dims *output_dims);
/** @copydoc arm_depthwise_conv_wrapper_s8_get_buffer_size */
int32_t arm_depthwise_conv_wrapper_s8_get_buffer_size_dsp(const cmsis_nn_dw_conv_params *dw_conv_params,
                                                          const cmsis_nn_dims *input_dims,
                                                          const cmsis_nn_dims *filter_dims,
                                                          const cmsis_nn_dims *output_dims);
/** @copydoc arm_depthwise_conv_wrapper_s8_get_buffer_size */
int32_t arm_depthwise_conv_wrapper_s8_get_buffer_size_mve(const cmsis_nn_dw_conv_params *dw_conv_params,
                                                          const cmsis_nn_dims *input_dims,
                                                          const cmsis_nn_dims *filter_dims,
                                                          const cmsis_nn_dims *output_dims);

/* ======================================================================================
 * Fully connected
 * ====================================================================================== */

/**
 * @brief Fully connected layer with per-tensor requantization, int8 in/out.
 *
 * @param[in]  ctx           Scratch context. Without MVE: not used (may be NULL). With MVE
 *                           (__ARM_FEATURE_MVE or NNREF_FC_KERNEL_SUMS): ctx->buf must hold the
 *                           C_out int32 kernel sums computed by
 *                           arm_vector_sum_s8(buf, K, C_out, filter_data, input_offset,
 *                           filter_offset, bias_data), and ctx->size must be >= C_out * 4.
 * @param[in]  fc_params     input_offset, filter_offset (must be 0), output_offset, activation.
 * @param[in]  quant_params  Per-tensor multiplier and shift.
 * @param[in]  input_dims    n = number of input rows (batches); h, w, c not used.
 * @param[in]  input_data    Input, input_dims->n rows of K values.
 * @param[in]  filter_dims   n = accumulation depth K, c = C_out; h, w not used.
 * @param[in]  filter_data   Weights, row-major [C_out][K].
 * @param[in]  bias_dims     [C_out] in c (not used).
 * @param[in]  bias_data     Bias[C_out], or NULL for no bias. On MVE builds the bias is taken
 *                           from the kernel sums instead and this argument is ignored.
 * @param[in]  output_dims   c = C_out.
 * @param[out] output_data   Output, [input_dims->n][C_out].
 *
 * acc[b][o] = sum_k (input[b][k] + input_offset) * filter[o][k] + bias[o]; on MVE builds
 * acc[b][o] = sum_k input[b][k] * filter[o][k] + kernel_sum[o], the same value.
 *
 * @return ARM_CMSIS_NN_SUCCESS, or ARM_CMSIS_NN_ARG_ERROR if filter_offset != 0,
 *         filter_dims->c != output_dims->c, or (MVE builds) ctx/ctx->buf is NULL or ctx->size is
 *         smaller than C_out * 4.
 */
arm_cmsis_nn_status arm_fully_connected_s8(const cmsis_nn_context *ctx,
                                           const cmsis_nn_fc_params *fc_params,
                                           const cmsis_nn_per_tensor_quant_params *quant_params,
                                           const cmsis_nn_dims *input_dims,
                                           const int8_t *input_data,
                                           const cmsis_nn_dims *filter_dims,
                                           const int8_t *filter_data,
                                           const cmsis_nn_dims *bias_dims,
                                           const int32_t *bias_data,
                                           const cmsis_nn_dims *output_dims,
                                           int8_t *output_data);

/**
 * @brief Fully connected layer with per-channel requantization, int8 in/out.
 *
 * As arm_fully_connected_s8 (same ctx contract, layouts and return codes), but
 * quant_params->multiplier[o] and quant_params->shift[o] are used for output channel o.
 */
arm_cmsis_nn_status arm_fully_connected_per_channel_s8(const cmsis_nn_context *ctx,
                                                       const cmsis_nn_fc_params *fc_params,
                                                       const cmsis_nn_per_channel_quant_params *quant_params,
                                                       const cmsis_nn_dims *input_dims,
                                                       const int8_t *input_data,
                                                       const cmsis_nn_dims *filter_dims,
                                                       const int8_t *filter_data,
                                                       const cmsis_nn_dims *bias_dims,
                                                       const int32_t *bias_data,
                                                       const cmsis_nn_dims *output_dims,
                                                       int8_t *output_data);

/**
 * @brief Fully connected layer, per-tensor or per-channel requantization.
 *
 * Calls arm_fully_connected_per_channel_s8 when quant_params->is_per_channel is non-zero
 * (multiplier/shift hold C_out values), otherwise arm_fully_connected_s8 with
 * multiplier[0]/shift[0]. Other arguments and return codes as arm_fully_connected_s8.
 */
arm_cmsis_nn_status arm_fully_connected_wrapper_s8(const cmsis_nn_context *ctx,
                                                   const cmsis_nn_fc_params *fc_params,
                                                   const cmsis_nn_quant_params *quant_params,
                                                   const cmsis_nn_dims *input_dims,
                                                   const int8_t *input_data,
                                                   const cmsis_nn_dims *filter_dims,
                                                   const int8_t *filter_data,
                                                   const cmsis_nn_dims *bias_dims,
                                                   const int32_t *bias_data,
                                                   const cmsis_nn_dims *output_dims,
                                                   int8_t *output_data);

/**
 * @brief Scratch size in bytes needed by the fully connected functions.
 *
 * @param[in] filter_dims  n = K, c = C_out.
 * @return Plain query: C_out * sizeof(int32_t) on MVE builds (__ARM_FEATURE_MVE or
 *         NNREF_FC_KERNEL_SUMS), otherwise 0. _dsp: always 0. _mve: always
 *         C_out * sizeof(int32_t).
 */
int32_t arm_fully_connected_s8_get_buffer_size(const cmsis_nn_dims *filter_dims);
/** @copydoc arm_fully_connected_s8_get_buffer_size */
int32_t arm_fully_connected_s8_get_buffer_size_dsp(const cmsis_nn_dims *filter_dims);
/** @copydoc arm_fully_connected_s8_get_buffer_size */
int32_t arm_fully_connected_s8_get_buffer_size_mve(const cmsis_nn_dims *filter_dims);

/**
 * @brief Per-row sums of an int8 matrix, for the MVE fully connected contract.
 *
 * @param[out] vector_sum_buf  Output, vector_rows int32 values.
 * @param[in]  vector_cols     Columns per row (K).
 * @param[in]  vector_rows     Rows (C_out).
 * @param[in]  vector_data     Matrix, row-major [vector_rows][vector_cols].
 * @param[in]  lhs_offset      Multiplier of the row sum (the FC input_offset).
 * @param[in]  rhs_offset      Added to every element before summing (the FC filter_offset).
 * @param[in]  bias_data       Bias[vector_rows] added to each sum, or NULL.
 *
 * vector_sum_buf[r] = lhs_offset * sum_c (vector_data[r][c] + rhs_offset) + bias_data[r].
 * Available on every build, whatever the CPU.
 *
 * @return ARM_CMSIS_NN_SUCCESS.
 */
arm_cmsis_nn_status arm_vector_sum_s8(int32_t *vector_sum_buf,
                                      const int32_t vector_cols,
                                      const int32_t vector_rows,
                                      const int8_t *vector_data,
                                      const int32_t lhs_offset,
                                      const int32_t rhs_offset,
                                      const int32_t *bias_data);

/* ======================================================================================
 * Pooling (input and output share scale and zero point; no offsets)
 * ====================================================================================== */

/**
 * @brief Average pooling, int8.
 *
 * @param[in]  ctx          Scratch context. Not used by nnref (may be NULL).
 * @param[in]  pool_params  stride, padding (left/top), activation.
 * @param[in]  input_dims   [N, H, W, C].
 * @param[in]  input_data   Input, NHWC.
 * @param[in]  filter_dims  Window size in h and w (n, c not used).
 * @param[in]  output_dims  [N, H_out, W_out, C] (n and c are taken from input_dims).
 * @param[out] output_data  Output, NHWC.
 *
 * Each output is the mean of the window positions that lie inside the input (count = number
 * of such positions), rounded half away from zero, then clamped to the activation range.
 * A window with no position inside the input (impossible for consistent shapes) writes
 * activation.min and makes the function return ARM_CMSIS_NN_ARG_ERROR.
 *
 * @return ARM_CMSIS_NN_SUCCESS, or ARM_CMSIS_NN_ARG_ERROR for stride < 1 or an empty window.
 */
arm_cmsis_nn_status arm_avgpool_s8(const cmsis_nn_context *ctx,
                                   const cmsis_nn_pool_params *pool_params,
                                   const cmsis_nn_dims *input_dims,
                                   const int8_t *input_data,
                                   const cmsis_nn_dims *filter_dims,
                                   const cmsis_nn_dims *output_dims,
                                   int8_t *output_data);

/**
 * @brief Scratch size in bytes needed by arm_avgpool_s8 (plain, _dsp, _mve).
 *
 * @param[in] dim_dst_width  Output width.
 * @param[in] ch_src         Channels.
 * @return Bytes of scratch; always 0 for nnref.
 */
int32_t arm_avgpool_s8_get_buffer_size(const int dim_dst_width, const int ch_src);
/** @copydoc arm_avgpool_s8_get_buffer_size */
int32_t arm_avgpool_s8_get_buffer_size_dsp(const int dim_dst_width, const int ch_src);
/** @copydoc arm_avgpool_s8_get_buffer_size */
int32_t arm_avgpool_s8_get_buffer_size_mve(const int dim_dst_width, const int ch_src);

/**
 * @brief Max pooling, int8.
 *
 * Arguments as arm_avgpool_s8. Each output is the maximum of the window positions inside the
 * input, clamped to the activation range. A window with no position inside the input writes
 * activation.min (what TFLite's clamp of its -128 start value gives); this is not an error.
 *
 * @return ARM_CMSIS_NN_SUCCESS, or ARM_CMSIS_NN_ARG_ERROR for stride < 1.
 */
arm_cmsis_nn_status arm_max_pool_s8(const cmsis_nn_context *ctx,
                                    const cmsis_nn_pool_params *pool_params,
                                    const cmsis_nn_dims *input_dims,
                                    const int8_t *input_data,
                                    const cmsis_nn_dims *filter_dims,
                                    const cmsis_nn_dims *output_dims,
                                    int8_t *output_data);

/* ======================================================================================
 * Elementwise
 * ====================================================================================== */

/**
 * @brief Elementwise addition, int8 (TFLite ADD), same-shape inputs.
 *
 * @param[in]  input_1_vect        First input, block_size values.
 * @param[in]  input_2_vect        Second input, block_size values.
 * @param[in]  input_1_offset      Negated zero point of input 1, range [-127, 128].
 * @param[in]  input_1_mult        Q31 multiplier of input 1 (to the common scale).
 * @param[in]  input_1_shift       Shift of input 1 (<= 0 in TFLite; positive = left).
 * @param[in]  input_2_offset      Negated zero point of input 2.
 * @param[in]  input_2_mult        Q31 multiplier of input 2.
 * @param[in]  input_2_shift       Shift of input 2.
 * @param[in]  left_shift          Common left shift applied first (20 for int8 in TFLite).
 * @param[out] output              Output, block_size values.
 * @param[in]  out_offset          Output zero point, range [-128, 127].
 * @param[in]  out_mult            Q31 output multiplier.
 * @param[in]  out_shift           Output shift (positive = left).
 * @param[in]  out_activation_min  Output clamp minimum.
 * @param[in]  out_activation_max  Output clamp maximum.
 * @param[in]  block_size          Number of elements.
 *
 * out = clamp(requant(requant((in1 + off1) << left_shift, m1, s1) +
 *                     requant((in2 + off2) << left_shift, m2, s2), out_mult, out_shift)
 *             + out_offset, min, max).
 *
 * @return ARM_CMSIS_NN_SUCCESS.
 */
arm_cmsis_nn_status arm_elementwise_add_s8(const int8_t *input_1_vect,
                                           const int8_t *input_2_vect,
                                           const int32_t input_1_offset,
                                           const int32_t input_1_mult,
                                           const int32_t input_1_shift,
                                           const int32_t input_2_offset,
                                           const int32_t input_2_mult,
                                           const int32_t input_2_shift,
                                           const int32_t left_shift,
                                           int8_t *output,
                                           const int32_t out_offset,
                                           const int32_t out_mult,
                                           const int32_t out_shift,
                                           const int32_t out_activation_min,
                                           const int32_t out_activation_max,
                                           const int32_t block_size);

/**
 * @brief Elementwise multiplication, int8 (TFLite MUL), same-shape inputs.
 *
 * @param[in]  input_1_vect        First input, block_size values.
 * @param[in]  input_2_vect        Second input, block_size values.
 * @param[in]  input_1_offset      Negated zero point of input 1, range [-127, 128].
 * @param[in]  input_2_offset      Negated zero point of input 2, range [-127, 128].
 * @param[out] output              Output, block_size values.
 * @param[in]  out_offset          Output zero point, range [-128, 127].
 * @param[in]  out_mult            Q31 multiplier for s1 * s2 / s_out.
 * @param[in]  out_shift           Output shift (positive = left).
 * @param[in]  out_activation_min  Output clamp minimum.
 * @param[in]  out_activation_max  Output clamp maximum.
 * @param[in]  block_size          Number of elements.
 *
 * out = clamp(requant((in1 + off1) * (in2 + off2), out_mult, out_shift) + out_offset, min, max).
 *
 * @return ARM_CMSIS_NN_SUCCESS.
 */
arm_cmsis_nn_status arm_elementwise_mul_s8(const int8_t *input_1_vect,
                                           const int8_t *input_2_vect,
                                           const int32_t input_1_offset,
                                           const int32_t input_2_offset,
                                           int8_t *output,
                                           const int32_t out_offset,
                                           const int32_t out_mult,
                                           const int32_t out_shift,
                                           const int32_t out_activation_min,
                                           const int32_t out_activation_max,
                                           const int32_t block_size);

/**
 * @brief Elementwise maximum, int8, with broadcasting (TFLite MAXIMUM).
 *
 * @param[in]  ctx           Scratch context. Not used by nnref (may be NULL).
 * @param[in]  input_1_data  First input, NHWC of input_1_dims.
 * @param[in]  input_1_dims  [N, H, W, C]; each extent equals output_dims' or is 1 (broadcast).
 * @param[in]  input_2_data  Second input, NHWC of input_2_dims.
 * @param[in]  input_2_dims  As input_1_dims.
 * @param[out] output_data   Output, NHWC of output_dims.
 * @param[in]  output_dims   [N, H, W, C].
 *
 * out[n][h][w][c] = max(in1[n'][h'][w'][c'], in2[...]) where an index along a broadcast axis is 0.
 * Both inputs and the output share scale and zero point: no requantization.
 *
 * @return ARM_CMSIS_NN_SUCCESS, or ARM_CMSIS_NN_ARG_ERROR if an input extent is neither the
 *         output's nor 1.
 */
arm_cmsis_nn_status arm_maximum_s8(const cmsis_nn_context *ctx,
                                   const int8_t *input_1_data,
                                   const cmsis_nn_dims *input_1_dims,
                                   const int8_t *input_2_data,
                                   const cmsis_nn_dims *input_2_dims,
                                   int8_t *output_data,
                                   const cmsis_nn_dims *output_dims);

/**
 * @brief Elementwise minimum, int8, with broadcasting (TFLite MINIMUM).
 *
 * As arm_maximum_s8, with min in place of max.
 */
arm_cmsis_nn_status arm_minimum_s8(const cmsis_nn_context *ctx,
                                   const int8_t *input_1_data,
                                   const cmsis_nn_dims *input_1_dims,
                                   const int8_t *input_2_data,
                                   const cmsis_nn_dims *input_2_dims,
                                   int8_t *output_data,
                                   const cmsis_nn_dims *output_dims);

/* ======================================================================================
 * Concatenation (plain int8 copies, no requantization: inputs and output share the
 * quantization). Call once per input tensor, with the running offset along the axis.
 *
 * The functions see a tensor as [input_w][input_z][input_y][input_x] with input_x varying
 * fastest. For an NHWC tensor that is x = C, y = W, z = H, w = N: concatenating NHWC tensors
 * along C uses arm_concatenation_s8_x, along W _y, along H _z and along N _w. The output must
 * not overlap the input.
 * ====================================================================================== */

/**
 * @brief Copy one input into the output along the innermost axis (x).
 *
 * @param[in]  input     Input, input_w * input_z * input_y * input_x values.
 * @param[in]  input_x   Input extent along x (the axis concatenated).
 * @param[in]  input_y   Input extent along y.
 * @param[in]  input_z   Input extent along z.
 * @param[in]  input_w   Input extent along w.
 * @param[out] output    Output, [input_w][input_z][input_y][output_x].
 * @param[in]  output_x  Output extent along x (sum of the inputs' input_x).
 * @param[in]  offset_x  Where this input starts along x, offset_x + input_x <= output_x.
 */
void arm_concatenation_s8_x(const int8_t *input,
                            const uint16_t input_x,
                            const uint16_t input_y,
                            const uint16_t input_z,
                            const uint16_t input_w,
                            int8_t *output,
                            const uint16_t output_x,
                            const uint32_t offset_x);

/**
 * @brief Copy one input into the output along y. Output [input_w][input_z][output_y][input_x];
 *        this input starts at offset_y along y. Other arguments as arm_concatenation_s8_x.
 */
void arm_concatenation_s8_y(const int8_t *input,
                            const uint16_t input_x,
                            const uint16_t input_y,
                            const uint16_t input_z,
                            const uint16_t input_w,
                            int8_t *output,
                            const uint16_t output_y,
                            const uint32_t offset_y);

/**
 * @brief Copy one input into the output along z. Output [input_w][output_z][input_y][input_x];
 *        this input starts at offset_z along z. Other arguments as arm_concatenation_s8_x.
 */
void arm_concatenation_s8_z(const int8_t *input,
                            const uint16_t input_x,
                            const uint16_t input_y,
                            const uint16_t input_z,
                            const uint16_t input_w,
                            int8_t *output,
                            const uint16_t output_z,
                            const uint32_t offset_z);

/**
 * @brief Copy one input into the output along the outermost axis (w). The output holds the
 *        inputs one after the other; this input starts at offset_w along w (in units of
 *        input_x * input_y * input_z values). Other arguments as arm_concatenation_s8_x.
 */
void arm_concatenation_s8_w(const int8_t *input,
                            const uint16_t input_x,
                            const uint16_t input_y,
                            const uint16_t input_z,
                            const uint16_t input_w,
                            int8_t *output,
                            const uint32_t offset_w);

/* ======================================================================================
 * Pad and transpose (data movement, no requantization)
 * ====================================================================================== */

/**
 * @brief Constant padding of an int8 NHWC tensor on every axis (TFLite PAD / PADV2).
 *
 * @param[in]  input       Input, NHWC of input_size.
 * @param[out] output      Output, [pre.n + N + post.n, pre.h + H + post.h, pre.w + W + post.w,
 *                         pre.c + C + post.c]; must not overlap the input.
 * @param[in]  pad_value   Value of the padded positions (the zero point for PAD).
 * @param[in]  input_size  [N, H, W, C].
 * @param[in]  pre_pad     Positions added before the input on each axis (>= 0).
 * @param[in]  post_pad    Positions added after the input on each axis (>= 0).
 *
 * @return ARM_CMSIS_NN_SUCCESS, or ARM_CMSIS_NN_ARG_ERROR for a negative padding.
 */
arm_cmsis_nn_status arm_pad_s8(const int8_t *input,
                               int8_t *output,
                               const int8_t pad_value,
                               const cmsis_nn_dims *input_size,
                               const cmsis_nn_dims *pre_pad,
                               const cmsis_nn_dims *post_pad);

/**
 * @brief Transpose (permute the axes of) an int8 tensor of rank 1 to 4.
 *
 * @param[in]  input             Input, row-major.
 * @param[out] output            Output, row-major; must not overlap the input.
 * @param[in]  input_dims        The input's extents in the first num_dims fields, in the
 *                               order n, h, w, c (a rank-2 [R, C] tensor is n = R, h = C).
 * @param[in]  output_dims       The output's extents, same convention.
 * @param[in]  transpose_params  num_dims (1 to 4) and permutations[num_dims]: output axis i
 *                               is input axis permutations[i] (as TFLite TRANSPOSE's perm).
 *
 * @return ARM_CMSIS_NN_SUCCESS, or ARM_CMSIS_NN_ARG_ERROR if num_dims is outside 1..4, the
 *         permutation is not one, or output_dims does not match the permuted input_dims.
 */
arm_cmsis_nn_status arm_transpose_s8(const int8_t *input,
                                     int8_t *const output,
                                     const cmsis_nn_dims *const input_dims,
                                     const cmsis_nn_dims *const output_dims,
                                     const cmsis_nn_transpose_params *const transpose_params);

/* ======================================================================================
 * Softmax
 * ====================================================================================== */

/**
 * @brief Softmax over the last dimension, int8 in, int8 out (TFLite int8 softmax).
 *
 * @param[in]  input     Input, num_rows rows of row_size values.
 * @param[in]  num_rows  Number of rows.
 * @param[in]  row_size  Values per row.
 * @param[in]  mult      Q31 multiplier of the scaled input difference (input_multiplier from
 *                       TFLite's PreprocessSoftmaxScaling with beta, 5 integer bits).
 * @param[in]  shift     Left shift paired with mult (input_left_shift, >= 0).
 * @param[in]  diff_min  Smallest (input - row max) that still contributes; smaller differences
 *                       give exp = 0 and output -128.
 * @param[out] output    Output, same layout; scale 1/256, zero point -128.
 *
 * Fixed-point (gemmlowp) evaluation: exp of the scaled difference in Q5.26, sum in Q12.19,
 * reciprocal by Newton-Raphson, output rounded and clamped to [-128, 127].
 * As in TFLite, the Q12.19 sum wraps if more than 4095 elements of a row lie at the row
 * maximum (each contributes 2^19); keep rows shorter than 4096 for meaningful results.
 */
void arm_softmax_s8(const int8_t *input,
                    const int32_t num_rows,
                    const int32_t row_size,
                    const int32_t mult,
                    const int32_t shift,
                    const int32_t diff_min,
                    int8_t *output);

#ifdef __cplusplus
}
#endif

#endif /* ARM_NNFUNCTIONS_H */
