/* nnref: arm_avgpool_s16_get_buffer_size_mve (documented in arm_nnfunctions.h).
 * nnref's int16 average pooling needs no scratch on MVE (Helium) CPUs either. */
#include "arm_nnfunctions.h"

int32_t arm_avgpool_s16_get_buffer_size_mve(const int dim_dst_width, const int ch_src)
{
    return arm_avgpool_s16_get_buffer_size(dim_dst_width, ch_src);
}
