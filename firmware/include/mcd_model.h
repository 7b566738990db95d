/*
 * The contract between the firmware runtime and a generated model (model.c).
 *
 * mcudeploy generates model.c from a network; the runtime (firmware/runtime) only sees this
 * interface. Layers run in order, each a function returning an arm_cmsis_nn_status value
 * (0 is success). Buffers point into the statically planned arena or into persistent state.
 */
#ifndef MCD_MODEL_H
#define MCD_MODEL_H

#include <stdint.h>

/* A byte range of device memory that the host may read or write. */
typedef struct {
    int8_t *data;
    uint32_t size;
} mcd_buffer;

/* A tensor the host may read in dump mode. In a generated model mcd_tensors[i] is layer i's output,
 * valid after running layers 0..i; one computed inside a streamed stage has no storage (size 0). */
typedef struct {
    int8_t *data;
    uint32_t size;
} mcd_tensor;

typedef int32_t (*mcd_layer_fn)(void);

extern const uint16_t mcd_num_layers;
extern const mcd_layer_fn mcd_layers[];

extern const uint8_t mcd_num_inputs;
extern const mcd_buffer mcd_inputs[];
extern const uint8_t mcd_num_outputs;
extern const mcd_buffer mcd_outputs[];

extern const uint16_t mcd_num_tensors;
extern const mcd_tensor mcd_tensors[];

extern const uint8_t mcd_model_hash[8];
extern const uint32_t mcd_arena_bytes;

/* Start-up checks (scratch queries against the plan): 0, or -(i + 1) for the first layer i that
 * would need more scratch than planned. Called once after reset. */
int32_t mcd_model_init(void);

/* Restore the model's persistent state (resource variables) to its initial value. */
void mcd_model_reset(void);

#endif
