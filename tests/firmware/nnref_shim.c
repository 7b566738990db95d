/* Test-only: nnref's internal arithmetic (static inline in arm_nnsupportfunctions.h) and the
 * int16 sigmoid table exported for ctypes, so tests/test_nnref_host.py and test_nnref_s16.py can
 * compare them with mcudeploy/arith/__init__.py and mcudeploy/reference/s16.py. */
#include "arm_nnsupportfunctions.h"

int32_t shim_doubling_high_mult(int32_t a, int32_t b);
int32_t shim_divide_by_power_of_two(int32_t x, int32_t exponent);
int32_t shim_requantize(int32_t x, int32_t multiplier, int32_t shift);

int32_t shim_doubling_high_mult(int32_t a, int32_t b)
{
    return arm_nn_doubling_high_mult(a, b);
}

int32_t shim_divide_by_power_of_two(int32_t x, int32_t exponent)
{
    return arm_nn_divide_by_power_of_two(x, exponent);
}

int32_t shim_requantize(int32_t x, int32_t multiplier, int32_t shift)
{
    return arm_nn_requantize(x, multiplier, shift);
}

int32_t shim_requantize_s64(int64_t x, int32_t multiplier, int32_t shift);
int16_t shim_lut_lookup_s16(int16_t value, const int16_t *lut);
uint16_t shim_sigmoid_table_s16(int32_t index);

int32_t shim_requantize_s64(int64_t x, int32_t multiplier, int32_t shift)
{
    return arm_nn_requantize_s64(x, multiplier, shift);
}

int16_t shim_lut_lookup_s16(int16_t value, const int16_t *lut)
{
    return arm_nn_lut_lookup_s16(value, lut);
}

uint16_t shim_sigmoid_table_s16(int32_t index)
{
    return arm_nn_sigmoid_table_s16[index];
}
