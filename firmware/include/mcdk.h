/*
 * mcdk: the primitives of the kernels mcudeploy generates per layer (mcudeploy/codegen/mcd_kernels.py
 * and the templates mcd_*.c.j2). Written from the arithmetic of TFLite int8 (per-channel Q31
 * multiplier and shift, double rounding) and the instruction sets' manuals; nothing of any NN
 * library's internals.
 *
 * The DSP primitives are the ACLE intrinsics (or the one instruction each stands for) on a CPU with
 * the DSP extension, and portable C with the same result everywhere else, so that a kernel written
 * with them computes the same bits on the host (tests) as on the device.
 *
 * The generated NAME.c includes it (mcudeploy writes it beside NAME.c) after defining
 * mcd_requantize, TFLite's MultiplyByQuantizedMultiplier, which mcdk_requantize_exact calls.
 */
#ifndef MCDK_H
#define MCDK_H

#include <stdint.h>
#include <string.h>

#if defined(__ARM_FEATURE_DSP)
#include <arm_acle.h>
#endif
#if defined(__ARM_FEATURE_MVE)
#include <arm_mve.h>
#else
#include "mcdk_mve_portable.h" /* the host tests run the Helium kernels too */
#endif

#define MCDK_INLINE static inline __attribute__((always_inline))

/* Keeps the compiler from moving loads across it: placed between the steps of an unrolled loop, it
   stops GCC from hoisting every step's loads to the top, which runs out of vector registers and
   spills (QEMU counts instructions, not the latency the hoisting would hide on silicon). */
#define MCDK_STEP() __asm__ volatile("" ::: "memory")

/* Keeps a vector accumulator's running sum as written: GCC would otherwise reassociate a chain of
   vector additions into one that keeps every product alive at once (and spills them). */
#if defined(__ARM_FEATURE_MVE)
#define MCDK_KEEP_VECTOR(acc) __asm__("" : "+w"(acc))
#else
#define MCDK_KEEP_VECTOR(acc) ((void)0)
#endif

/* 32 bits from any address (one LDR: Cortex-M3 and later load unaligned words). */
MCDK_INLINE uint32_t mcdk_read32(const void *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

MCDK_INLINE void mcdk_write32(void *p, uint32_t v)
{
    memcpy(p, &v, 4);
}

#if defined(__ARM_FEATURE_DSP)

/* Bytes 0 and 2 of x, sign-extended into the low and high halfwords. */
MCDK_INLINE uint32_t mcdk_sxtb16(uint32_t x)
{
    return __sxtb16(x);
}

/* Bytes 1 and 3 of x, sign-extended into the low and high halfwords (SXTB16 with ROR #8: GCC does
   not fold the rotation into the instruction by itself). */
MCDK_INLINE uint32_t mcdk_sxtb16_ror8(uint32_t x)
{
    uint32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
}

/* a + the bytes 0 and 2 of x, sign-extended, halfword by halfword. */
MCDK_INLINE uint32_t mcdk_sxtab16(uint32_t a, uint32_t x)
{
    return __sxtab16(a, x);
}

/* a + the bytes 1 and 3 of x, sign-extended, halfword by halfword. */
MCDK_INLINE uint32_t mcdk_sxtab16_ror8(uint32_t a, uint32_t x)
{
    uint32_t r;
    __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(a), "r"(x));
    return r;
}

/* acc + x.lo * y.lo + x.hi * y.hi (signed halfwords). */
MCDK_INLINE int32_t mcdk_smlad(uint32_t x, uint32_t y, int32_t acc)
{
    return __smlad(x, y, acc);
}

MCDK_INLINE int32_t mcdk_smlabb(uint32_t x, uint32_t y, int32_t acc)
{
    return __smlabb(x, y, acc);
}

MCDK_INLINE int32_t mcdk_smlatt(uint32_t x, uint32_t y, int32_t acc)
{
    return __smlatt(x, y, acc);
}

MCDK_INLINE int32_t mcdk_smlabt(uint32_t x, uint32_t y, int32_t acc)
{
    return __smlabt(x, y, acc);
}

/* Halfword by halfword a + b, wrapping. */
MCDK_INLINE uint32_t mcdk_sadd16(uint32_t a, uint32_t b)
{
    return __sadd16(a, b);
}

/* k + ((a * b + 2^31) >> 32): the high word of the product, rounded, plus k (SMMLAR). */
MCDK_INLINE int32_t mcdk_smmlar(int32_t a, int32_t b, int32_t k)
{
    int32_t r;
    __asm__("smmlar %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(k));
    return r;
}

/* x saturated to [-128, 127]. */
MCDK_INLINE int32_t mcdk_ssat8(int32_t x)
{
    return __ssat(x, 8);
}

#else /* the same results in portable C */

MCDK_INLINE uint32_t mcdk_halves(int32_t lo, int32_t hi)
{
    return ((uint32_t)lo & 0xFFFFu) | ((uint32_t)hi << 16);
}

MCDK_INLINE int32_t mcdk_lo(uint32_t x)
{
    return (int16_t)(x & 0xFFFFu);
}

MCDK_INLINE int32_t mcdk_hi(uint32_t x)
{
    return (int16_t)(x >> 16);
}

MCDK_INLINE uint32_t mcdk_sxtb16(uint32_t x)
{
    return mcdk_halves((int8_t)(x & 0xFFu), (int8_t)((x >> 16) & 0xFFu));
}

MCDK_INLINE uint32_t mcdk_sxtb16_ror8(uint32_t x)
{
    return mcdk_sxtb16((x >> 8) | (x << 24));
}

MCDK_INLINE uint32_t mcdk_sadd16(uint32_t a, uint32_t b)
{
    return mcdk_halves(mcdk_lo(a) + mcdk_lo(b), mcdk_hi(a) + mcdk_hi(b));
}

MCDK_INLINE uint32_t mcdk_sxtab16(uint32_t a, uint32_t x)
{
    return mcdk_sadd16(a, mcdk_sxtb16(x));
}

MCDK_INLINE uint32_t mcdk_sxtab16_ror8(uint32_t a, uint32_t x)
{
    return mcdk_sadd16(a, mcdk_sxtb16_ror8(x));
}

MCDK_INLINE int32_t mcdk_smlad(uint32_t x, uint32_t y, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(mcdk_lo(x) * mcdk_lo(y)) + (uint32_t)(mcdk_hi(x) * mcdk_hi(y)));
}

MCDK_INLINE int32_t mcdk_smlabb(uint32_t x, uint32_t y, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(mcdk_lo(x) * mcdk_lo(y)));
}

MCDK_INLINE int32_t mcdk_smlatt(uint32_t x, uint32_t y, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(mcdk_hi(x) * mcdk_hi(y)));
}

MCDK_INLINE int32_t mcdk_smlabt(uint32_t x, uint32_t y, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(mcdk_lo(x) * mcdk_hi(y)));
}

MCDK_INLINE int32_t mcdk_smmlar(int32_t a, int32_t b, int32_t k)
{
    return (int32_t)((uint32_t)k + (uint32_t)(int32_t)(((int64_t)a * b + 0x80000000LL) >> 32));
}

MCDK_INLINE int32_t mcdk_ssat8(int32_t x)
{
    return x < -128 ? -128 : (x > 127 ? 127 : x);
}

#endif

/*
 * Requantization where the generator proved that nothing overflows (mcd_kernels.py,
 * `plan_requant`): acc2 is twice the accumulator, |acc2| < 2^31; the shift is a right shift,
 * right >= 1; 2^30 <= m < 2^31; k = 2^(right - 1) + (output_offset << right).
 *   SMMLAR(acc2, m, k) = q + k, q = (acc * m + 2^30) >> 31: TFLite's rounding doubling high
 *   multiply;
 *   (q + (q < 0 ? -1 : 0) + 2^(right - 1)) >> right divides q by 2^right rounding half away from
 *   zero, and adding output_offset << right before the shift adds output_offset after it.
 *   With m >= 2^30, q < 0 only if acc < 0, and when acc < 0 but q = 0 the -1 changes nothing
 *   ((2^(right - 1) - 1) >> right = 0): so the sign of acc2 stands in for the sign of q.
 * The result is saturated to int8; the caller applies a narrower activation range.
 */
MCDK_INLINE int32_t mcdk_requantize_fast(int32_t acc2, int32_t m, int32_t k, int32_t right)
{
    return mcdk_ssat8((mcdk_smmlar(acc2, m, k) + (acc2 >> 31)) >> right);
}

/* The exact TFLite requantization for any accumulator, plus the output offset, saturated to int8. */
MCDK_INLINE int32_t mcdk_requantize_exact(int32_t acc, int32_t m, int32_t shift, int32_t offset)
{
    const int32_t y = mcd_requantize(acc, m, shift) + offset;
    return y < -128 ? -128 : (y > 127 ? 127 : y);
}

/*
 * Four lanes at once, exactly: VQRDMULH is the rounding doubling high multiply (saturating, as
 * TFLite's); for the division by 2^right, a negative lane whose right shift is not 0 gets -1
 * (saturating) before VRSHL's rounding shift by -right, which turns its round-half-up into
 * round-half-away-from-zero. `neg_right` holds -right (<= 0) per lane.
 */
MCDK_INLINE int32x4_t mcdk_requantize_mve(int32x4_t acc, int32x4_t m, int32x4_t neg_right)
{
    const int32x4_t q = vqrdmulhq_s32(acc, m);
    const int32x4_t fixup = vshrq_n_s32(vandq_s32(q, neg_right), 31);
    return vrshlq_s32(vqaddq_s32(q, fixup), neg_right);
}

/* q / 2^right rounded half away from zero, every lane, for a constant right >= 1 (q > INT32_MIN). */
MCDK_INLINE int32x4_t mcdk_divide_mve(int32x4_t q, int32_t right)
{
    return vrshlq_n_s32(vaddq_s32(q, vshrq_n_s32(q, 31)), -right);
}

#endif
