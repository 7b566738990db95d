/* The requests of docs/protocol.md, executed against the model of mcd_model.h. */
#include <string.h>

#include "mcd_model.h"
#include "runtime.h"

#define ALL_LAYERS 0xFFFFu

static int32_t model_init_status;
uint32_t mcd_init_ticks;

typedef struct {
    int8_t *data;
    uint32_t size;
    int writable;
} region;

void mcd_commands_init(int32_t init_status) { model_init_status = init_status; }

static mcd_response reply(uint8_t request, uint16_t len) {
    return (mcd_response){.type = (uint8_t)(request | MCD_RESPONSE), .len = len, .exit_code = -1};
}

static mcd_response error(uint8_t code, uint8_t *out) {
    out[0] = code;
    return (mcd_response){.type = MCD_ERROR, .len = 1, .exit_code = -1};
}

static uint8_t as_region(mcd_buffer buffer, int writable, region *r) {
    *r = (region){buffer.data, buffer.size, writable};
    return 0;
}

/* The buffer named by (space, index): 0, or an error code. */
static uint8_t find_region(uint8_t space, uint16_t index, region *r) {
    switch (space) {
    case MCD_SPACE_INPUT:
        if (index >= mcd_num_inputs) return MCD_ERR_BAD_INDEX;
        return as_region(mcd_model_input((uint8_t)index), 1, r);
    case MCD_SPACE_OUTPUT:
        if (index >= mcd_num_outputs) return MCD_ERR_BAD_INDEX;
        return as_region(mcd_model_output((uint8_t)index), 0, r);
    case MCD_SPACE_TENSOR:
        if (index >= mcd_num_tensors) return MCD_ERR_BAD_INDEX;
        return as_region(mcd_model_tensor(index), 0, r);
    case MCD_SPACE_TICKS:
        if (index == 1) {
            *r = (region){(int8_t *)&mcd_init_ticks, 4u, 0};
            return 0;
        }
        if (index != 0) return MCD_ERR_BAD_INDEX;
        *r = (region){(int8_t *)mcd_layer_ticks,
                      4u * (mcd_num_layers < MCD_MAX_LAYERS ? mcd_num_layers : MCD_MAX_LAYERS), 0};
        return 0;
    default:
        return MCD_ERR_BAD_SPACE;
    }
}

/* Parses "u8 space, u16 index, u32 offset" and checks offset + length against the buffer. */
static uint8_t locate(const uint8_t *body, uint32_t length, region *r, uint32_t *offset) {
    uint8_t err = find_region(body[0], mcd_get16(body + 1), r);
    if (err) return err;
    *offset = mcd_get32(body + 3);
    if (*offset > r->size || length > r->size - *offset) return MCD_ERR_RANGE;
    return 0;
}

static mcd_response cmd_hello(uint8_t *out) {
    mcd_put16(out + 0, MCD_PROTOCOL_VERSION);
    mcd_put16(out + 2, MCD_MAX_CHUNK);
    memcpy(out + 4, mcd_model_hash, 8);
    mcd_put32(out + 12, (uint32_t)model_init_status);
    mcd_put32(out + 16, mcd_arena_bytes);
    mcd_put16(out + 20, mcd_num_layers);
    mcd_put16(out + 22, mcd_num_tensors);
    out[24] = mcd_num_inputs;
    out[25] = mcd_num_outputs;
    mcd_put32(out + 26, MCD_SYSTICK_HZ);
    return reply(MCD_HELLO, 30);
}

static mcd_response cmd_write(const uint8_t *body, size_t len, uint8_t *out) {
    if (len < 7) return error(MCD_ERR_SHORT_BODY, out);
    uint32_t n = (uint32_t)(len - 7);
    if (n > MCD_MAX_CHUNK) return error(MCD_ERR_TOO_LONG, out);
    region r;
    uint32_t offset;
    uint8_t err = locate(body, n, &r, &offset);
    if (err) return error(err, out);
    if (!r.writable) return error(MCD_ERR_READ_ONLY, out);
    memcpy(r.data + offset, body + 7, n);
    return reply(MCD_WRITE, 0);
}

static mcd_response cmd_read(const uint8_t *body, size_t len, uint8_t *out) {
    if (len < 9) return error(MCD_ERR_SHORT_BODY, out);
    uint16_t n = mcd_get16(body + 7);
    if (n > MCD_MAX_CHUNK) return error(MCD_ERR_TOO_LONG, out);
    region r;
    uint32_t offset;
    uint8_t err = locate(body, n, &r, &offset);
    if (err) return error(err, out);
    memcpy(out, r.data + offset, n);
    return reply(MCD_READ, n);
}

static mcd_response cmd_invoke(const uint8_t *body, size_t len, uint8_t *out) {
    if (len < 2) return error(MCD_ERR_SHORT_BODY, out);
    if (mcd_num_layers > MCD_MAX_LAYERS) return error(MCD_ERR_TOO_MANY_LAYERS, out);
    uint16_t stop = mcd_get16(body);
    if (stop == ALL_LAYERS) {
        stop = (uint16_t)(mcd_num_layers - 1u);
    } else if (stop >= mcd_num_layers) {
        return error(MCD_ERR_BAD_INDEX, out);
    }
    mcd_invoke_result result = {.status = 0, .layer = ALL_LAYERS, .ticks = 0};
    if (mcd_num_layers > 0) {
        result = mcd_invoke(stop);
    }
    mcd_put32(out + 0, (uint32_t)result.status);
    mcd_put16(out + 4, result.layer);
    mcd_put32(out + 6, result.ticks);
    return reply(MCD_INVOKE, 10);
}

static mcd_response cmd_stack(uint8_t *out) {
    mcd_put32(out + 0, mcd_stack_bytes());
    mcd_put32(out + 4, mcd_stack_used());
    return reply(MCD_STACK, 8);
}

static mcd_response cmd_exit(const uint8_t *body, size_t len, uint8_t *out) {
    if (len < 1) return error(MCD_ERR_SHORT_BODY, out);
    mcd_response r = reply(MCD_EXIT, 0);
    r.exit_code = body[0];
    return r;
}

static mcd_response execute(uint8_t type, const uint8_t *body, size_t len, uint8_t *out) {
    switch (type) {
    case MCD_HELLO:
        return cmd_hello(out);
    case MCD_WRITE:
        return cmd_write(body, len, out);
    case MCD_INVOKE:
        return cmd_invoke(body, len, out);
    case MCD_READ:
        return cmd_read(body, len, out);
    case MCD_RESET:
        mcd_model_reset();
        return reply(MCD_RESET, 0);
    case MCD_EXIT:
        return cmd_exit(body, len, out);
    case MCD_STACK:
        return cmd_stack(out);
    default:
        return error(MCD_ERR_UNKNOWN_TYPE, out);
    }
}

/* Every request, then the stack's guard: an overflow stops the device before it answers. */
mcd_response mcd_execute(uint8_t type, const uint8_t *body, size_t len, uint8_t *out) {
    mcd_response r = execute(type, body, len, out);
    mcd_stack_check();
    return r;
}
