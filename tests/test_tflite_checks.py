"""The flatbuffer checked at import (mcudeploy/frontends/tflite_checks.py) and the refusals of
multipliers TFLite's arithmetic cannot take (mcudeploy/support.py): each damaged file is refused
by `mcudeploy build` with exit status 2, naming the file and the tensor, operator or field."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from fuzz_tflite import BUNDLED, model_of, serialise
from modelgen import GraphBuilder
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb

from mcudeploy import ir
from mcudeploy.cli import main

TINY = BUNDLED.read_bytes()
SOFTMAX_INPUT, FC2_WEIGHTS, FC2_BIAS = 20, 3, 2  # tensor indices in models/tiny_cnn.tflite
INPUT, CONV_WEIGHTS, CONV_OUT = 0, 11, 12


def _mutated(change: Callable[[fb.ModelT], None]) -> bytes:
    model = model_of(TINY)
    change(model)
    return serialise(model)


def _tensor(model: fb.ModelT, index: int) -> fb.TensorT:
    return model.subgraphs[0].tensors[index]


def _build(data: bytes, tmp_path: Path, capsys) -> tuple[int, str, Path]:
    path = tmp_path / "bad.tflite"
    path.write_bytes(data)
    code = main(["build", str(path), "--out", str(tmp_path / "out"), "--quiet"])
    err = " ".join(capsys.readouterr().err.split())
    assert "Traceback" not in err
    assert not list(tmp_path.glob(".out.partial-*")) and not (tmp_path / "out").exists()
    return code, err, path


def _set_scale(index: int, scale: float, zero_point: int | None = None) -> Callable[[fb.ModelT], None]:
    def change(model: fb.ModelT) -> None:
        q = _tensor(model, index).quantization
        q.scale = [scale]
        if zero_point is not None:
            q.zeroPoint = [zero_point]
    return change


def _set(index: int, field: str, value) -> Callable[[fb.ModelT], None]:
    def change(model: fb.ModelT) -> None:
        setattr(_tensor(model, index), field, value)
    return change


def _set_quant(index: int, field: str, value) -> Callable[[fb.ModelT], None]:
    def change(model: fb.ModelT) -> None:
        setattr(_tensor(model, index).quantization, field, value)
    return change


def _set_operator(index: int, field: str, value) -> Callable[[fb.ModelT], None]:
    def change(model: fb.ModelT) -> None:
        setattr(model.subgraphs[0].operators[index], field, value)
    return change


def _set_option(index: int, field: str, value) -> Callable[[fb.ModelT], None]:
    def change(model: fb.ModelT) -> None:
        setattr(model.subgraphs[0].operators[index].builtinOptions, field, value)
    return change


def test_out_of_range_buffer_index_is_refused_naming_the_tensor(tmp_path, capsys) -> None:
    """The tester's file: the input tensor's buffer index past the buffer table. TFLM read out of
    bounds (SIGSEGV, exit 139) after a build that succeeded."""
    code, err, path = _build(_mutated(_set(INPUT, "buffer", 9999)), tmp_path, capsys)
    assert code == 2
    assert f"error: {path}: tensor 0 (serving_default_image:0) refers to buffer 9999, but the model " \
           "has 25 buffers" in err


def test_tiny_softmax_input_scale_is_refused_naming_operator_and_tensor(tmp_path, capsys) -> None:
    """An untrained network's softmax input scale of 7.8e-9: beta x scale x 2^26 < 1, which TFLite
    cannot represent (TFLM aborts in QuantizeMultiplierGreaterThanOne)."""
    def untrained(model: fb.ModelT) -> None:
        """The softmax input scale 7.8e-9, and the fully connected layer before it scaled alike
        (weights and bias), so that it alone computes what it did."""
        factor = 7.8e-9 / float(_tensor(model, SOFTMAX_INPUT).quantization.scale[0])
        for index in (FC2_WEIGHTS, FC2_BIAS, SOFTMAX_INPUT):
            q = _tensor(model, index).quantization
            q.scale = [float(s) * factor for s in q.scale]

    code, err, path = _build(_mutated(untrained), tmp_path, capsys)
    assert code == 2
    assert err.startswith(f"error: {path}: operator 9 (SOFTMAX)")
    assert "beta x input scale x 2^26 is above 1" in err
    assert "input 'tiny_cnn_1/fc2_1/MatMul;tiny_cnn_1/fc2_1/BiasAdd' has scale 7.8e-09" in err


@pytest.mark.parametrize(("change", "expected"), [
    (_set(CONV_WEIGHTS, "buffer", 25), "tensor 11 (tiny_cnn_1/conv_1/convolution) refers to buffer 25"),
    (_set(CONV_OUT, "shape", [1, 12, -1, 8]), "tensor 12 (tiny_cnn_1/conv_1/Relu;"),
    (_set(CONV_OUT, "shape", [1] * 7), "has 7 dimensions; TFLite tensors have at most 6"),
    (_set(CONV_OUT, "shape", [1 << 20, 1 << 20, 8]), "more than 2 GiB"),
    (_set_scale(CONV_OUT, 0.0), "has quantization scale 0.0; scales must be finite and positive"),
    (_set_scale(CONV_OUT, math.nan), "has quantization scale nan"),
    (_set_scale(CONV_OUT, -0.5), "has quantization scale -0.5"),
    (_set_scale(CONV_OUT, math.inf), "has quantization scale inf"),
    (_set_scale(CONV_OUT, 0.1, 300), "has zero point 300, outside [-128, 127] for INT8"),
    (_set_quant(CONV_OUT, "zeroPoint", []), "has 1 quantization scales and 0 zero points"),
    (_set_quant(CONV_WEIGHTS, "quantizedDimension", 4), "tensor 11 (tiny_cnn_1/conv_1/convolution) "
     "is quantized per channel along axis 4, but has 4 dimensions"),
    (_set_quant(CONV_WEIGHTS, "quantizedDimension", 3),
     "has 8 quantization scales for the 1 channels of axis 3"),
    (_set_quant(CONV_WEIGHTS, "scale", [0.01] * 7), "has 7 quantization scales and 8 zero points"),
    (_set_operator(0, "opcodeIndex", 40), "operator 0 has opcode index 40, but the model has"),
    (_set_operator(1, "inputs", [33]), "operator 1 (MAX_POOL_2D): input 0 refers to tensor 33"),
    (_set_operator(1, "outputs", [-1]), "operator 1 (MAX_POOL_2D): output 0 refers to tensor -1"),
    (_set_operator(0, "builtinOptionsType", fb.BuiltinOptions.FullyConnectedOptions),
     "operator 0 (CONV_2D) carries FullyConnectedOptions; it takes Conv2DOptions"),
    (_set_option(0, "padding", 7),
     "operator 0 (CONV_2D): option padding is 7; it must be one of SAME, VALID"),
    (_set_option(9, "beta", math.inf), "operator 9 (SOFTMAX): option beta is inf; it must be finite"),
], ids=["weights_buffer", "negative_dim", "rank7", "huge", "zero_scale", "nan_scale", "negative_scale",
        "inf_scale", "zero_point_300", "no_zero_points", "axis_out_of_range", "axis_wrong_length",
        "scales_and_zero_points", "opcode_index", "input_index", "output_index", "options_type",
        "padding_enum", "beta_inf"])
def test_flatbuffer_fields_out_of_range_are_refused(change, expected, tmp_path, capsys) -> None:
    code, err, path = _build(_mutated(change), tmp_path, capsys)
    assert code == 2
    assert err.startswith(f"error: {path}: ")
    assert expected in err


def test_subgraph_and_schema_fields_are_refused(tmp_path, capsys) -> None:
    def bad_output(model: fb.ModelT) -> None:
        model.subgraphs[0].outputs = [40]

    def version(model: fb.ModelT) -> None:
        model.version = 2

    def past_the_end(model: fb.ModelT) -> None:
        model.buffers[11].data, model.buffers[11].offset, model.buffers[11].size = None, 1 << 20, 72

    def metadata(model: fb.ModelT) -> None:
        entry = fb.MetadataT()
        entry.name, entry.buffer = b"OfflineMemoryAllocation", 70
        model.metadata = [entry]

    for change, expected in ((metadata, "metadata 'OfflineMemoryAllocation' refers to buffer 70"),
                             (bad_output, "model output refers to tensor 40, but the subgraph has 22"),
                             (version, "schema version 2; TFLite files are version 3"),
                             (past_the_end, "buffer 11 lies at bytes 1048576 to 1048648, past the end")):
        code, err, path = _build(_mutated(change), tmp_path, capsys)
        assert (code, err.startswith(f"error: {path}: ")) == (2, True)
        assert expected in err


def test_add_output_multiplier_of_one_or_more_is_refused(tmp_path, capsys) -> None:
    """ADD's output multiplier 2 x max(s1, s2) / (2^20 x s_out) must be below 1 (TFLM aborts in
    QuantizeMultiplierSmallerThanOneExp)."""
    code, err, path = _build(_mutated(_set_scale(16, 1e-7)), tmp_path, capsys)
    assert code == 2
    assert err.startswith(f"error: {path}: operator 4 (ADD)")
    assert "output 'tiny_cnn_1/residual_relu_1/Relu;tiny_cnn_1/residual_1/Add' has scale 1e-07" in err


def test_a_left_shifted_accumulator_that_can_overflow_is_refused(tmp_path, capsys) -> None:
    """A convolution whose output scale is far below input x weight scale: the accumulator is shifted
    left before the multiplication, and past 32 bits TFLM (64-bit on the host) and the device
    (32-bit) part ways. A shift that cannot overflow stays accepted."""
    code, err, path = _build(_mutated(_set_scale(CONV_OUT, 1e-9)), tmp_path, capsys)
    assert code == 2
    assert err.startswith(f"error: {path}: operator 0 (CONV_2D)")
    assert "output channel 0 of 'serving_default_image:0' x 'tiny_cnn_1/conv_1/convolution'" in err
    assert "shifted left by" in err


def test_fully_connected_bias_scale_must_match_input_times_weight(tmp_path, capsys) -> None:
    """TFLite checks |s_in x s_w - s_bias| / s_out <= 0.02 for per-tensor fully connected layers."""
    from cases import build_case

    _, data = build_case("fc_batch3")
    model = model_of(data)
    fc = model.subgraphs[0].operators[0]
    bias = model.subgraphs[0].tensors[fc.inputs[2]].quantization
    bias.scale, bias.zeroPoint = [1.0], [0]
    model.subgraphs[0].tensors[fc.inputs[1]].quantization.scale = [0.01]
    model.subgraphs[0].tensors[fc.inputs[1]].quantization.zeroPoint = [0]
    code, err, path = _build(serialise(model), tmp_path, capsys)
    assert code == 2
    assert err.startswith(f"error: {path}: operator 0 (FULLY_CONNECTED)")
    assert "bias 'b0' has scale 1" in err


@pytest.mark.parametrize(("kind", "scale"), [("logistic", 3e-9), ("logistic", 8.5), ("tanh", 1e-9),
                                           ("tanh", 100.0)])
def test_logistic_and_tanh_input_scales_tflite_cannot_shift_are_refused(kind, scale, tmp_path,
                                                                       capsys) -> None:
    """Below 2^-28 TFLM shifts by a negative amount, from 8 on by 31 bits or more: measured, its
    outputs then differ from the Q4.27 arithmetic by up to 255 (3.8e-9 and 7.9 agree)."""
    b = GraphBuilder(seed=1)
    x = b.input((1, 4, 4, 2))
    b.tensors[x] = replace(b.tensors[x], quant=ir.QuantParams((scale,), (3,)))
    _, data = b.build([getattr(b, kind)(x)], name=kind)
    code, err, path = _build(data, tmp_path, capsys)
    assert code == 2
    assert err.startswith(f"error: {path}: operator 0 ({kind.upper()})")
    assert "The input scale is at least 2^-28 and below 8" in err
    assert f"input 'input' has scale {scale:.6g}" in err


def test_hard_swish_right_shifts_past_15_bits_are_refused(tmp_path, capsys) -> None:
    """TFLite's HARD_SWISH divides 16-bit values by a power of two: measured over scales from
    1e-12 to 1e12, every accepted pair agrees with TFLM, and those needing a right shift of 16 bits
    or more (here input 0.001, output 1.0) differed."""
    b = GraphBuilder(seed=1)
    x = b.input((1, 4, 4, 2))
    b.tensors[x] = replace(b.tensors[x], quant=ir.QuantParams((0.001,), (3,)))
    _, data = b.build([b.hard_swish(x, 1.0, -5)], name="hard_swish")
    code, err, path = _build(data, tmp_path, capsys)
    assert code == 2
    assert err.startswith(f"error: {path}: operator 0 (HARD_SWISH)")
    assert "the output multiplier needs a right shift of 16 bits" in err


def test_an_operator_output_holding_constant_data_is_refused(tmp_path, capsys) -> None:
    """A computed tensor pointed at a constant buffer of the right size: TFLM and the host reference
    disagreed on it (found by scripts/fuzz_tflite.py)."""
    code, err, path = _build(_mutated(_set(CONV_OUT, "buffer", 11)), tmp_path, capsys)
    assert code == 2
    assert err.startswith(f"error: {path}: operator 0 (CONV_2D) computes tensor 12 (")
    assert "which holds constant data (buffer 11)" in err


def _plan_case(name: str, change: Callable[[fb.SubGraphT], None]) -> bytes:
    from cases import build_case

    model = model_of(build_case(name, seed=1)[1])
    change(model.subgraphs[0])
    return serialise(model)


def test_findings_of_the_fuzzer_are_refused_by_name(tmp_path, capsys) -> None:
    """Mutants scripts/fuzz_tflite.py found: three crashed mcudeploy's own checks or reference with
    a traceback (a constant ADD operand quantized per channel, a MAXIMUM whose output is larger than
    its inputs broadcast to, a float output DEQUANTIZEd from a tensor of another shape), one TFLM
    refused (a slice whose output has the right size in another shape)."""
    def per_channel_constant(sub: fb.SubGraphT) -> None:
        q = sub.tensors[0].quantization  # c1 [1, 1, 1, 3], an operand of ADD
        q.scale, q.zeroPoint, q.quantizedDimension = [0.01, 0.02, 0.03], [0, 0, 0], 3

    def scalar_operand(sub: fb.SubGraphT) -> None:
        sub.tensors[8].shape = []  # input3 of MAXIMUM, beside input2 [2, 5, 1, 1]

    def permuted_slice(sub: fb.SubGraphT) -> None:
        sub.tensors[4].shape = [12, 1, 3, 1]  # t0_slice, of [1, 3, 1, 12] as its slice gives

    def reshaping_dequantize(sub: fb.SubGraphT) -> None:
        sub.operators[6].inputs = [9]  # t3_conv2d [2, 7, 5, 4] into the float output [2, 4]

    for case, change, expected in (
        ("add_broadcast_and_constant", per_channel_constant,
         "operator 0 (ADD) (op0_add): not supported: Activations are int8"),
        ("maximum_minimum", scalar_operand,
         "operator 3 (MAXIMUM) (op3_maximum): not supported: Both inputs broadcast to the output"),
        ("float_io_mean", reshaping_dequantize, "operator 6 (DEQUANTIZE) (op6_dequantize): not supported"),
        ("slice_logistic_quantize", permuted_slice,
         "operator 0 (STRIDED_SLICE): output 0 (t0_slice) has shape [12, 1, 3, 1], the slice gives "
         "[1, 3, 1, 12]"),
    ):
        code, err, path = _build(_plan_case(case, change), tmp_path, capsys)
        assert code == 2, err
        assert err.startswith(f"error: {path}: {expected}"), err
