/*
 * The contract between the firmware runtime and the model it verifies.
 *
 * The runtime (firmware/runtime) only sees this interface. For a generated model, mcudeploy writes
 * mcd_harness.c beside NAME.c, which implements it on the public API of the model's library
 * (NAME.h): the firmware runs the same NAME.c that `mcudeploy export` ships. Test fixtures
 * (tests/firmware) implement it directly.
 *
 * Layers run in order, each returning an arm_cmsis_nn_status value (0 is success). Buffers point
 * into the model's arena or persistent state.
 */
#ifndef MCD_MODEL_H
#define MCD_MODEL_H

#include <stdint.h>

/* A byte range of device memory that the host may read or write. */
typedef struct {
    int8_t *data;
    uint32_t size;
} mcd_buffer;

extern const uint16_t mcd_num_layers;
extern const uint8_t mcd_num_inputs;
extern const uint8_t mcd_num_outputs;
extern const uint16_t mcd_num_tensors;
extern const uint8_t *const mcd_model_hash; /* 8 bytes */
extern const uint32_t mcd_arena_bytes;

/* Start-up checks (scratch queries against the plan): 0, or -(i + 1) for the first layer i that
 * would need more scratch than planned. Called once after reset. */
int32_t mcd_model_init(void);

/* Restore the model's persistent state (resource variables) to its initial value. */
void mcd_model_reset(void);

/* Runs layer `index` (< mcd_num_layers) on what the layers before it left. */
int32_t mcd_model_layer(uint16_t index);

/* Input `index` (< mcd_num_inputs), written by the host before layer 0 runs. */
mcd_buffer mcd_model_input(uint8_t index);

/* Output `index` (< mcd_num_outputs), valid after the last layer ran. */
mcd_buffer mcd_model_output(uint8_t index);

/* Tensor `index` (< mcd_num_tensors), which the host may read in dump mode: valid right after the
 * layer that produces it ran (the manifest says which). In a generated model tensor i is layer i's
 * output; one computed inside a streamed stage has no storage (NULL, size 0). */
mcd_buffer mcd_model_tensor(uint16_t index);

#endif
