/*
 * A test model calling nnref's data-movement functions, which mcudeploy's templates do not emit
 * (yet): concatenation along x, y, z and w, pad, transpose, maximum and minimum with broadcasting.
 * tests/test_nnref_device.py computes the same with numpy. One 64-byte input x, one output holding
 * each layer's result one after the other (offsets in OUT_*). CMSIS-NN axes: x fastest, then y,
 * z, w; a [1][2][3][4] tensor is input_w = 1, input_z = 2, input_y = 3, input_x = 4.
 */
#include "arm_nnfunctions.h"
#include "mcd_model.h"

#define IN_BYTES 64u
#define OUT_CAT_X 0u    /* x[0:24] ++ x[24:48] along x: [1][2][3][8]     48 */
#define OUT_CAT_Y 48u   /* x[0:24] ++ x[24:40] along y: [1][2][5][4]     40 */
#define OUT_CAT_Z 88u   /* x[0:24] ++ x[24:36] along z: [1][3][3][4]     36 */
#define OUT_CAT_W 124u  /* x[0:24] ++ x[24:48] along w: [2][2][3][4]     48 */
#define OUT_PAD 172u    /* x[0:24] as NHWC [1,2,3,4] padded to [2,3,5,7] 210 */
#define OUT_TRANS 382u  /* x[0:24] as [2,3,4], perm (2,0,1): [4,2,3]     24 */
#define OUT_MAX 406u    /* max(x[0:24] [1,2,3,4], x[24:28] [1,1,1,4])    24 */
#define OUT_MIN 430u    /* min(x[0:8] [1,2,1,4], x[8:11] [1,1,3,1])      24 */
#define OUT_BYTES 454u

static struct {
    int8_t x[IN_BYTES];
    int8_t out[OUT_BYTES];
} arena __attribute__((section(".arena"), aligned(16)));

static int32_t cat_x(void)
{
    arm_concatenation_s8_x(arena.x, 4, 3, 2, 1, arena.out + OUT_CAT_X, 8, 0);
    arm_concatenation_s8_x(arena.x + 24, 4, 3, 2, 1, arena.out + OUT_CAT_X, 8, 4);
    return ARM_CMSIS_NN_SUCCESS;
}

static int32_t cat_y(void)
{
    arm_concatenation_s8_y(arena.x, 4, 3, 2, 1, arena.out + OUT_CAT_Y, 5, 0);
    arm_concatenation_s8_y(arena.x + 24, 4, 2, 2, 1, arena.out + OUT_CAT_Y, 5, 3);
    return ARM_CMSIS_NN_SUCCESS;
}

static int32_t cat_z(void)
{
    arm_concatenation_s8_z(arena.x, 4, 3, 2, 1, arena.out + OUT_CAT_Z, 3, 0);
    arm_concatenation_s8_z(arena.x + 24, 4, 3, 1, 1, arena.out + OUT_CAT_Z, 3, 2);
    return ARM_CMSIS_NN_SUCCESS;
}

static int32_t cat_w(void)
{
    arm_concatenation_s8_w(arena.x, 4, 3, 2, 1, arena.out + OUT_CAT_W, 0);
    arm_concatenation_s8_w(arena.x + 24, 4, 3, 2, 1, arena.out + OUT_CAT_W, 1);
    return ARM_CMSIS_NN_SUCCESS;
}

static int32_t pad(void)
{
    static const cmsis_nn_dims size = {.n = 1, .h = 2, .w = 3, .c = 4};
    static const cmsis_nn_dims pre = {.n = 0, .h = 1, .w = 0, .c = 2};
    static const cmsis_nn_dims post = {.n = 1, .h = 0, .w = 2, .c = 1};
    return arm_pad_s8(arena.x, arena.out + OUT_PAD, -7, &size, &pre, &post);
}

static int32_t transpose(void)
{
    static const uint32_t perm[3] = {2, 0, 1};
    static const cmsis_nn_transpose_params params = {.num_dims = 3, .permutations = perm};
    static const cmsis_nn_dims in = {.n = 2, .h = 3, .w = 4, .c = 1};
    static const cmsis_nn_dims out = {.n = 4, .h = 2, .w = 3, .c = 1};
    return arm_transpose_s8(arena.x, arena.out + OUT_TRANS, &in, &out, &params);
}

static int32_t maximum(void)
{
    static const cmsis_nn_dims a = {.n = 1, .h = 2, .w = 3, .c = 4};
    static const cmsis_nn_dims b = {.n = 1, .h = 1, .w = 1, .c = 4};
    return arm_maximum_s8(0, arena.x, &a, arena.x + 24, &b, arena.out + OUT_MAX, &a);
}

static int32_t minimum(void)
{
    static const cmsis_nn_dims a = {.n = 1, .h = 2, .w = 1, .c = 4};
    static const cmsis_nn_dims b = {.n = 1, .h = 1, .w = 3, .c = 1};
    static const cmsis_nn_dims out = {.n = 1, .h = 2, .w = 3, .c = 4};
    return arm_minimum_s8(0, arena.x, &a, arena.x + 8, &b, arena.out + OUT_MIN, &out);
}

const uint16_t mcd_num_layers = 8;
const mcd_layer_fn mcd_layers[] = {cat_x, cat_y, cat_z, cat_w, pad, transpose, maximum, minimum};

const uint8_t mcd_num_inputs = 1;
const mcd_buffer mcd_inputs[] = {{arena.x, IN_BYTES}};
const uint8_t mcd_num_outputs = 1;
const mcd_buffer mcd_outputs[] = {{arena.out, OUT_BYTES}};

const uint16_t mcd_num_tensors = 1;
const mcd_tensor mcd_tensors[] = {{arena.out, OUT_BYTES}};

const uint8_t mcd_model_hash[8] = {'n', 'n', 'r', 'e', 'f', 'm', 'o', 'v'};
const uint32_t mcd_arena_bytes = sizeof arena;

int32_t mcd_model_init(void) { return 0; }

void mcd_model_reset(void) {}
