/* nnref: arm_concatenation_s8_w (documented in arm_nnfunctions.h). */
#include "arm_nnfunctions.h"

#include <stddef.h>
#include <string.h>

void arm_concatenation_s8_w(const int8_t *input,
                            const uint16_t input_x,
                            const uint16_t input_y,
                            const uint16_t input_z,
                            const uint16_t input_w,
                            int8_t *output,
                            const uint32_t offset_w)
{
    const size_t block = (size_t)input_x * (size_t)input_y * (size_t)input_z;
    memcpy(output + (size_t)offset_w * block, input, block * (size_t)input_w);
}
