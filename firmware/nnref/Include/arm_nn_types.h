/*
 * nnref: portable C implementation of a subset of the CMSIS-NN API.
 * Written for mcudeploy from the API description and the TFLite int8 arithmetic;
 * no CMSIS-NN or TFLite code is included.
 *
 * Types shared by every nnref function. Names, field names and field order match
 * CMSIS-NN (v6/v7) so code written against either library compiles unchanged.
 */
#ifndef ARM_NN_TYPES_H
#define ARM_NN_TYPES_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Status returned by the nnref / CMSIS-NN functions. */
typedef enum
{
    ARM_CMSIS_NN_SUCCESS = 0,        /**< No error. */
    ARM_CMSIS_NN_ARG_ERROR = -1,     /**< An argument (shape, parameter, buffer) is invalid. */
    ARM_CMSIS_NN_NO_IMPL_ERROR = -2, /**< The requested combination is not implemented. */
    ARM_CMSIS_NN_FAILURE = -3,       /**< Any other failure. */
} arm_cmsis_nn_status;

/** A 2-D extent (stride, padding, dilation). */
typedef struct
{
    int32_t w; /**< Width. */
    int32_t h; /**< Height. */
} cmsis_nn_tile;

/** Tensor dimensions, always in NHWC order. */
typedef struct
{
    int32_t n; /**< Batches (or output channels for a conv filter, depth K for an FC filter). */
    int32_t h; /**< Height. */
    int32_t w; /**< Width. */
    int32_t c; /**< Channels. */
} cmsis_nn_dims;

/** Caller-owned scratch memory. */
typedef struct
{
    void *buf;    /**< Scratch buffer, or NULL. */
    int32_t size; /**< Size of buf in bytes. */
} cmsis_nn_context;

/** Output clamp in the quantized domain (inclusive). */
typedef struct
{
    int32_t min; /**< Lowest output value. */
    int32_t max; /**< Highest output value. */
} cmsis_nn_activation;

/** Per-channel requantization: one multiplier and shift per output channel. */
typedef struct
{
    int32_t *multiplier; /**< Q31 multipliers, one per output channel. */
    int32_t *shift;      /**< Shifts (positive = left), one per output channel. */
} cmsis_nn_per_channel_quant_params;

/** Per-tensor requantization. */
typedef struct
{
    int32_t multiplier; /**< Q31 multiplier. */
    int32_t shift;      /**< Shift (positive = left). */
} cmsis_nn_per_tensor_quant_params;

/** Requantization that is either per-tensor or per-channel. */
typedef struct
{
    int32_t *multiplier;    /**< Q31 multiplier(s): one, or one per output channel. */
    int32_t *shift;         /**< Shift(s), positive = left: one, or one per output channel. */
    int32_t is_per_channel; /**< Non-zero: per-channel arrays; zero: only element [0] is used. */
} cmsis_nn_quant_params;

/** Parameters of a (grouped) convolution. */
typedef struct
{
    int32_t input_offset;  /**< Negated input zero point, range [-127, 128]. */
    int32_t output_offset; /**< Output zero point, range [-128, 127]. */
    cmsis_nn_tile stride;
    cmsis_nn_tile padding; /**< Left (w) and top (h) padding. */
    cmsis_nn_tile dilation;
    cmsis_nn_activation activation;
} cmsis_nn_conv_params;

/** Parameters of a depthwise convolution. */
typedef struct
{
    int32_t input_offset;  /**< Negated input zero point, range [-127, 128]. */
    int32_t output_offset; /**< Output zero point, range [-128, 127]. */
    int32_t ch_mult;       /**< Channel multiplier: output channels = input channels * ch_mult. */
    cmsis_nn_tile stride;
    cmsis_nn_tile padding; /**< Left (w) and top (h) padding. */
    cmsis_nn_tile dilation;
    cmsis_nn_activation activation;
} cmsis_nn_dw_conv_params;

/** Parameters of a fully connected layer. */
typedef struct
{
    int32_t input_offset;  /**< Negated input zero point, range [-127, 128]. */
    int32_t filter_offset; /**< Negated filter zero point; must be 0 (symmetric weights). */
    int32_t output_offset; /**< Output zero point, range [-128, 127]. */
    cmsis_nn_activation activation;
} cmsis_nn_fc_params;

/** Parameters of a pooling layer. */
typedef struct
{
    cmsis_nn_tile stride;
    cmsis_nn_tile padding; /**< Left (w) and top (h) padding. */
    cmsis_nn_activation activation;
} cmsis_nn_pool_params;

/** Parameters of a transpose. */
typedef struct
{
    int32_t num_dims;               /**< Rank of the tensor, 1 to 4. */
    const uint32_t *permutations;   /**< Output axis i is input axis permutations[i]. */
} cmsis_nn_transpose_params;

#ifdef __cplusplus
}
#endif

#endif /* ARM_NN_TYPES_H */
