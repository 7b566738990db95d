/*
 * A test model whose only layer faults on purpose, chosen by the first input byte:
 *   0: load from an unmapped address (BusFault, precise, BFAR valid)
 *   1: undefined instruction (UsageFault UNDEFINSTR)
 *   2: unbounded recursion (UsageFault STKOF on v8-M, where the stack limit is set)
 *   other: returns 0
 */
#include "mcd_model.h"

#define UNMAPPED_ADDRESS 0xF0000000u

static int8_t input[4];
static int8_t output[4];

static int32_t recurse(volatile int8_t *p) {
    volatile int8_t frame[64];
    frame[0] = p[0];
    if (frame[0] == 127) {
        return 0;
    }
    return recurse(frame) + frame[1];
}

static int32_t fault_layer(void) {
    switch (input[0]) {
    case 0:
        output[0] = *(volatile int8_t *)(uintptr_t)UNMAPPED_ADDRESS;
        return 0;
    case 1:
        __asm volatile("udf #0");
        return 0;
    case 2:
        return recurse(input);
    default:
        return 0;
    }
}

const uint16_t mcd_num_layers = 1;
const mcd_layer_fn mcd_layers[] = {fault_layer};

const uint8_t mcd_num_inputs = 1;
const mcd_buffer mcd_inputs[] = {{input, sizeof input}};
const uint8_t mcd_num_outputs = 1;
const mcd_buffer mcd_outputs[] = {{output, sizeof output}};

const uint16_t mcd_num_tensors = 0;
const mcd_tensor mcd_tensors[] = {{output, sizeof output}};

const uint8_t mcd_model_hash[8] = {'f', 'a', 'u', 'l', 't', 'm', 'd', 'l'};
const uint32_t mcd_arena_bytes = 0;

int32_t mcd_model_init(void) { return 0; }

void mcd_model_reset(void) {}
