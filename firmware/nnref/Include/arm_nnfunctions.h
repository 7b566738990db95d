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
 * Conventions used by every function (the int16 functions, at the end, differ as their section
 * says):
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

/* ======================================================================================
 * 16x8: int16 activations, int8 weights (TFLite's "16x8" quantization)
 *
 * Every int16 tensor is symmetric (zero point 0): the input/output offsets in the params
 * structs and arguments are not used. Weights are int8 with zero point 0. Results are bit-exact
 * with TFLite(-Micro)'s int16 reference kernels:
 *  - int64 bias: products summed in int64, requantized with MultiplyByQuantizedMultiplier's
 *    64-bit form (multiplier rounded to 16 bits, one rounding shift; shift in [-31, 7]);
 *  - int32 bias (arm_convolve_s16 only, bias_data->is_int32_bias): summed in int32 (wrapping)
 *    and requantized with the 32-bit form, as TFLite does for a 16x8 CONV_2D with int32 bias.
 * Activation clamps are within [-32768, 32767].
 * ====================================================================================== */

/**
 * @brief Convolution with per-channel requantization, int16 in/out, int8 weights.
 *
 * @param[in]  ctx           Scratch context. Not used by nnref (may be NULL).
 * @param[in]  conv_params   stride, padding (left/top), dilation, activation; input_offset and
 *                           output_offset are not used (int16 zero points are 0).
 * @param[in]  quant_params  Per-channel multiplier[C_out] and shift[C_out].
 * @param[in]  input_dims    [N, H, W, C_in].
 * @param[in]  input_data    Input, NHWC, int16.
 * @param[in]  filter_dims   [C_out, KH, KW, C_in] (no grouped convolution: c must be C_in).
 * @param[in]  filter_data   Filter, OHWI: [C_out][KH][KW][C_in].
 * @param[in]  bias_dims     [C_out] in c (not used).
 * @param[in]  bias_data     Bias: data points to int32_t[C_out] when is_int32_bias, else to
 *                           int64_t[C_out]; data NULL (or bias_data NULL, taken as int64) for
 *                           no bias. The flag also picks the accumulation (see above).
 * @param[in]  output_dims   [N, H_out, W_out, C_out] (n is taken from input_dims).
 * @param[out] output_data   Output, NHWC, int16.
 *
 * Positions outside the input contribute nothing; output pixel (y, x) reads input row
 * y * stride.h - padding.h + ky * dilation.h and column x * stride.w - padding.w + kx * dilation.w.
 *
 * @return ARM_CMSIS_NN_SUCCESS, or ARM_CMSIS_NN_ARG_ERROR if filter_dims->c != C_in,
 *         filter_dims->n != output_dims->c, or stride/dilation < 1.
 */
arm_cmsis_nn_status arm_convolve_s16(const cmsis_nn_context *ctx,
                                     const cmsis_nn_conv_params *conv_params,
                                     const cmsis_nn_per_channel_quant_params *quant_params,
                                     const cmsis_nn_dims *input_dims,
                                     const int16_t *input_data,
                                     const cmsis_nn_dims *filter_dims,
                                     const int8_t *filter_data,
                                     const cmsis_nn_dims *bias_dims,
                                     const cmsis_nn_bias_data *bias_data,
                                     const cmsis_nn_dims *output_dims,
                                     int16_t *output_data);

/**
 * @brief Scratch size in bytes needed by arm_convolve_s16.
 *
 * @param[in] input_dims   [N, H, W, C_in].
 * @param[in] filter_dims  [C_out, KH, KW, C_in].
 * @return Bytes of scratch; always 0 for nnref.
 */
int32_t arm_convolve_s16_get_buffer_size(const cmsis_nn_dims *input_dims, const cmsis_nn_dims *filter_dims);

/**
 * @brief Convolution, int16 in/out: calls arm_convolve_s16 (same arguments and return codes).
 */
arm_cmsis_nn_status arm_convolve_wrapper_s16(const cmsis_nn_context *ctx,
                                             const cmsis_nn_conv_params *conv_params,
                                             const cmsis_nn_per_channel_quant_params *quant_params,
                                             const cmsis_nn_dims *input_dims,
                                             const int16_t *input_data,
                                             const cmsis_nn_dims *filter_dims,
                                             const int8_t *filter_data,
                                             const cmsis_nn_dims *bias_dims,
                                             const cmsis_nn_bias_data *bias_data,
                                             const cmsis_nn_dims *output_dims,
                                             int16_t *output_data);

/**
 * @brief Scratch size in bytes needed by arm_convolve_wrapper_s16 (plain, _dsp, _mve).
 *
 * @param[in] conv_params  Convolution parameters.
 * @param[in] input_dims   [N, H, W, C_in].
 * @param[in] filter_dims  [C_out, KH, KW, C_in].
 * @param[in] output_dims  [N, H_out, W_out, C_out].
 * @return Bytes of scratch; always 0 for nnref.
 */
int32_t arm_convolve_wrapper_s16_get_buffer_size(const cmsis_nn_conv_params *conv_params,
                                                 const cmsis_nn_dims *input_dims,
                                                 const cmsis_nn_dims *filter_dims,
                                                 const cmsis_nn_dims *output_dims);
/** @copydoc arm_convolve_wrapper_s16_get_buffer_size */
int32_t arm_convolve_wrapper_s16_get_buffer_size_dsp(const cmsis_nn_conv_params *conv_params,
                                                     const cmsis_nn_dims *input_dims,
                                                     const cmsis_nn_dims *filter_dims,
                                                     const cmsis_nn_dims *output_dims);
/** @copydoc arm_convolve_wrapper_s16_get_buffer_size */
int32_t arm_convolve_wrapper_s16_get_buffer_size_mve(const cmsis_nn_conv_params *conv_params,
                                                     const cmsis_nn_dims *input_dims,
                                                     const cmsis_nn_dims *filter_dims,
                                                     const cmsis_nn_dims *output_dims);

/**
 * @brief Depthwise convolution with per-channel requantization, int16 in/out, int8 weights,
 *        int64 bias.
 *
 * @param[in]  ctx             Scratch context. Not used by nnref (may be NULL).
 * @param[in]  dw_conv_params  ch_mult (>= 1), stride, padding (left/top), dilation, activation;
 *                             offsets not used.
 * @param[in]  quant_params    Per-channel multiplier[C_out] and shift[C_out].
 * @param[in]  input_dims      [N, H, W, C_in].
 * @param[in]  input_data      Input, NHWC, int16.
 * @param[in]  filter_dims     [1, KH, KW, C_out].
 * @param[in]  filter_data     Filter, [KH][KW][C_out].
 * @param[in]  bias_dims       [C_out] in c (not used).
 * @param[in]  bias_data       Bias[C_out] (int64), or NULL for no bias.
 * @param[in]  output_dims     [N, H_out, W_out, C_out] with C_out = C_in * ch_mult.
 * @param[out] output_data     Output, NHWC, int16.
 *
 * Output channel o reads input channel o / ch_mult. Any ch_mult, batch, stride, dilation and
 * padding.
 *
 * @return ARM_CMSIS_NN_SUCCESS, or ARM_CMSIS_NN_ARG_ERROR if ch_mult < 1,
 *         output_dims->c != input_dims->c * ch_mult, filter_dims->c != output_dims->c, or
 *         stride/dilation < 1.
 */
arm_cmsis_nn_status arm_depthwise_conv_s16(const cmsis_nn_context *ctx,
                                           const cmsis_nn_dw_conv_params *dw_conv_params,
                                           const cmsis_nn_per_channel_quant_params *quant_params,
                                           const cmsis_nn_dims *input_dims,
                                           const int16_t *input_data,
                                           const cmsis_nn_dims *filter_dims,
                                           const int8_t *filter_data,
                                           const cmsis_nn_dims *bias_dims,
                                           const int64_t *bias_data,
                                           const cmsis_nn_dims *output_dims,
                                           int16_t *output_data);

/**
 * @brief Depthwise convolution, int16 in/out: calls arm_depthwise_conv_s16 (same arguments and
 *        return codes).
 */
arm_cmsis_nn_status arm_depthwise_conv_wrapper_s16(const cmsis_nn_context *ctx,
                                                   const cmsis_nn_dw_conv_params *dw_conv_params,
                                                   const cmsis_nn_per_channel_quant_params *quant_params,
                                                   const cmsis_nn_dims *input_dims,
                                                   const int16_t *input_data,
                                                   const cmsis_nn_dims *filter_dims,
                                                   const int8_t *filter_data,
                                                   const cmsis_nn_dims *bias_dims,
                                                   const int64_t *bias_data,
                                                   const cmsis_nn_dims *output_dims,
                                                   int16_t *output_data);

/**
 * @brief Scratch size in bytes needed by arm_depthwise_conv_wrapper_s16 (plain, _dsp, _mve).
 *
 * @param[in] dw_conv_params  Depthwise convolution parameters.
 * @param[in] input_dims      [N, H, W, C_in].
 * @param[in] filter_dims     [1, KH, KW, C_out].
 * @param[in] output_dims     [N, H_out, W_out, C_out].
 * @return Bytes of scratch; always 0 for nnref.
 */
int32_t arm_depthwise_conv_wrapper_s16_get_buffer_size(const cmsis_nn_dw_conv_params *dw_conv_params,
                                                       const cmsis_nn_dims *input_dims,
                                                       const cmsis_nn_dims *filter_dims,
                                                       const cmsis_nn_dims *output_dims);
/** @copydoc arm_depthwise_conv_wrapper_s16_get_buffer_size */
int32_t arm_depthwise_conv_wrapper_s16_get_buffer_size_dsp(const cmsis_nn_dw_conv_params *dw_conv_params,
                                                           const cmsis_nn_dims *input_dims,
                                                           const cmsis_nn_dims *filter_dims,
                                                           const cmsis_nn_dims *output_dims);
/** @copydoc arm_depthwise_conv_wrapper_s16_get_buffer_size */
int32_t arm_depthwise_conv_wrapper_s16_get_buffer_size_mve(const cmsis_nn_dw_conv_params *dw_conv_params,
                                                           const cmsis_nn_dims *input_dims,
                                                           const cmsis_nn_dims *filter_dims,
                                                           const cmsis_nn_dims *output_dims);

/**
 * @brief Fully connected layer with per-tensor requantization, int16 in/out, int8 weights, int64
 *        bias.
 *
 * @param[in]  ctx           Scratch context. Not used by nnref (may be NULL).
 * @param[in]  fc_params     activation; the offsets are not used.
 * @param[in]  quant_params  Per-tensor multiplier and shift.
 * @param[in]  input_dims    n = number of input rows (batches); h, w, c not used.
 * @param[in]  input_data    Input, input_dims->n rows of K int16 values.
 * @param[in]  filter_dims   n = accumulation depth K, c = C_out; h, w not used.
 * @param[in]  filter_data   Weights, row-major [C_out][K].
 * @param[in]  bias_dims     [C_out] in c (not used).
 * @param[in]  bias_data     Bias[C_out] (int64), or NULL for no bias.
 * @param[in]  output_dims   c = C_out.
 * @param[out] output_data   Output, [input_dims->n][C_out], int16.
 *
 * @return ARM_CMSIS_NN_SUCCESS, or ARM_CMSIS_NN_ARG_ERROR if filter_dims->c != output_dims->c.
 */
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
                                            int16_t *output_data);

/**
 * @brief Scratch size in bytes needed by arm_fully_connected_s16 (plain, _dsp, _mve).
 *
 * @param[in] filter_dims  n = K, c = C_out.
 * @return Bytes of scratch; always 0 for nnref (no kernel sums: the int16 input has no offset).
 */
int32_t arm_fully_connected_s16_get_buffer_size(const cmsis_nn_dims *filter_dims);
/** @copydoc arm_fully_connected_s16_get_buffer_size */
int32_t arm_fully_connected_s16_get_buffer_size_dsp(const cmsis_nn_dims *filter_dims);
/** @copydoc arm_fully_connected_s16_get_buffer_size */
int32_t arm_fully_connected_s16_get_buffer_size_mve(const cmsis_nn_dims *filter_dims);

/**
 * @brief Per-row sums of an int8 matrix times an offset, plus an int64 bias (the LSTM s16
 *        effective biases).
 *
 * @param[out] vector_sum_buf  Output, vector_rows int64 values.
 * @param[in]  vector_cols     Columns per row.
 * @param[in]  vector_rows     Rows.
 * @param[in]  vector_data     Matrix, row-major [vector_rows][vector_cols].
 * @param[in]  lhs_offset      Multiplier of the row sum.
 * @param[in]  bias_data       Bias[vector_rows] added to each product, or NULL.
 *
 * vector_sum_buf[r] = lhs_offset * sum_c vector_data[r][c] + bias_data[r].
 *
 * @return ARM_CMSIS_NN_SUCCESS.
 */
arm_cmsis_nn_status arm_vector_sum_s8_s64(int64_t *vector_sum_buf,
                                          const int32_t vector_cols,
                                          const int32_t vector_rows,
                                          const int8_t *vector_data,
                                          const int32_t lhs_offset,
                                          const int64_t *bias_data);

/**
 * @brief Average pooling, int16. Arguments, rounding, empty windows and return codes as
 *        arm_avgpool_s8, with int16 data.
 */
arm_cmsis_nn_status arm_avgpool_s16(const cmsis_nn_context *ctx,
                                    const cmsis_nn_pool_params *pool_params,
                                    const cmsis_nn_dims *input_dims,
                                    const int16_t *input_data,
                                    const cmsis_nn_dims *filter_dims,
                                    const cmsis_nn_dims *output_dims,
                                    int16_t *output_data);

/**
 * @brief Scratch size in bytes needed by arm_avgpool_s16 (plain, _dsp, _mve).
 *
 * @param[in] dim_dst_width  Output width.
 * @param[in] ch_src         Channels.
 * @return Bytes of scratch; always 0 for nnref.
 */
int32_t arm_avgpool_s16_get_buffer_size(const int dim_dst_width, const int ch_src);
/** @copydoc arm_avgpool_s16_get_buffer_size */
int32_t arm_avgpool_s16_get_buffer_size_dsp(const int dim_dst_width, const int ch_src);
/** @copydoc arm_avgpool_s16_get_buffer_size */
int32_t arm_avgpool_s16_get_buffer_size_mve(const int dim_dst_width, const int ch_src);

/**
 * @brief Max pooling, int16. Arguments (src = input_data, dst = output_data) and return codes as
 *        arm_max_pool_s8; a window with no position inside the input writes activation.min.
 */
arm_cmsis_nn_status arm_max_pool_s16(const cmsis_nn_context *ctx,
                                     const cmsis_nn_pool_params *pool_params,
                                     const cmsis_nn_dims *input_dims,
                                     const int16_t *src,
                                     const cmsis_nn_dims *filter_dims,
                                     const cmsis_nn_dims *output_dims,
                                     int16_t *dst);

/**
 * @brief Elementwise addition, int16 (TFLite ADD of int16 tensors), same-shape inputs.
 *
 * Arguments as arm_elementwise_add_s8 with int16 data; input_1_offset, input_2_offset and
 * out_offset are not used; TFLite's left_shift for int16 is 15.
 * out = clamp(requant(requant(in1 << left_shift, m1, s1) + requant(in2 << left_shift, m2, s2),
 *                     out_mult, out_shift), min, max).
 *
 * @return ARM_CMSIS_NN_SUCCESS.
 */
arm_cmsis_nn_status arm_elementwise_add_s16(const int16_t *input_1_vect,
                                            const int16_t *input_2_vect,
                                            const int32_t input_1_offset,
                                            const int32_t input_1_mult,
                                            const int32_t input_1_shift,
                                            const int32_t input_2_offset,
                                            const int32_t input_2_mult,
                                            const int32_t input_2_shift,
                                            const int32_t left_shift,
                                            int16_t *output,
                                            const int32_t out_offset,
                                            const int32_t out_mult,
                                            const int32_t out_shift,
                                            const int32_t out_activation_min,
                                            const int32_t out_activation_max,
                                            const int32_t block_size);

/**
 * @brief Elementwise multiplication, int16 (TFLite MUL of int16 tensors), same-shape inputs.
 *
 * Arguments as arm_elementwise_mul_s8 with int16 data; the offsets are not used.
 * out = clamp(requant(in1 * in2, out_mult, out_shift), min, max).
 *
 * @return ARM_CMSIS_NN_SUCCESS.
 */
arm_cmsis_nn_status arm_elementwise_mul_s16(const int16_t *input_1_vect,
                                            const int16_t *input_2_vect,
                                            const int32_t input_1_offset,
                                            const int32_t input_2_offset,
                                            int16_t *output,
                                            const int32_t out_offset,
                                            const int32_t out_mult,
                                            const int32_t out_shift,
                                            const int32_t out_activation_min,
                                            const int32_t out_activation_max,
                                            const int32_t block_size);

/**
 * @brief Logistic or tanh of int16 values with a power-of-two input scale (TFLite's int16
 *        LOGISTIC/TANH for input scale 2^(left_shift - 12), and the LSTM gates).
 *
 * @param[in]  input       Input, size values.
 * @param[out] output      Output, size values, scale 2^-15 (may be the input).
 * @param[in]  size        Number of values.
 * @param[in]  left_shift  The input is taken in units of 2^-12 after multiplying by 2^left_shift
 *                         (a negative value is a rounding right shift); |left_shift| small
 *                         (TFLite uses 0 and 1; the LSTM cell tanh cell_scale_power + 12).
 * @param[in]  type        ARM_SIGMOID or ARM_TANH.
 *
 * x = input * 3 * 2^left_shift (or (input * 3 + round) >> -left_shift), then TFLite's 256-entry
 * sigmoid table with linear interpolation on |x| (tanh(x) = 2 sigmoid(2x) - 1), bit-exact with
 * TFLite's reference_integer_ops::Logistic/Tanh for int16.
 *
 * @return ARM_CMSIS_NN_SUCCESS.
 */
arm_cmsis_nn_status arm_nn_activation_s16(const int16_t *input,
                                          int16_t *output,
                                          const int32_t size,
                                          const int32_t left_shift,
                                          const arm_nn_activation_type type);

/**
 * @brief Softmax over the last dimension, int16 in, int16 out (TFLite int16 softmax).
 *
 * @param[in]  input           Input, num_rows rows of row_size values (zero point 0).
 * @param[in]  num_rows        Number of rows.
 * @param[in]  row_size        Values per row, 1 to 65536.
 * @param[in]  mult            Q31 multiplier of (input - row max), scaling [-65535, 0] to the
 *                             exp table's [-10, 0]: TFLite's QuantizeMultiplier of
 *                             input_scale * beta / (10 / 65535).
 * @param[in]  shift           Its shift (positive = left).
 * @param[in]  softmax_params  exp_lut: 513 values of exp(x) for x in [-10, 0]; one_by_one_lut:
 *                             513 values of 1 / (1 + x) for x in [0, 1]; both as TFLite's
 *                             LUTPopulate<int16_t> fills them (over the int16 range, output
 *                             scale 2 / 65535), read with its interpolating LUTLookup.
 * @param[out] output          Output, same layout, scale 1/32768, zero point 0, in [0, 32767].
 *
 * @return ARM_CMSIS_NN_SUCCESS, or ARM_CMSIS_NN_ARG_ERROR if a table pointer is NULL,
 *         row_size is outside 1..65536, or a row's exp sum is below 2 (tables that are not
 *         TFLite's).
 */
arm_cmsis_nn_status arm_softmax_s16(const int16_t *input,
                                    const int32_t num_rows,
                                    const int32_t row_size,
                                    const int32_t mult,
                                    const int32_t shift,
                                    const cmsis_nn_softmax_lut_s16 *softmax_params,
                                    int16_t *output);

/* ======================================================================================
 * LSTM (TFLite UNIDIRECTIONAL_SEQUENCE_LSTM: no peephole, projection or layer norm; the
 * cell state is int16 with a power-of-two scale, the gates are int16 in Q3.12 before and Q0.15
 * after their activation)
 * ====================================================================================== */

/**
 * @brief LSTM over a whole sequence, int8 input and output (hidden state), int16 gates and cell
 *        state, int32 effective biases (TFLite's 8x8->16 integer LSTM).
 *
 * @param[in]     input    Input: [time_steps][batch_size][input_size] if params->time_major,
 *                         else [batch_size][time_steps][input_size].
 * @param[out]    output   Hidden state of every step, laid out as the input with hidden_size
 *                         values per step.
 * @param[in]     params   Sizes, the four gates and the requantizations (cmsis_nn_lstm_params).
 * @param[in,out] buffers  temp1, temp2, cell_state: batch_size * hidden_size int16 values each.
 *
 * The hidden state and the cell state start at zero at every call (TFLite's variable tensors
 * right after their reset); use arm_nn_lstm_step_s8 (arm_nnsupportfunctions.h) to carry them
 * from call to call. For each step and batch, each gate is
 *   gate = act(sat16(clamp16(requant(input_effective_bias + W_in . x)) +
 *                    clamp16(requant(hidden_effective_bias + W_hid . h))))
 * with the gate's multipliers (32-bit requantization), act = sigmoid (tanh for a cell gate with
 * ARM_TANH) by arm_nn_activation_s16 with left_shift 0; the recurrent term is absent at the first
 * step. Then cell = clip(sat16(requant(f * cell) + requant(i * g))) (see
 * arm_nn_lstm_add_cell_s16), and
 *   h = clamp8(requant(tanh(cell) * o, output_multiplier, output_shift) + output_offset)
 * with tanh by arm_nn_activation_s16 with left_shift cell_scale_power + 12.
 * The effective biases are bias + input_offset * (row sums of W_in) and -output_offset * (row sums
 * of W_hid) (arm_vector_sum_s8); the gates' bias field and params->input_offset are not read.
 *
 * @return ARM_CMSIS_NN_SUCCESS.
 */
arm_cmsis_nn_status arm_lstm_unidirectional_s8(const int8_t *input,
                                               int8_t *output,
                                               const cmsis_nn_lstm_params *params,
                                               cmsis_nn_lstm_context *buffers);

/**
 * @brief LSTM over a whole sequence, int16 input and output, int8 weights, int16 gates and cell
 *        state, int64 effective biases (TFLite's 16x8->16 integer LSTM).
 *
 * As arm_lstm_unidirectional_s8 with int16 data and hidden state (zero points 0): the gate FCs
 * accumulate in int64 and use the 64-bit requantization, the hidden state is saturated to int16;
 * the effective biases (int64) come from arm_vector_sum_s8_s64 (with offsets 0: the biases
 * themselves and zeros).
 *
 * @return ARM_CMSIS_NN_SUCCESS.
 */
arm_cmsis_nn_status arm_lstm_unidirectional_s16(const int16_t *input,
                                                int16_t *output,
                                                const cmsis_nn_lstm_params *params,
                                                cmsis_nn_lstm_context *buffers);

#ifdef __cplusplus
}
#endif

#endif /* ARM_NNFUNCTIONS_H */
