/*
 * A test model for nnref's int16 (16x8) and LSTM functions, which mcudeploy's templates do not
 * emit yet. tests/test_nnref_s16_device.py drives it.
 *
 * Layer 0 runs one case written by the host into input 0: int32 words h[0..CASE_WORDS) (an op
 * code and its parameters, the byte offsets of its arrays in the same buffer), then the arrays.
 * It writes the result to output 0. Invoke with stop_after = 0 to run only this layer. Every call
 * gets the scratch its *_get_buffer_size query asks for, so the model also links Arm's library.
 *
 * Layers 1..6 are the instructions-per-MAC benchmark: the same convolution, depthwise
 * convolution and fully connected shapes as s8 and as s16, on data filled at start-up by a
 * linear congruential generator (the host computes the same numbers); outputs 1..6 hold results.
 */
#include <stddef.h>

#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"
#include "mcd_model.h"

#define CASE_BYTES 12288u
#define OUT_BYTES 8192u
#define CASE_WORDS 64
#define LSTM_SCRATCH 512 /* int16 values per LSTM buffer: batch * hidden */
#define SCRATCH_BYTES 16384u

enum
{
    OP_CONV = 1,
    OP_DEPTHWISE = 2,
    OP_FC = 3,
    OP_ADD = 4,
    OP_MUL = 5,
    OP_AVGPOOL = 6,
    OP_MAXPOOL = 7,
    OP_SOFTMAX = 8,
    OP_LSTM_S8 = 9,
    OP_LSTM_S16 = 10,
    OP_LSTM_STEPS_S8 = 11,
    OP_LSTM_STEPS_S16 = 12,
    OP_ACTIVATION = 13,
};

/* Benchmark shapes (tests/test_nnref_s16_device.py repeats them). */
#define CONV_HW 12
#define CONV_C 16
#define DW_HW 16
#define DW_C 16
#define FC_DEPTH 512
#define FC_OUT 32

static struct
{
    int8_t case_buf[CASE_BYTES];
    int8_t out[OUT_BYTES];
    int16_t lstm_temp[3][LSTM_SCRATCH];
    int64_t scratch[SCRATCH_BYTES / 8];
    int8_t conv_in8[CONV_HW * CONV_HW * CONV_C];
    int16_t conv_in16[CONV_HW * CONV_HW * CONV_C];
    int8_t conv_out8[CONV_HW * CONV_HW * CONV_C];
    int16_t conv_out16[CONV_HW * CONV_HW * CONV_C];
    int8_t dw_in8[DW_HW * DW_HW * DW_C];
    int16_t dw_in16[DW_HW * DW_HW * DW_C];
    int8_t dw_out8[DW_HW * DW_HW * DW_C];
    int16_t dw_out16[DW_HW * DW_HW * DW_C];
    int8_t fc_in8[FC_DEPTH];
    int16_t fc_in16[FC_DEPTH];
    int8_t fc_out8[FC_OUT];
    int16_t fc_out16[FC_OUT];
    int32_t fc_sums[FC_OUT];
} arena __attribute__((section(".arena"), aligned(16)));

static int8_t conv_w[CONV_C * 3 * 3 * CONV_C];
static int8_t dw_w[3 * 3 * DW_C];
static int8_t fc_w[FC_OUT * FC_DEPTH];
static int32_t bias32[CONV_C];
static int64_t bias64[CONV_C];
static int32_t fc_bias32[FC_OUT];
static int64_t fc_bias64[FC_OUT];
static int32_t bench_mult[CONV_C];
static int32_t bench_shift8[CONV_C];
static int32_t bench_shift16[CONV_C];

/* ---------------------------------------------------------------- layer 0: one case */

/* The scratch a function asked for with its *_get_buffer_size query, as generated code passes
 * it (nnref asks for none; Arm's library may). ok is 0 if it does not fit. */
static cmsis_nn_context scratch(int32_t size, int32_t *ok)
{
    const cmsis_nn_context ctx = {.buf = arena.scratch, .size = size};
    *ok = size >= 0 && (uint32_t)size <= SCRATCH_BYTES;
    return ctx;
}

static const void *at(const int32_t *h, int32_t word)
{
    return h[word] < 0 ? NULL : (const void *)(arena.case_buf + h[word]);
}

static cmsis_nn_dims dims_at(const int32_t *h, int32_t word)
{
    const cmsis_nn_dims d = {.n = h[word], .h = h[word + 1], .w = h[word + 2], .c = h[word + 3]};
    return d;
}

static int32_t run_conv(const int32_t *h, int32_t depthwise)
{
    const cmsis_nn_dims in = dims_at(h, 1);
    const cmsis_nn_dims filter = dims_at(h, 5);
    const cmsis_nn_dims out = dims_at(h, 9);
    const cmsis_nn_dims bias_dims = {.n = 1, .h = 1, .w = 1, .c = out.c};
    const cmsis_nn_per_channel_quant_params quant = {.multiplier = (int32_t *)at(h, 25),
                                                     .shift = (int32_t *)at(h, 26)};
    const cmsis_nn_tile stride = {.w = h[13], .h = h[14]};
    const cmsis_nn_tile padding = {.w = h[15], .h = h[16]};
    const cmsis_nn_tile dilation = {.w = h[17], .h = h[18]};
    const cmsis_nn_activation act = {.min = h[19], .max = h[20]};
    int16_t *const output = (int16_t *)arena.out;
    int32_t ok;
    if (depthwise)
    {
        const cmsis_nn_dw_conv_params params = {
            .ch_mult = h[27], .stride = stride, .padding = padding, .dilation = dilation, .activation = act};
        const cmsis_nn_context ctx =
            scratch(arm_depthwise_conv_wrapper_s16_get_buffer_size(&params, &in, &filter, &out), &ok);
        return ok ? arm_depthwise_conv_wrapper_s16(&ctx, &params, &quant, &in, at(h, 22), &filter, at(h, 23),
                                                   &bias_dims, at(h, 24), &out, output)
                  : ARM_CMSIS_NN_FAILURE;
    }
    const cmsis_nn_conv_params params = {.stride = stride, .padding = padding, .dilation = dilation, .activation = act};
    const cmsis_nn_bias_data bias = {.data = at(h, 24), .is_int32_bias = h[21] != 0};
    const cmsis_nn_context ctx = scratch(arm_convolve_wrapper_s16_get_buffer_size(&params, &in, &filter, &out), &ok);
    return ok ? arm_convolve_wrapper_s16(&ctx, &params, &quant, &in, at(h, 22), &filter, at(h, 23), &bias_dims, &bias,
                                         &out, output)
              : ARM_CMSIS_NN_FAILURE;
}

static int32_t run_fc(const int32_t *h)
{
    const cmsis_nn_dims in = {.n = h[1], .h = 1, .w = 1, .c = h[2]};
    const cmsis_nn_dims filter = {.n = h[2], .h = 1, .w = 1, .c = h[3]};
    const cmsis_nn_dims out = {.n = h[1], .h = 1, .w = 1, .c = h[3]};
    const cmsis_nn_fc_params params = {.activation = {.min = h[6], .max = h[7]}};
    const cmsis_nn_per_tensor_quant_params quant = {.multiplier = h[4], .shift = h[5]};
    int32_t ok;
    const cmsis_nn_context ctx = scratch(arm_fully_connected_s16_get_buffer_size(&filter), &ok);
    return ok ? arm_fully_connected_s16(&ctx, &params, &quant, &in, at(h, 22), &filter, at(h, 23), &out, at(h, 24),
                                        &out, (int16_t *)arena.out)
              : ARM_CMSIS_NN_FAILURE;
}

static int32_t run_pool(const int32_t *h, int32_t max)
{
    const cmsis_nn_dims in = dims_at(h, 1);
    const cmsis_nn_dims window = {.n = 1, .h = h[5], .w = h[6], .c = 1};
    const cmsis_nn_dims out = dims_at(h, 9);
    const cmsis_nn_pool_params params = {.stride = {.w = h[13], .h = h[14]},
                                         .padding = {.w = h[15], .h = h[16]},
                                         .activation = {.min = h[19], .max = h[20]}};
    int32_t ok;
    const cmsis_nn_context ctx = scratch(max ? 0 : arm_avgpool_s16_get_buffer_size(out.w, in.c), &ok);
    if (!ok)
    {
        return ARM_CMSIS_NN_FAILURE;
    }
    if (max)
    {
        return arm_max_pool_s16(&ctx, &params, &in, at(h, 22), &window, &out, (int16_t *)arena.out);
    }
    return arm_avgpool_s16(&ctx, &params, &in, at(h, 22), &window, &out, (int16_t *)arena.out);
}

static void lstm_gate(const int32_t *h, int32_t index, cmsis_nn_lstm_gate *gate)
{
    const int32_t *const g = h + 20 + 8 * index;
    gate->input_multiplier = g[0];
    gate->input_shift = g[1];
    gate->input_weights = at(g, 2);
    gate->input_effective_bias = at(g, 3);
    gate->hidden_multiplier = g[4];
    gate->hidden_shift = g[5];
    gate->hidden_weights = at(g, 6);
    gate->hidden_effective_bias = at(g, 7);
    gate->bias = NULL;
    gate->activation_type = (arm_nn_activation_type)h[52 + index];
}

static int32_t run_lstm(const int32_t *h, int32_t op)
{
    cmsis_nn_lstm_params p = {.time_major = h[1], .batch_size = h[2], .time_steps = h[3], .input_size = h[4],
                              .hidden_size = h[5], .input_offset = h[6], .forget_to_cell_multiplier = h[7],
                              .forget_to_cell_shift = h[8], .input_to_cell_multiplier = h[9],
                              .input_to_cell_shift = h[10], .cell_clip = h[11], .cell_scale_power = h[12],
                              .output_multiplier = h[13], .output_shift = h[14], .output_offset = h[15]};
    lstm_gate(h, 0, &p.forget_gate);
    lstm_gate(h, 1, &p.input_gate);
    lstm_gate(h, 2, &p.cell_gate);
    lstm_gate(h, 3, &p.output_gate);
    cmsis_nn_lstm_context ctx = {
        .temp1 = arena.lstm_temp[0], .temp2 = arena.lstm_temp[1], .cell_state = arena.lstm_temp[2]};
    if (p.batch_size * p.hidden_size > LSTM_SCRATCH)
    {
        return ARM_CMSIS_NN_ARG_ERROR;
    }
    if (op == OP_LSTM_S8)
    {
        return arm_lstm_unidirectional_s8(at(h, 60), arena.out, &p, &ctx);
    }
    if (op == OP_LSTM_S16)
    {
        return arm_lstm_unidirectional_s16(at(h, 60), (int16_t *)arena.out, &p, &ctx);
    }
    /* Streaming, time-major: from the hidden and cell state of the case, one step per time step;
     * output = every step's hidden state, then the final cell state. */
    const int32_t state = p.batch_size * p.hidden_size;
    const int32_t width = op == OP_LSTM_STEPS_S8 ? 1 : 2;
    int8_t *const hidden = (int8_t *)at(h, 61);
    int16_t *const cell = (int16_t *)at(h, 62);
    ctx.cell_state = cell;
    for (int32_t t = 0; t < p.time_steps; t++)
    {
        const int8_t *const step_in = (const int8_t *)at(h, 60) + t * p.batch_size * p.input_size * width;
        const arm_cmsis_nn_status status =
            op == OP_LSTM_STEPS_S8
                ? arm_nn_lstm_step_s8(step_in, hidden, hidden, &p, &ctx, 1)
                : arm_nn_lstm_step_s16((const int16_t *)step_in, (int16_t *)hidden, (int16_t *)hidden, &p, &ctx, 1);
        if (status != ARM_CMSIS_NN_SUCCESS)
        {
            return status;
        }
        for (int32_t i = 0; i < state * width; i++)
        {
            arena.out[t * state * width + i] = hidden[i];
        }
    }
    int16_t *const cell_out = (int16_t *)(arena.out + p.time_steps * state * width);
    for (int32_t i = 0; i < state; i++)
    {
        cell_out[i] = cell[i];
    }
    return ARM_CMSIS_NN_SUCCESS;
}

static int32_t run_case(void)
{
    const int32_t *const h = (const int32_t *)arena.case_buf;
    switch (h[0])
    {
    case OP_CONV:
        return run_conv(h, 0);
    case OP_DEPTHWISE:
        return run_conv(h, 1);
    case OP_FC:
        return run_fc(h);
    case OP_ADD:
        return arm_elementwise_add_s16(at(h, 22), at(h, 23), 0, h[2], h[3], 0, h[4], h[5], h[8], (int16_t *)arena.out,
                                       0, h[6], h[7], h[9], h[10], h[1]);
    case OP_MUL:
        return arm_elementwise_mul_s16(at(h, 22), at(h, 23), 0, 0, (int16_t *)arena.out, 0, h[2], h[3], h[4], h[5],
                                       h[1]);
    case OP_AVGPOOL:
        return run_pool(h, 0);
    case OP_MAXPOOL:
        return run_pool(h, 1);
    case OP_SOFTMAX:
    {
        const cmsis_nn_softmax_lut_s16 luts = {.exp_lut = at(h, 23), .one_by_one_lut = at(h, 24)};
        return arm_softmax_s16(at(h, 22), h[1], h[2], h[3], h[4], &luts, (int16_t *)arena.out);
    }
    case OP_LSTM_S8:
    case OP_LSTM_S16:
    case OP_LSTM_STEPS_S8:
    case OP_LSTM_STEPS_S16:
        return run_lstm(h, h[0]);
    case OP_ACTIVATION:
        return arm_nn_activation_s16(at(h, 22), (int16_t *)arena.out, h[1], h[2], (arm_nn_activation_type)h[3]);
    default:
        return ARM_CMSIS_NN_NO_IMPL_ERROR;
    }
}

/* ---------------------------------------------------------------- layers 1..6: s8/s16 twins */

/* Called through volatile pointers, so that link-time optimisation cannot inline a kernel that
 * has one caller here and specialise it for these constant shapes (a model calls each kernel for
 * many layers). */
static __typeof__(arm_convolve_wrapper_s8) *volatile conv8_fn = arm_convolve_wrapper_s8;
static __typeof__(arm_convolve_wrapper_s16) *volatile conv16_fn = arm_convolve_wrapper_s16;
static __typeof__(arm_depthwise_conv_wrapper_s8) *volatile dw8_fn = arm_depthwise_conv_wrapper_s8;
static __typeof__(arm_depthwise_conv_wrapper_s16) *volatile dw16_fn = arm_depthwise_conv_wrapper_s16;
static __typeof__(arm_fully_connected_s8) *volatile fc8_fn = arm_fully_connected_s8;
static __typeof__(arm_fully_connected_s16) *volatile fc16_fn = arm_fully_connected_s16;

static int32_t conv_s8(void)
{
    const cmsis_nn_dims in = {.n = 1, .h = CONV_HW, .w = CONV_HW, .c = CONV_C};
    const cmsis_nn_dims filter = {.n = CONV_C, .h = 3, .w = 3, .c = CONV_C};
    const cmsis_nn_dims bias = {.n = 1, .h = 1, .w = 1, .c = CONV_C};
    const cmsis_nn_conv_params params = {.input_offset = 3, .output_offset = -2, .stride = {1, 1}, .padding = {1, 1},
                                         .dilation = {1, 1}, .activation = {-128, 127}};
    const cmsis_nn_per_channel_quant_params quant = {.multiplier = bench_mult, .shift = bench_shift8};
    int32_t ok;
    const cmsis_nn_context ctx = scratch(arm_convolve_wrapper_s8_get_buffer_size(&params, &in, &filter, &in), &ok);
    return ok ? conv8_fn(&ctx, &params, &quant, &in, arena.conv_in8, &filter, conv_w, &bias, bias32,
                                        &in, arena.conv_out8)
              : ARM_CMSIS_NN_FAILURE;
}

static int32_t conv_s16(void)
{
    const cmsis_nn_dims in = {.n = 1, .h = CONV_HW, .w = CONV_HW, .c = CONV_C};
    const cmsis_nn_dims filter = {.n = CONV_C, .h = 3, .w = 3, .c = CONV_C};
    const cmsis_nn_dims bias_dims = {.n = 1, .h = 1, .w = 1, .c = CONV_C};
    const cmsis_nn_conv_params params = {.stride = {1, 1}, .padding = {1, 1}, .dilation = {1, 1},
                                         .activation = {-32768, 32767}};
    const cmsis_nn_per_channel_quant_params quant = {.multiplier = bench_mult, .shift = bench_shift16};
    const cmsis_nn_bias_data bias = {.data = bias64, .is_int32_bias = false};
    int32_t ok;
    const cmsis_nn_context ctx = scratch(arm_convolve_wrapper_s16_get_buffer_size(&params, &in, &filter, &in), &ok);
    return ok ? conv16_fn(&ctx, &params, &quant, &in, arena.conv_in16, &filter, conv_w, &bias_dims,
                                         &bias, &in, arena.conv_out16)
              : ARM_CMSIS_NN_FAILURE;
}

static int32_t dw_s8(void)
{
    const cmsis_nn_dims in = {.n = 1, .h = DW_HW, .w = DW_HW, .c = DW_C};
    const cmsis_nn_dims filter = {.n = 1, .h = 3, .w = 3, .c = DW_C};
    const cmsis_nn_dims bias = {.n = 1, .h = 1, .w = 1, .c = DW_C};
    const cmsis_nn_dw_conv_params params = {.input_offset = 3, .output_offset = -2, .ch_mult = 1, .stride = {1, 1},
                                            .padding = {1, 1}, .dilation = {1, 1}, .activation = {-128, 127}};
    const cmsis_nn_per_channel_quant_params quant = {.multiplier = bench_mult, .shift = bench_shift8};
    int32_t ok;
    const cmsis_nn_context ctx =
        scratch(arm_depthwise_conv_wrapper_s8_get_buffer_size(&params, &in, &filter, &in), &ok);
    return ok ? dw8_fn(&ctx, &params, &quant, &in, arena.dw_in8, &filter, dw_w, &bias, bias32,
                                              &in, arena.dw_out8)
              : ARM_CMSIS_NN_FAILURE;
}

static int32_t dw_s16(void)
{
    const cmsis_nn_dims in = {.n = 1, .h = DW_HW, .w = DW_HW, .c = DW_C};
    const cmsis_nn_dims filter = {.n = 1, .h = 3, .w = 3, .c = DW_C};
    const cmsis_nn_dims bias = {.n = 1, .h = 1, .w = 1, .c = DW_C};
    const cmsis_nn_dw_conv_params params = {.ch_mult = 1, .stride = {1, 1}, .padding = {1, 1}, .dilation = {1, 1},
                                            .activation = {-32768, 32767}};
    const cmsis_nn_per_channel_quant_params quant = {.multiplier = bench_mult, .shift = bench_shift16};
    int32_t ok;
    const cmsis_nn_context ctx =
        scratch(arm_depthwise_conv_wrapper_s16_get_buffer_size(&params, &in, &filter, &in), &ok);
    return ok ? dw16_fn(&ctx, &params, &quant, &in, arena.dw_in16, &filter, dw_w, &bias,
                                               bias64, &in, arena.dw_out16)
              : ARM_CMSIS_NN_FAILURE;
}

static int32_t fc_s8(void)
{
    const cmsis_nn_dims in = {.n = 1, .h = 1, .w = 1, .c = FC_DEPTH};
    const cmsis_nn_dims filter = {.n = FC_DEPTH, .h = 1, .w = 1, .c = FC_OUT};
    const cmsis_nn_dims out = {.n = 1, .h = 1, .w = 1, .c = FC_OUT};
    const cmsis_nn_fc_params params = {.input_offset = 3, .output_offset = -2, .activation = {-128, 127}};
    const cmsis_nn_per_tensor_quant_params quant = {.multiplier = 1518500250, .shift = -11};
    const cmsis_nn_context ctx = {.buf = arena.fc_sums, .size = sizeof arena.fc_sums};
    return fc8_fn(&ctx, &params, &quant, &in, arena.fc_in8, &filter, fc_w, &out, fc_bias32, &out,
                                  arena.fc_out8);
}

static int32_t fc_s16(void)
{
    const cmsis_nn_dims in = {.n = 1, .h = 1, .w = 1, .c = FC_DEPTH};
    const cmsis_nn_dims filter = {.n = FC_DEPTH, .h = 1, .w = 1, .c = FC_OUT};
    const cmsis_nn_dims out = {.n = 1, .h = 1, .w = 1, .c = FC_OUT};
    const cmsis_nn_fc_params params = {.activation = {-32768, 32767}};
    const cmsis_nn_per_tensor_quant_params quant = {.multiplier = 1518500250, .shift = -11};
    int32_t ok;
    const cmsis_nn_context ctx = scratch(arm_fully_connected_s16_get_buffer_size(&filter), &ok);
    return ok ? fc16_fn(&ctx, &params, &quant, &in, arena.fc_in16, &filter, fc_w, &out, fc_bias64,
                                        &out, arena.fc_out16)
              : ARM_CMSIS_NN_FAILURE;
}

/* ---------------------------------------------------------------- start-up data */

static uint32_t lcg = 12345u;

static uint32_t next(void)
{
    lcg = lcg * 1664525u + 1013904223u;
    return lcg;
}

static void fill8(int8_t *data, size_t count)
{
    for (size_t i = 0; i < count; i++)
    {
        data[i] = (int8_t)(next() >> 24);
    }
}

static void fill16(int16_t *data, size_t count)
{
    for (size_t i = 0; i < count; i++)
    {
        data[i] = (int16_t)(next() >> 16);
    }
}

int32_t mcd_model_init(void)
{
    lcg = 12345u;
    fill8(arena.conv_in8, sizeof arena.conv_in8);
    fill16(arena.conv_in16, sizeof arena.conv_in16 / 2);
    fill8(arena.dw_in8, sizeof arena.dw_in8);
    fill16(arena.dw_in16, sizeof arena.dw_in16 / 2);
    fill8(arena.fc_in8, sizeof arena.fc_in8);
    fill16(arena.fc_in16, sizeof arena.fc_in16 / 2);
    fill8(conv_w, sizeof conv_w);
    fill8(dw_w, sizeof dw_w);
    fill8(fc_w, sizeof fc_w);
    for (int32_t c = 0; c < CONV_C; c++)
    {
        bias32[c] = (int32_t)(next() >> 18) - 8192;
        bias64[c] = (int64_t)bias32[c] * 256;
        bench_mult[c] = (int32_t)(0x40000000u + (next() >> 2));
        bench_shift8[c] = -10;
        bench_shift16[c] = -10;
    }
    for (int32_t o = 0; o < FC_OUT; o++)
    {
        fc_bias32[o] = (int32_t)(next() >> 18) - 8192;
        fc_bias64[o] = (int64_t)fc_bias32[o] * 256;
    }
    /* The kernel sums the fully connected s8 reads from its context on MVE builds: what
     * arm_vector_sum_s8 computes (whose arguments differ between releases), input_offset times
     * each row's sum plus its bias. */
    for (int32_t o = 0; o < FC_OUT; o++)
    {
        int32_t sum = 0;
        for (int32_t k = 0; k < FC_DEPTH; k++)
        {
            sum += fc_w[o * FC_DEPTH + k];
        }
        arena.fc_sums[o] = 3 * sum + fc_bias32[o];
    }
    return 0;
}

void mcd_model_reset(void) {}

const uint16_t mcd_num_layers = 7;
const mcd_layer_fn mcd_layers[] = {run_case, conv_s8, conv_s16, dw_s8, dw_s16, fc_s8, fc_s16};

const uint8_t mcd_num_inputs = 1;
const mcd_buffer mcd_inputs[] = {{arena.case_buf, CASE_BYTES}};
const uint8_t mcd_num_outputs = 7;
const mcd_buffer mcd_outputs[] = {
    {arena.out, OUT_BYTES},
    {arena.conv_out8, sizeof arena.conv_out8},
    {(int8_t *)arena.conv_out16, sizeof arena.conv_out16},
    {arena.dw_out8, sizeof arena.dw_out8},
    {(int8_t *)arena.dw_out16, sizeof arena.dw_out16},
    {arena.fc_out8, sizeof arena.fc_out8},
    {(int8_t *)arena.fc_out16, sizeof arena.fc_out16},
};

const uint16_t mcd_num_tensors = 1;
const mcd_tensor mcd_tensors[] = {{arena.out, OUT_BYTES, 0}};

const uint8_t mcd_model_hash[8] = {'n', 'n', 'r', 'e', 'f', 's', '1', '6'};
const uint32_t mcd_arena_bytes = sizeof arena;
