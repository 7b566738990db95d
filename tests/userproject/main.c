/*
 * Two models in one firmware, as their users call them (cnn.h, mean_net.h): fixed inputs, each
 * output printed over semihosting, one line per output ("cnn out0: 12 -128 ...", float outputs
 * as the hexadecimal bits of each value: "mean_net out0 bits: 3f800000 ..."). Then cnn again on an arena of our own
 * (cnn_set_arena), whose output must not change, and the exit status 0.
 */
#include <stdint.h>

#include "cnn.h"
#include "mean_net.h"
#include "semihost.h"

static char line[4096];
static uint32_t used;

static void put(const char *text)
{
    while (*text != '\0' && used + 1u < sizeof line) {
        line[used++] = *text++;
    }
}

static void put_unsigned(uint32_t value, uint32_t base)
{
    char digits[11];
    uint32_t n = 0;
    do {
        digits[n++] = "0123456789abcdef"[value % base];
        value /= base;
    } while (value != 0u);
    char text[12];
    uint32_t k = 0;
    while (n > 0u) {
        text[k++] = digits[--n];
    }
    text[k] = '\0';
    put(text);
}

static void print_int8(const char *label, const int8_t *values, uint32_t count)
{
    used = 0;
    put(label);
    put(":");
    for (uint32_t i = 0; i < count; i++) {
        put(values[i] < 0 ? " -" : " ");
        put_unsigned((uint32_t)(values[i] < 0 ? -values[i] : values[i]), 10u);
    }
    put("\n");
    line[used] = '\0';
    semihost_print(line);
}

static void print_float_bits(const char *label, const float *values, uint32_t count)
{
    used = 0;
    put(label);
    put(":");
    for (uint32_t i = 0; i < count; i++) {
        union {
            float f;
            uint32_t u;
        } bits = {values[i]};
        put(" ");
        put_unsigned(bits.u, 16u);
    }
    put("\n");
    line[used] = '\0';
    semihost_print(line);
}

static int8_t image[CNN_INPUT0_BYTES];
static int8_t scores[CNN_OUTPUT0_BYTES];
static float samples[MEAN_NET_INPUT0_BYTES];
static int8_t samples_q[MEAN_NET_INPUT0_BYTES];
static int8_t features_q[MEAN_NET_OUTPUT0_BYTES];
static float features[MEAN_NET_OUTPUT0_BYTES];
static int8_t pooled[MEAN_NET_OUTPUT1_BYTES];
static int8_t spare_arena[CNN_ARENA_BYTES] __attribute__((aligned(16)));

int main(void)
{
    if (cnn_init() != 0 || mean_net_init() != 0) {
        semihost_print("init failed\n");
        return 1;
    }
    for (uint32_t i = 0; i < CNN_INPUT0_BYTES; i++) {
        image[i] = (int8_t)((int32_t)(((i * 37u + 11u) % 256u) / 4u) - 103);
    }
    for (uint32_t i = 0; i < MEAN_NET_INPUT0_BYTES; i++) {
        samples[i] = (float)((int32_t)((i * 29u + 7u) % 61u) - 30) / 17.0f;
    }

    const int8_t *cnn_in[CNN_INPUT_COUNT] = {image};
    int8_t *cnn_out[CNN_OUTPUT_COUNT] = {scores};
    if (cnn_invoke(cnn_in, cnn_out) != 0) {
        semihost_print("cnn failed\n");
        return 1;
    }
    print_int8("cnn out0", scores, CNN_OUTPUT0_BYTES);

    mean_net_quantize_input0(samples, samples_q);
    const int8_t *mean_in[MEAN_NET_INPUT_COUNT] = {samples_q};
    int8_t *mean_out[MEAN_NET_OUTPUT_COUNT] = {features_q, pooled};
    if (mean_net_invoke(mean_in, mean_out) != 0) {
        semihost_print("mean_net failed\n");
        return 1;
    }
    mean_net_dequantize_output0(features_q, features);
    print_float_bits("mean_net out0 bits", features, MEAN_NET_OUTPUT0_BYTES);
    print_int8("mean_net out1", pooled, MEAN_NET_OUTPUT1_BYTES);

    /* An arena of our own: refused when too small or misaligned, then used. */
    if (cnn_set_arena(spare_arena + 1, sizeof spare_arena - 1u) != CNN_ERROR_ARENA ||
        cnn_set_arena(spare_arena, sizeof spare_arena - 1u) != CNN_ERROR_ARENA ||
        cnn_set_arena(spare_arena, sizeof spare_arena) != 0) {
        semihost_print("cnn_set_arena failed\n");
        return 1;
    }
    for (uint32_t i = 0; i < CNN_OUTPUT0_BYTES; i++) {
        scores[i] = 0;
    }
    if (cnn_invoke(cnn_in, cnn_out) != 0) {
        semihost_print("cnn failed on its new arena\n");
        return 1;
    }
    print_int8("cnn out0 (own arena)", scores, CNN_OUTPUT0_BYTES);
    return 0;
}
