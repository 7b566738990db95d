/*
 * A test model for the runtime, without CMSIS-NN (tests/runtime_firmware.py knows its
 * arithmetic). One 300-byte input, two layers, two outputs:
 *   layer 0: t[i] = input[i] + step[i % 16]         step = 1..16, in .weights
 *   layer 1: out0[i] = t[299 - i] ^ mask             mask = 0x5A, in .data
 *            out1 = the number of times layer 1 ran since the last reset (u32, persistent state)
 * Layer 0 returns -1 (ARM_CMSIS_NN_ARG_ERROR) when the input starts with "FAIL", and first
 * counts to the little-endian u32 in input[4..8) when it starts with "SLOW" (a long layer).
 * Tensors: 0 = t (producer 0), 1 = out0 (producer 1).
 */
#include <string.h>

#include "mcd_model.h"

#define SIZE 300u

static const int8_t step[16] __attribute__((section(".weights"), aligned(16))) = {
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
};
static volatile int8_t mask = 0x5A;
static uint32_t invocations;

static struct {
    int8_t input[SIZE];
    int8_t t[SIZE];
    int8_t out[SIZE];
} arena __attribute__((section(".arena"), aligned(16)));

static int32_t add_step(void) {
    if (memcmp(arena.input, "FAIL", 4) == 0) {
        return -1;
    }
    if (memcmp(arena.input, "SLOW", 4) == 0) {
        uint32_t n;
        memcpy(&n, arena.input + 4, sizeof n);
        for (volatile uint32_t i = 0; i < n; i++) {
        }
    }
    for (uint32_t i = 0; i < SIZE; i++) {
        arena.t[i] = (int8_t)(arena.input[i] + step[i % 16u]);
    }
    return 0;
}

static int32_t reverse(void) {
    for (uint32_t i = 0; i < SIZE; i++) {
        arena.out[i] = (int8_t)(arena.t[SIZE - 1u - i] ^ mask);
    }
    invocations++;
    return 0;
}

const uint16_t mcd_num_layers = 2;
const mcd_layer_fn mcd_layers[] = {add_step, reverse};

const uint8_t mcd_num_inputs = 1;
const mcd_buffer mcd_inputs[] = {{arena.input, SIZE}};
const uint8_t mcd_num_outputs = 2;
const mcd_buffer mcd_outputs[] = {{arena.out, SIZE}, {(int8_t *)&invocations, 4}};

const uint16_t mcd_num_tensors = 2;
const mcd_tensor mcd_tensors[] = {{arena.t, SIZE, 0}, {arena.out, SIZE, 1}};

const uint8_t mcd_model_hash[8] = {'e', 'c', 'h', 'o', 'm', 'd', 'l', '1'};
const uint32_t mcd_arena_bytes = sizeof arena;

int32_t mcd_model_init(void) { return 0; }

void mcd_model_reset(void) { invocations = 0; }
