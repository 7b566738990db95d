/* Test-only: nnref's internal arithmetic (static inline in arm_nnsupportfunctions.h) exported for
 * ctypes, so tests/test_nnref_host.py can compare it with mcudeploy/quantize/arith.py. */
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
