/*
 * The Helium (MVE) intrinsics the generated kernels use, in portable C, for compilers that do not
 * target Helium: the host, where the tests compile a model for the Cortex-M55 and run it (mcdk.h
 * includes this instead of arm_mve.h). Each function gives the result the Armv8.1-M architecture
 * defines for its instruction: wrapping arithmetic, the saturation of VQADD and VQRDMULH, the
 * rounding of VRSHL, shifts taken from the bottom byte of each lane, predicated loads that leave
 * inactive lanes zero and predicated stores that skip them. Only what the kernels call is here.
 */
#ifndef MCDK_MVE_PORTABLE_H
#define MCDK_MVE_PORTABLE_H

#include <stdint.h>

typedef struct {
    int8_t lane[16];
} int8x16_t;

typedef struct {
    int16_t lane[8];
} int16x8_t;

typedef struct {
    int32_t lane[4];
} int32x4_t;

typedef struct {
    uint32_t lane[4];
} uint32x4_t;

typedef uint16_t mve_pred16_t; /* one bit per byte of the vector */

#define MCDK_P static inline

MCDK_P int32_t mcdk_p_wrap(int64_t x)
{
    return (int32_t)(uint32_t)(uint64_t)x;
}

MCDK_P int32_t mcdk_p_saturate(int64_t x)
{
    return x > INT32_MAX ? INT32_MAX : (x < INT32_MIN ? INT32_MIN : (int32_t)x);
}

/* a shifted by the signed bottom byte of `by`: left (wrapping) or right, rounded if `rounding`. */
MCDK_P int32_t mcdk_p_shift(int32_t a, int32_t by, int rounding)
{
    const int32_t n = (int8_t)(by & 0xFF);
    if (n >= 0) {
        return n >= 32 ? 0 : (int32_t)((uint32_t)a << n);
    }
    const int32_t r = -n > 63 ? 63 : -n;
    const int64_t round = rounding ? ((int64_t)1 << (r - 1)) : 0;
    return (int32_t)(((int64_t)a + round) >> r);
}

MCDK_P mve_pred16_t vctp8q(uint32_t n)
{
    return n >= 16 ? 0xFFFFu : (mve_pred16_t)((1u << n) - 1u);
}

MCDK_P mve_pred16_t vctp32q(uint32_t n)
{
    return n >= 4 ? 0xFFFFu : (mve_pred16_t)((1u << (4 * n)) - 1u);
}

MCDK_P int8x16_t vldrbq_s8(const int8_t *p)
{
    int8x16_t v;
    for (int i = 0; i < 16; i++) {
        v.lane[i] = p[i];
    }
    return v;
}

MCDK_P int8x16_t vldrbq_z_s8(const int8_t *p, mve_pred16_t pred)
{
    int8x16_t v;
    for (int i = 0; i < 16; i++) {
        v.lane[i] = (pred >> i) & 1u ? p[i] : 0;
    }
    return v;
}

MCDK_P int16x8_t vldrbq_s16(const int8_t *p)
{
    int16x8_t v;
    for (int i = 0; i < 8; i++) {
        v.lane[i] = p[i];
    }
    return v;
}

MCDK_P int32x4_t vldrbq_z_s32(const int8_t *p, mve_pred16_t pred)
{
    int32x4_t v;
    for (int i = 0; i < 4; i++) {
        v.lane[i] = (pred >> (4 * i)) & 1u ? p[i] : 0;
    }
    return v;
}

MCDK_P int32x4_t vldrwq_s32(const int32_t *p)
{
    int32x4_t v;
    for (int i = 0; i < 4; i++) {
        v.lane[i] = p[i];
    }
    return v;
}

MCDK_P void vstrbq_p_s8(int8_t *p, int8x16_t v, mve_pred16_t pred)
{
    for (int i = 0; i < 16; i++) {
        if ((pred >> i) & 1u) {
            p[i] = v.lane[i];
        }
    }
}

MCDK_P void vstrbq_p_s32(int8_t *p, int32x4_t v, mve_pred16_t pred)
{
    for (int i = 0; i < 4; i++) {
        if ((pred >> (4 * i)) & 1u) {
            p[i] = (int8_t)v.lane[i];
        }
    }
}

MCDK_P void vstrbq_s32(int8_t *p, int32x4_t v)
{
    vstrbq_p_s32(p, v, 0xFFFFu);
}

MCDK_P void vstrbq_scatter_offset_s32(int8_t *base, uint32x4_t offsets, int32x4_t v)
{
    for (int i = 0; i < 4; i++) {
        base[offsets.lane[i]] = (int8_t)v.lane[i];
    }
}

MCDK_P int32_t vmladavaq_s8(int32_t acc, int8x16_t a, int8x16_t b)
{
    int64_t sum = acc;
    for (int i = 0; i < 16; i++) {
        sum += a.lane[i] * b.lane[i];
    }
    return mcdk_p_wrap(sum);
}

MCDK_P int32_t vmladavaq_s16(int32_t acc, int16x8_t a, int16x8_t b)
{
    int64_t sum = acc;
    for (int i = 0; i < 8; i++) {
        sum += (int32_t)a.lane[i] * b.lane[i];
    }
    return mcdk_p_wrap(sum);
}

MCDK_P int32x4_t vmullbq_int_s16(int16x8_t a, int16x8_t b)
{
    int32x4_t v;
    for (int i = 0; i < 4; i++) {
        v.lane[i] = (int32_t)a.lane[2 * i] * b.lane[2 * i];
    }
    return v;
}

MCDK_P int32x4_t vmulltq_int_s16(int16x8_t a, int16x8_t b)
{
    int32x4_t v;
    for (int i = 0; i < 4; i++) {
        v.lane[i] = (int32_t)a.lane[2 * i + 1] * b.lane[2 * i + 1];
    }
    return v;
}

MCDK_P int32x4_t vdupq_n_s32(int32_t x)
{
    const int32x4_t v = {{x, x, x, x}};
    return v;
}

MCDK_P int32x4_t vsetq_lane_s32(int32_t x, int32x4_t v, int lane)
{
    v.lane[lane] = x;
    return v;
}

MCDK_P uint32x4_t vidupq_n_u32(uint32_t start, uint32_t step)
{
    const uint32x4_t v = {{start, start + step, start + 2 * step, start + 3 * step}};
    return v;
}

MCDK_P uint32x4_t vmulq_n_u32(uint32x4_t a, uint32_t b)
{
    for (int i = 0; i < 4; i++) {
        a.lane[i] *= b;
    }
    return a;
}

/* The element-wise operations on four int32 lanes. */
#define MCDK_P_LANES(name, expr)                                                                    \
    MCDK_P int32x4_t name(int32x4_t a, int32x4_t b)                                                 \
    {                                                                                               \
        int32x4_t v;                                                                                \
        for (int i = 0; i < 4; i++) {                                                               \
            const int64_t x = a.lane[i], y = b.lane[i];                                             \
            (void)y;                                                                                \
            v.lane[i] = (expr);                                                                     \
        }                                                                                           \
        return v;                                                                                   \
    }

MCDK_P_LANES(vaddq_s32, mcdk_p_wrap(x + y))
MCDK_P_LANES(vqaddq_s32, mcdk_p_saturate(x + y))
MCDK_P_LANES(vandq_s32, (int32_t)(x & y))
MCDK_P_LANES(vmaxq_s32, (int32_t)(x > y ? x : y))
MCDK_P_LANES(vminq_s32, (int32_t)(x < y ? x : y))
MCDK_P_LANES(vqrdmulhq_s32, mcdk_p_saturate((2 * x * y + ((int64_t)1 << 31)) >> 32))
MCDK_P_LANES(vshlq_s32, mcdk_p_shift((int32_t)x, (int32_t)y, 0))
MCDK_P_LANES(vrshlq_s32, mcdk_p_shift((int32_t)x, (int32_t)y, 1))

MCDK_P int32x4_t vaddq_n_s32(int32x4_t a, int32_t b)
{
    return vaddq_s32(a, vdupq_n_s32(b));
}

MCDK_P int32x4_t vqrdmulhq_n_s32(int32x4_t a, int32_t b)
{
    return vqrdmulhq_s32(a, vdupq_n_s32(b));
}

MCDK_P int32x4_t vrshlq_n_s32(int32x4_t a, int32_t b)
{
    return vrshlq_s32(a, vdupq_n_s32(b));
}

MCDK_P int32x4_t vshlq_n_s32(int32x4_t a, int imm)
{
    return vshlq_s32(a, vdupq_n_s32(imm));
}

MCDK_P int32x4_t vshrq_n_s32(int32x4_t a, int imm)
{
    for (int i = 0; i < 4; i++) {
        a.lane[i] >>= imm;
    }
    return a;
}

/* Qda * Qn + Rm, wrapping (VMLAS). */
MCDK_P int32x4_t vmlasq_n_s32(int32x4_t a, int32x4_t b, int32_t c)
{
    for (int i = 0; i < 4; i++) {
        a.lane[i] = mcdk_p_wrap((int64_t)a.lane[i] * b.lane[i] + c);
    }
    return a;
}

#undef MCDK_P_LANES
#undef MCDK_P

#endif
