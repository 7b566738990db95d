/*
 * The test fixtures' models (the model.c of each tests/firmware folder) describe themselves by
 * static tables: layers, inputs, outputs and tensors. Included at the end of a fixture's model.c,
 * this implements firmware/include/mcd_model.h's functions on those tables.
 */
#ifndef FIXTURE_MODEL_H
#define FIXTURE_MODEL_H

int32_t mcd_model_layer(uint16_t index) { return layers[index](); }

mcd_buffer mcd_model_input(uint8_t index) { return inputs[index]; }

mcd_buffer mcd_model_output(uint8_t index) { return outputs[index]; }

mcd_buffer mcd_model_tensor(uint16_t index) { return tensors[index]; }

#endif
