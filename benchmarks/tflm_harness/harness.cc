// One TFLM inference measured on the device, reported on the semihosting console as
// `tflm <key> <value>` lines (scripts/tflm_device.py reads them):
//   startup_ticks        constructing the op resolver and the interpreter, then AllocateTensors
//   invoke_ticks         one Invoke of the input in model_data.cc
//   arena_used           arena_used_bytes() after AllocateTensors
//   stack_startup        stack high-water mark during the start-up, bytes from the top
//   stack_invoke         the same during Invoke
//   output <i> <hex>     each output tensor's bytes
//   min_arena            the smallest arena size AllocateTensors accepts (bisected, each try with a
//                        fresh interpreter); min_arena_output says whether Invoke with it gives the
//                        same output bytes
// The generated model_data.cc holds the model, the input and the ops (HARNESS_ADD_OPS).
#include <new>

#include "harness.h"
#include "model_data.h"
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"

namespace {

using Resolver = tflite::MicroMutableOpResolver<HARNESS_OP_COUNT>;

alignas(16) uint8_t arena[HARNESS_ARENA_BYTES] __attribute__((section(".arena")));
alignas(Resolver) uint8_t resolver_storage[sizeof(Resolver)];
alignas(tflite::MicroInterpreter) uint8_t interpreter_storage[sizeof(tflite::MicroInterpreter)];
// The harness's own buffers, outside .bss so that TFLM's static RAM is counted without them.
uint8_t first_output[HARNESS_OUTPUT_BYTES] __attribute__((section(".harness_bss")));
uint8_t min_arena_output[HARNESS_OUTPUT_BYTES] __attribute__((section(".harness_bss")));

void put_line(const char* key, uint64_t value) {
  harness_puts("tflm ");
  harness_puts(key);
  harness_puts(" ");
  harness_put_u64(value);
  harness_puts("\n");
}

[[noreturn]] void fail(const char* what) {
  harness_puts("tflm error ");
  harness_puts(what);
  harness_puts("\n");
  harness_exit(1);
}

Resolver* make_resolver() {
  Resolver* resolver = new (resolver_storage) Resolver();
  HARNESS_ADD_OPS(resolver);
  return resolver;
}

tflite::MicroInterpreter* make_interpreter(const Resolver& resolver, size_t arena_bytes) {
  return new (interpreter_storage) tflite::MicroInterpreter(tflite::GetModel(harness_model), resolver,
                                                            arena, arena_bytes);
}

bool set_inputs(tflite::MicroInterpreter* interpreter) {
  if (interpreter->inputs_size() != HARNESS_INPUTS) return false;
  const uint8_t* data = harness_input;
  for (size_t i = 0; i < interpreter->inputs_size(); i++) {
    TfLiteTensor* tensor = interpreter->input(i);
    if (tensor->bytes != harness_input_bytes[i]) return false;
    for (size_t k = 0; k < tensor->bytes; k++) tensor->data.uint8[k] = data[k];
    data += tensor->bytes;
  }
  return true;
}

// Copies every output, in order, into `out`; false if they do not fill HARNESS_OUTPUT_BYTES.
bool get_outputs(tflite::MicroInterpreter* interpreter, uint8_t* out) {
  size_t used = 0;
  for (size_t i = 0; i < interpreter->outputs_size(); i++) {
    const TfLiteTensor* tensor = interpreter->output(i);
    if (used + tensor->bytes > HARNESS_OUTPUT_BYTES) return false;
    for (size_t k = 0; k < tensor->bytes; k++) out[used + k] = tensor->data.uint8[k];
    used += tensor->bytes;
  }
  return used == HARNESS_OUTPUT_BYTES;
}

bool allocates(const Resolver& resolver, size_t arena_bytes) {
  tflite::MicroInterpreter* interpreter = make_interpreter(resolver, arena_bytes);
  bool ok = interpreter->AllocateTensors() == kTfLiteOk;
  interpreter->~MicroInterpreter();
  return ok;
}

}  // namespace

int main() {
  harness_ticks_init();

  harness_stack_paint(16);
  uint64_t start = harness_ticks();
  Resolver* resolver = make_resolver();
  tflite::MicroInterpreter* interpreter = make_interpreter(*resolver, HARNESS_ARENA_BYTES);
  TfLiteStatus allocated = interpreter->AllocateTensors();
  uint64_t startup = harness_ticks() - start;
  uint32_t stack_startup = harness_stack_peak();
  if (allocated != kTfLiteOk) fail("AllocateTensors failed with the whole arena");
  if (!set_inputs(interpreter)) fail("the input tensors differ from model_data.cc's");

  harness_stack_paint(16);
  start = harness_ticks();
  TfLiteStatus invoked = interpreter->Invoke();
  uint64_t invoke = harness_ticks() - start;
  uint32_t stack_invoke = harness_stack_peak();
  if (invoked != kTfLiteOk) fail("Invoke failed");
  if (!get_outputs(interpreter, first_output)) fail("the output tensors differ from model_data.cc's");

  put_line("startup_ticks", startup);
  put_line("invoke_ticks", invoke);
  put_line("arena_used", interpreter->arena_used_bytes());
  put_line("arena_given", HARNESS_ARENA_BYTES);
  put_line("stack_startup", stack_startup);
  put_line("stack_invoke", stack_invoke);
  put_line("stack_size", harness_stack_size());
  size_t offset = 0;
  for (size_t i = 0; i < interpreter->outputs_size(); i++) {
    harness_puts("tflm output ");
    harness_put_u64(i);
    harness_puts(" ");
    harness_put_hex(first_output + offset, interpreter->output(i)->bytes);
    harness_puts("\n");
    offset += interpreter->output(i)->bytes;
  }
  interpreter->~MicroInterpreter();

  // The smallest arena AllocateTensors accepts: it accepts `high` and refuses `low`.
  size_t low = 0, high = HARNESS_ARENA_BYTES;
  while (high - low > 1) {
    size_t middle = low + (high - low) / 2;
    if (allocates(*resolver, middle)) {
      high = middle;
    } else {
      low = middle;
    }
  }
  put_line("min_arena", high);
  interpreter = make_interpreter(*resolver, high);
  bool same = interpreter->AllocateTensors() == kTfLiteOk && set_inputs(interpreter) &&
              interpreter->Invoke() == kTfLiteOk && get_outputs(interpreter, min_arena_output);
  for (size_t k = 0; same && k < HARNESS_OUTPUT_BYTES; k++) same = min_arena_output[k] == first_output[k];
  put_line("min_arena_output_same", same ? 1 : 0);
  harness_puts("tflm done\n");
  return 0;
}
