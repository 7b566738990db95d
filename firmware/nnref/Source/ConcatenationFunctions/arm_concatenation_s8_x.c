/* nnref: arm_concatenation_s8_x (documented in arm_nnfunctions.h). */
#include "arm_nnfunctions.h"

#include <stddef.h>
#include <string.h>

void arm_concatenation_s8_x(const int8_t *input,
                            const uint16_t input_x,
                            const uint16_t input_y,
                            const uint16_t input_z,
                            const uint16_t input_w,
                            int8_t *output,
                            const uint16_t output_x,
                            const uint32_t offset_x)
{
    const size_t copy = (size_t)input_x;
    const size_t stride = (size_t)output_x;
    const size_t iterations = (size_t)input_y * (size_t)input_z * (size_t)input_w;
    output += (size_t)offset_x;
    for (size_t i = 0; i < iterations; i++)
    {
        memcpy(output, input, copy);
        input += copy;
        output += stride;
    }
}
