/* nnref: arm_avgpool_s16_get_buffer_size (documented in arm_nnfunctions.h).
 * nnref's int16 average pooling needs no scratch. */
#include "arm_nnfunctions.h"

int32_t arm_avgpool_s16_get_buffer_size(const int dim_dst_width, const int ch_src)
{
    (void)dim_dst_width;
    (void)ch_src;
    return 0;
}
