/* memcpy and memset for the whole image (runtime, NN library, model): word-wise when aligned, bytes
 * otherwise. newlib-nano's are 400 bytes together; these are about 100. The runtime group is built
 * with -fno-tree-loop-distribute-patterns, so GCC does not turn these loops back into calls. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef uint32_t __attribute__((may_alias)) mcd_word;

void *memcpy(void *restrict dst, const void *restrict src, size_t n) {
    uint8_t *d = dst;
    const uint8_t *s = src;
    if ((((uintptr_t)d | (uintptr_t)s) & 3u) == 0) {
        for (; n >= 4u; n -= 4u, d += 4, s += 4) {
            *(mcd_word *)d = *(const mcd_word *)s;
        }
    }
    while (n-- > 0u) {
        *d++ = *s++;
    }
    return dst;
}

void *memset(void *dst, int value, size_t n) {
    uint8_t *d = dst;
    if (((uintptr_t)d & 3u) == 0) {
        const uint32_t word = 0x01010101u * (uint8_t)value;
        for (; n >= 4u; n -= 4u, d += 4) {
            *(mcd_word *)d = word;
        }
    }
    while (n-- > 0u) {
        *d++ = (uint8_t)value;
    }
    return dst;
}
