// One TFLM inference measured on the device, reported on the semihosting console as
// `tflm <key> <value>` lines (scripts/tflm_device.py reads them), then `tflm done`:
//   startup_ticks      constructing the op resolver and the interpreter, then AllocateTensors
//   invoke_ticks       one Invoke of the input in model_data.cc
//   arena_used         arena_used_bytes() after AllocateTensors
//   stack_startup      the stack's high-water mark during the start-up, bytes from its top
//   stack_invoke       the same during Invoke
//   output <i> <hex>   each output tensor's bytes
// With `arena=N` on the semihosting command line it only tries an arena of N bytes:
//   accepted 0|1       whether AllocateTensors returned kTfLiteOk; if it did, Invoke's outputs follow
// (the script bisects the smallest accepted arena with one run per try, since with some sizes
// AllocateTensors faults instead of failing).
// The generated model_data.cc holds the model, the input and the registrations (HARNESS_ADD_OPS).
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

void put_line(const char* key, uint64_t value) {
  harness_puts("tflm ");
  harness_puts(key);
  harness_puts(" ");
  harness_put_u64(value);
  harness_puts("\n");
}

int fail(const char* what) {
  harness_puts("tflm error ");
  harness_puts(what);
  harness_puts("\n");
  return 1;
}

tflite::MicroInterpreter* make_interpreter(size_t arena_bytes) {
  Resolver* resolver = new (resolver_storage) Resolver();
  HARNESS_ADD_OPS(resolver);
  return new (interpreter_storage) tflite::MicroInterpreter(tflite::GetModel(harness_model), *resolver,
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

void put_outputs(tflite::MicroInterpreter* interpreter) {
  for (size_t i = 0; i < interpreter->outputs_size(); i++) {
    const TfLiteTensor* tensor = interpreter->output(i);
    harness_puts("tflm output ");
    harness_put_u64(i);
    harness_puts(" ");
    harness_put_hex(tensor->data.uint8, tensor->bytes);
    harness_puts("\n");
  }
}

int try_arena(size_t arena_bytes) {
  if (arena_bytes > HARNESS_ARENA_BYTES) return fail("arena= exceeds the harness's arena");
  tflite::MicroInterpreter* interpreter = make_interpreter(arena_bytes);
  bool accepted = interpreter->AllocateTensors() == kTfLiteOk;
  put_line("accepted", accepted ? 1 : 0);
  if (accepted) {
    if (!set_inputs(interpreter)) return fail("the input tensors differ from model_data.cc's");
    if (interpreter->Invoke() != kTfLiteOk) return fail("Invoke failed");
    put_outputs(interpreter);
  }
  harness_puts("tflm done\n");
  return 0;
}

}  // namespace

int main() {
  harness_ticks_init();
  uint32_t arena_argument = harness_arena_argument();
  if (arena_argument != 0) return try_arena(arena_argument);

  harness_stack_paint(16);
  uint64_t start = harness_ticks();
  tflite::MicroInterpreter* interpreter = make_interpreter(HARNESS_ARENA_BYTES);
  TfLiteStatus allocated = interpreter->AllocateTensors();
  uint64_t startup = harness_ticks() - start;
  uint32_t stack_startup = harness_stack_peak();
  if (allocated != kTfLiteOk) return fail("AllocateTensors failed with the whole arena");
  if (!set_inputs(interpreter)) return fail("the input tensors differ from model_data.cc's");

  harness_stack_paint(16);
  start = harness_ticks();
  TfLiteStatus invoked = interpreter->Invoke();
  uint64_t invoke = harness_ticks() - start;
  uint32_t stack_invoke = harness_stack_peak();
  if (invoked != kTfLiteOk) return fail("Invoke failed");

  put_line("startup_ticks", startup);
  put_line("invoke_ticks", invoke);
  put_line("arena_used", interpreter->arena_used_bytes());
  put_line("arena_given", HARNESS_ARENA_BYTES);
  put_line("stack_startup", stack_startup);
  put_line("stack_invoke", stack_invoke);
  put_line("stack_size", harness_stack_size());
  put_outputs(interpreter);
  harness_puts("tflm done\n");
  return 0;
}
