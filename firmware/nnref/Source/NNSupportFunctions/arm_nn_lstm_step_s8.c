/* nnref: arm_nn_lstm_step_s8 (documented in arm_nnsupportfunctions.h). */
#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

#include <stddef.h>

/* clamp16(requantize(effective_bias + weights . vector)) for every batch and hidden unit,
 * added with int16 saturation to gate (accumulate != 0) or stored into it. */
static void gate_fc_s8(const int8_t *vector,
                       int32_t vector_stride,
                       int32_t columns,
                       const int8_t *weights,
                       const int32_t *effective_bias,
                       int32_t multiplier,
                       int32_t shift,
                       const cmsis_nn_lstm_params *params,
                       int32_t accumulate,
                       int16_t *gate)
{
    const int32_t hidden = params->hidden_size;
    for (int32_t b = 0; b < params->batch_size; b++)
    {
        const int8_t *const v = vector + (size_t)b * (size_t)vector_stride;
        int16_t *const out = gate + (size_t)b * (size_t)hidden;
        for (int32_t h = 0; h < hidden; h++)
        {
            const int8_t *const row = weights + (size_t)h * (size_t)columns;
            int32_t acc = effective_bias != NULL ? effective_bias[h] : 0;
            for (int32_t k = 0; k < columns; k++)
            {
                acc += (int32_t)row[k] * (int32_t)v[k];
            }
            const int32_t value = arm_nn_sat_i16(arm_nn_requantize(acc, multiplier, shift));
            out[h] = accumulate ? arm_nn_sat_i16((int32_t)out[h] + value) : (int16_t)value;
        }
    }
}

static void gate_s8(const int8_t *data_in,
                    const int8_t *hidden_in,
                    const cmsis_nn_lstm_gate *gate,
                    const cmsis_nn_lstm_params *params,
                    int32_t batch_offset,
                    int16_t *out)
{
    gate_fc_s8(data_in, batch_offset * params->input_size, params->input_size, gate->input_weights,
               gate->input_effective_bias, gate->input_multiplier, gate->input_shift, params, 0, out);
    if (hidden_in != NULL)
    {
        gate_fc_s8(hidden_in, batch_offset * params->hidden_size, params->hidden_size, gate->hidden_weights,
                   gate->hidden_effective_bias, gate->hidden_multiplier, gate->hidden_shift, params, 1, out);
    }
    arm_nn_activation_s16(out, out, params->batch_size * params->hidden_size, 0, gate->activation_type);
}

arm_cmsis_nn_status arm_nn_lstm_step_s8(const int8_t *data_in,
                                        const int8_t *hidden_in,
                                        int8_t *hidden_out,
                                        const cmsis_nn_lstm_params *params,
                                        cmsis_nn_lstm_context *buffers,
                                        const int32_t batch_offset)
{
    int16_t *const temp1 = (int16_t *)buffers->temp1;
    int16_t *const temp2 = (int16_t *)buffers->temp2;
    int16_t *const cell = (int16_t *)buffers->cell_state;
    const int32_t hidden = params->hidden_size;

    /* Two scratch buffers suffice: the forget gate is folded into the cell state before the input
     * gate needs temp1, and the output gate is computed after the cell state update. */
    gate_s8(data_in, hidden_in, &params->forget_gate, params, batch_offset, temp1);
    arm_nn_lstm_forget_cell_s16(params, temp1, cell);
    gate_s8(data_in, hidden_in, &params->input_gate, params, batch_offset, temp1);
    gate_s8(data_in, hidden_in, &params->cell_gate, params, batch_offset, temp2);
    arm_nn_lstm_add_cell_s16(params, temp1, temp2, cell);
    gate_s8(data_in, hidden_in, &params->output_gate, params, batch_offset, temp1);

    arm_nn_activation_s16(cell, temp2, params->batch_size * hidden, params->cell_scale_power + 12, ARM_TANH);
    for (int32_t b = 0; b < params->batch_size; b++)
    {
        int8_t *const out = hidden_out + (size_t)b * (size_t)batch_offset * (size_t)hidden;
        for (int32_t h = 0; h < hidden; h++)
        {
            const int32_t i = b * hidden + h;
            const int32_t v = arm_nn_requantize((int32_t)temp1[i] * temp2[i], params->output_multiplier,
                                                params->output_shift) +
                              params->output_offset;
            out[h] = (int8_t)arm_nn_clamp_i32(v, INT8_MIN, INT8_MAX);
        }
    }
    return ARM_CMSIS_NN_SUCCESS;
}
