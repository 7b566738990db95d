/* nnref: the LSTM cell state update, arm_nn_lstm_forget_cell_s16 and arm_nn_lstm_add_cell_s16
 * (documented in arm_nnsupportfunctions.h). */
#include "arm_nnsupportfunctions.h"

void arm_nn_lstm_forget_cell_s16(const cmsis_nn_lstm_params *params, const int16_t *forget_gate, int16_t *cell_state)
{
    const int32_t count = params->batch_size * params->hidden_size;
    for (int32_t i = 0; i < count; i++)
    {
        cell_state[i] = arm_nn_sat_i16(arm_nn_requantize(
            (int32_t)forget_gate[i] * cell_state[i], params->forget_to_cell_multiplier, params->forget_to_cell_shift));
    }
}

void arm_nn_lstm_add_cell_s16(const cmsis_nn_lstm_params *params,
                              const int16_t *input_gate,
                              const int16_t *cell_gate,
                              int16_t *cell_state)
{
    const int32_t count = params->batch_size * params->hidden_size;
    const int32_t clip = params->cell_clip;
    for (int32_t i = 0; i < count; i++)
    {
        const int32_t added = arm_nn_sat_i16(arm_nn_requantize(
            (int32_t)input_gate[i] * cell_gate[i], params->input_to_cell_multiplier, params->input_to_cell_shift));
        int32_t cell = arm_nn_sat_i16((int32_t)cell_state[i] + added);
        if (clip > 0)
        {
            cell = arm_nn_clamp_i32(cell, -clip, clip);
        }
        cell_state[i] = (int16_t)cell;
    }
}
