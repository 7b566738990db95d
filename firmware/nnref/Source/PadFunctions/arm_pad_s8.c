/* nnref: arm_pad_s8 (documented in arm_nnfunctions.h). */
#include "arm_nnfunctions.h"

#include <stddef.h>
#include <string.h>

arm_cmsis_nn_status arm_pad_s8(const int8_t *input,
                               int8_t *output,
                               const int8_t pad_value,
                               const cmsis_nn_dims *input_size,
                               const cmsis_nn_dims *pre_pad,
                               const cmsis_nn_dims *post_pad)
{
    if (pre_pad->n < 0 || pre_pad->h < 0 || pre_pad->w < 0 || pre_pad->c < 0 || post_pad->n < 0 ||
        post_pad->h < 0 || post_pad->w < 0 || post_pad->c < 0)
    {
        return ARM_CMSIS_NN_ARG_ERROR;
    }
    const size_t out_h = (size_t)(pre_pad->h + input_size->h + post_pad->h);
    const size_t out_w = (size_t)(pre_pad->w + input_size->w + post_pad->w);
    const size_t out_c = (size_t)(pre_pad->c + input_size->c + post_pad->c);
    const size_t out_n = (size_t)(pre_pad->n + input_size->n + post_pad->n);
    const size_t in_c = (size_t)input_size->c;

    memset(output, pad_value, out_n * out_h * out_w * out_c);
    for (size_t n = 0; n < (size_t)input_size->n; n++)
    {
        for (size_t h = 0; h < (size_t)input_size->h; h++)
        {
            int8_t *out_row = output + (((n + (size_t)pre_pad->n) * out_h + h + (size_t)pre_pad->h) * out_w +
                                        (size_t)pre_pad->w) * out_c + (size_t)pre_pad->c;
            for (size_t w = 0; w < (size_t)input_size->w; w++)
            {
                memcpy(out_row, input, in_c);
                input += in_c;
                out_row += out_c;
            }
        }
    }
    return ARM_CMSIS_NN_SUCCESS;
}
