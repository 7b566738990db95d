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

#include <stdbool.h>
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

/** Activation function of arm_nn_activation_s16 and of the LSTM gates. */
typedef enum
{
    ARM_SIGMOID = 0, /**< Logistic function. */
    ARM_TANH = 1,    /**< Hyperbolic tangent. */
} arm_nn_activation_type;

/** A 2-D extent (stride, padding, dilation). */
typedef struct
{
    int32_t w; /**< Width. */
    int32_t h; /**< Height. */
} cmsis_nn_tile;

/** Bias of the int16 convolutions: int32 or int64 values. */
typedef struct
{
    const void *data;         /**< Bias values, or NULL for no bias. */
    const bool is_int32_bias; /**< true: data is int32_t[C_out]; false: int64_t[C_out]. */
} cmsis_nn_bias_data;

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

/** The two lookup tables of arm_softmax_s16, 513 int16 values each (see arm_softmax_s16). */
typedef struct
{
    const int16_t *exp_lut;        /**< exp(x) for x in [-10, 0]. */
    const int16_t *one_by_one_lut; /**< 1 / (1 + x) for x in [0, 1]. */
} cmsis_nn_softmax_lut_s16;

/** Requantization of one tensor (multiplier and shift as in cmsis_nn_per_tensor_quant_params). */
typedef struct
{
    int32_t multiplier; /**< Q31 multiplier. */
    int32_t shift;      /**< Shift (positive = left). */
} cmsis_nn_scaling;

/** Sizes of an LSTM (part of Arm's API; not used by the LSTM functions, which read
 * cmsis_nn_lstm_params). */
typedef struct
{
    int32_t max_time;
    int32_t num_inputs;
    int32_t num_batches;
    int32_t num_outputs;
} cmsis_nn_lstm_dims;

/** One gate of an LSTM: gate = activation(FC(input) + FC(hidden state)), see
 * arm_lstm_unidirectional_s8. */
typedef struct
{
    int32_t input_multiplier;          /**< Requantization of the input FC (to the gate's Q3.12). */
    int32_t input_shift;               /**< Its shift (positive = left). */
    const void *input_weights;         /**< int8 [hidden_size][input_size]. */
    const void *input_effective_bias;  /**< [hidden_size]: bias + input_offset * row sums of
                                            input_weights (int32 for s8, int64 for s16). */
    int32_t hidden_multiplier;         /**< Requantization of the recurrent FC. */
    int32_t hidden_shift;              /**< Its shift (positive = left). */
    const void *hidden_weights;        /**< int8 [hidden_size][hidden_size]. */
    const void *hidden_effective_bias; /**< [hidden_size]: -output_offset * row sums of
                                            hidden_weights (int32 for s8, int64 for s16). */
    const void *bias;                  /**< The gate's own bias (not read by the LSTM functions:
                                            input_effective_bias includes it). */
    arm_nn_activation_type activation_type; /**< ARM_SIGMOID, or the cell gate's activation. */
} cmsis_nn_lstm_gate;

/** An LSTM layer (TFLite UNIDIRECTIONAL_SEQUENCE_LSTM without peephole, projection or layer
 * normalisation), see arm_lstm_unidirectional_s8. */
typedef struct
{
    int32_t time_major;  /**< Non-zero: input [time][batch][input_size]; 0: [batch][time][...]. */
    int32_t batch_size;  /**< Batches. */
    int32_t time_steps;  /**< Time steps per call. */
    int32_t input_size;  /**< Values of one input step. */
    int32_t hidden_size; /**< Values of the hidden state (and of one output step). */

    int32_t input_offset; /**< Negated input zero point (0 for s16). */

    int32_t forget_to_cell_multiplier; /**< forget gate * cell state -> cell state. */
    int32_t forget_to_cell_shift;
    int32_t input_to_cell_multiplier; /**< input gate * cell gate -> cell state. */
    int32_t input_to_cell_shift;
    int32_t cell_clip;        /**< Cell state clamp [-cell_clip, cell_clip]; 0 = no clamp. */
    int32_t cell_scale_power; /**< Cell state scale = 2^cell_scale_power. */

    int32_t output_multiplier; /**< tanh(cell) * output gate -> hidden state. */
    int32_t output_shift;
    int32_t output_offset; /**< Hidden state (output) zero point (0 for s16). */

    cmsis_nn_lstm_gate forget_gate;
    cmsis_nn_lstm_gate input_gate;
    cmsis_nn_lstm_gate cell_gate;
    cmsis_nn_lstm_gate output_gate;
} cmsis_nn_lstm_params;

/** Caller-owned buffers of the LSTM functions, batch_size * hidden_size int16 values each. */
typedef struct
{
    void *temp1;      /**< Scratch. */
    void *temp2;      /**< Scratch. */
    void *cell_state; /**< The cell state: zeroed by arm_lstm_unidirectional_*, carried from step
                           to step (and from call to call of arm_nn_lstm_step_*). */
} cmsis_nn_lstm_context;

#ifdef __cplusplus
}
#endif

#endif /* ARM_NN_TYPES_H */
