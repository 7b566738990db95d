/* COBS: frames the packets so that 0x00 only ever appears as the delimiter. */
#include "runtime.h"

#define COBS_MAX_RUN 254u

void mcd_cobs_encode(const uint8_t *src, size_t n, void (*put)(uint8_t)) {
    size_t i = 0;
    for (;;) {
        size_t run = 0;
        while (i + run < n && src[i + run] != 0 && run < COBS_MAX_RUN) {
            run++;
        }
        put((uint8_t)(run + 1u));
        for (size_t k = 0; k < run; k++) {
            put(src[i + k]);
        }
        i += run;
        if (i == n) {
            return;
        }
        if (run < COBS_MAX_RUN) {
            i++; /* the zero this block stands for */
        }
    }
}

int32_t mcd_cobs_decode(const uint8_t *src, size_t n, uint8_t *dst) {
    size_t i = 0;
    size_t out = 0;
    while (i < n) {
        uint8_t code = src[i++];
        if (code == 0 || (size_t)(code - 1u) > n - i) {
            return -1;
        }
        for (uint8_t k = 1; k < code; k++) {
            uint8_t byte = src[i++];
            if (byte == 0) {
                return -1;
            }
            dst[out++] = byte;
        }
        if (code <= COBS_MAX_RUN && i < n) {
            dst[out++] = 0;
        }
    }
    return (int32_t)out;
}
