/* nnref: arm_vector_sum_s8_s64 (documented in arm_nnfunctions.h). */
#include "arm_nnfunctions.h"

#include <stddef.h>

arm_cmsis_nn_status arm_vector_sum_s8_s64(int64_t *vector_sum_buf,
                                          const int32_t vector_cols,
                                          const int32_t vector_rows,
                                          const int8_t *vector_data,
                                          const int32_t lhs_offset,
                                          const int64_t *bias_data)
{
    for (int32_t r = 0; r < vector_rows; r++)
    {
        const int8_t *const row = vector_data + (size_t)r * (size_t)vector_cols;
        int64_t sum = 0;
        for (int32_t c = 0; c < vector_cols; c++)
        {
            sum += (int64_t)row[c];
        }
        vector_sum_buf[r] = (int64_t)lhs_offset * sum + (bias_data != NULL ? bias_data[r] : 0);
    }
    return ARM_CMSIS_NN_SUCCESS;
}
