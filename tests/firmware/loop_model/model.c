/*
 * A test model for timing (tests/test_device_boards.py), without CMSIS-NN: one layer that runs a
 * two-instruction loop (subs, bne) as many times as the little-endian u32 input says. Under QEMU's
 * -icount shift=0 the difference in SysTick ticks between two counts gives the instructions per
 * tick exactly, whatever the call overhead.
 */
#include "mcd_model.h"

static struct {
    uint32_t count;
    uint32_t done;
} arena __attribute__((section(".arena"), aligned(16)));

static int32_t spin(void) {
    uint32_t n = arena.count;
    if (n != 0u) {
        __asm volatile("1: subs %0, #1\n\tbne 1b" : "+r"(n) : : "cc");
    }
    arena.done = arena.count;
    return 0;
}

const uint16_t mcd_num_layers = 1;
static int32_t (*const layers[])(void) = {spin};

const uint8_t mcd_num_inputs = 1;
static const mcd_buffer inputs[] = {{(int8_t *)&arena.count, 4}};
const uint8_t mcd_num_outputs = 1;
static const mcd_buffer outputs[] = {{(int8_t *)&arena.done, 4}};

const uint16_t mcd_num_tensors = 0;
static const mcd_buffer tensors[1];

static const uint8_t hash[8] = {'l', 'o', 'o', 'p', 'm', 'd', 'l', '1'};
const uint8_t *const mcd_model_hash = hash;
const uint32_t mcd_arena_bytes = sizeof arena;

int32_t mcd_model_init(void) { return 0; }

void mcd_model_reset(void) {}

#include "../fixture_model.h"
