/* nnref: arm_lstm_unidirectional_s16 (documented in arm_nnfunctions.h). */
#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

#include <stddef.h>
#include <string.h>

arm_cmsis_nn_status arm_lstm_unidirectional_s16(const int16_t *input,
                                                int16_t *output,
                                                const cmsis_nn_lstm_params *params,
                                                cmsis_nn_lstm_context *buffers)
{
    const size_t batches = (size_t)params->batch_size;
    const size_t in_size = (size_t)params->input_size;
    const size_t hidden = (size_t)params->hidden_size;
    /* Time-major: one step holds every batch; batch-major: a batch's steps follow each other. */
    const int32_t batch_offset = params->time_major ? 1 : params->time_steps;
    const size_t step_in = params->time_major ? batches * in_size : in_size;
    const size_t step_out = params->time_major ? batches * hidden : hidden;

    memset(buffers->cell_state, 0, batches * hidden * sizeof(int16_t));
    const int16_t *hidden_in = NULL;
    for (int32_t t = 0; t < params->time_steps; t++)
    {
        int16_t *const hidden_out = output + (size_t)t * step_out;
        const arm_cmsis_nn_status status =
            arm_nn_lstm_step_s16(input + (size_t)t * step_in, hidden_in, hidden_out, params, buffers, batch_offset);
        if (status != ARM_CMSIS_NN_SUCCESS)
        {
            return status;
        }
        hidden_in = hidden_out;
    }
    return ARM_CMSIS_NN_SUCCESS;
}
