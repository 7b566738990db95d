/*
 * Small helpers for the layers generated code computes itself (operators CMSIS-NN has no kernel
 * for). Only public TFLite arithmetic, nothing from the NN library's internals.
 */
#ifndef MCD_KERNELS_H
#define MCD_KERNELS_H

#include <stdint.h>

/* TFLite MultiplyByQuantizedMultiplier: x * multiplier * 2^(shift - 31), double rounding. */
static inline int32_t mcd_requantize(int32_t x, int32_t multiplier, int32_t shift)
{
    const int32_t left = shift > 0 ? shift : 0;
    const int32_t right = shift > 0 ? 0 : -shift;
    const int32_t scaled = (int32_t)((uint32_t)x << left);
    int32_t high;
    if (scaled == INT32_MIN && multiplier == INT32_MIN) {
        high = INT32_MAX;
    } else {
        const int64_t product = (int64_t)scaled * multiplier + (1LL << 30);
        high = (int32_t)(product >> 31);
    }
    if (right == 0) {
        return high;
    }
    const int32_t mask = (int32_t)((1u << right) - 1u);
    const int32_t remainder = high & mask;
    const int32_t threshold = (mask >> 1) + (high < 0 ? 1 : 0);
    return (high >> right) + (remainder > threshold ? 1 : 0);
}

#endif
