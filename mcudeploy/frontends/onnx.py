"""Float ONNX → float IR (NHWC), ready for quantization.

Channels-first tensors become channels-last here, through `Layout`, and weights are re-laid once:
Conv OIHW → OHWI, depthwise (group == C_in) → [1, KH, KW, C_out], Gemm/MatMul → [N, K] with the
columns permuted when they read a flattened NCHW tensor. BatchNormalization is folded into the
convolution before it (or becomes a 1x1 depthwise convolution), ReLU/Clip are fused into their
producer, a MatMul followed by the addition of a constant vector becomes one fully connected layer.
Anything else is refused naming the node, its type, the attribute and the reason; so are
constants of the wrong shape or type, and weights that folding makes non-finite (a float32
overflow).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import onnx
from onnx import helper

from mcudeploy import ir
from mcudeploy.errors import UnsupportedError
from mcudeploy.finite import nonfinite
from mcudeploy.frontends.layout import Layout, candidates, onnx_positions
from mcudeploy.frontends.onnx_graph import OnnxGraph, load_onnx_graph
from mcudeploy.frontends.onnx_gru import convert_gru
from mcudeploy.frontends.onnx_lstm import convert_lstm
from mcudeploy.frontends.onnx_moves import (
    MAX_TRANSPOSE_RANK,
    MOVES,
    SPATIAL_OPS,
    as_transpose,
    free_move,
    gather,
    moved_sources,
    out_layouts,
)
from mcudeploy.frontends.onnx_resize import convert_resize
from mcudeploy.frontends.padding import same_padding

_FUSES_ACTIVATION = {"conv2d", "depthwise_conv2d", "fully_connected", "pool2d", "add", "mul"}


@dataclass(frozen=True)
class OnnxImport:
    """The float IR graph, each activation's layout, and the static ONNX model behind it."""

    graph: ir.Graph
    layouts: dict[str, Layout]
    model: onnx.ModelProto
    onnx_inputs: tuple[str, ...]
    onnx_outputs: tuple[str, ...]
    where: str  # the file, as refusals name it


def load_onnx(path: Path, batch: int = 1,
              input_shapes: Mapping[str, tuple[int, ...]] | None = None) -> OnnxImport:
    """Import a float ONNX model (inputs in `input_shapes` pinned to those shapes); refusals name
    every node mcudeploy cannot import, in one message."""
    og = load_onnx_graph(path, batch, input_shapes)
    return _Converter(og, path.stem).run()


_SUPPORTED_LIST = "docs/SUPPORTED_OPS.md lists the operators mcudeploy imports"
_MAX_LISTED = 12  # refusals named in one message; the rest are counted


class _Converter:
    def __init__(self, og: OnnxGraph, name: str) -> None:
        self.og = og
        self.name = name
        self.tensors: dict[str, ir.Tensor] = {}
        self.layouts: dict[str, Layout] = {}
        self.ops: list[ir.Op] = []
        self.alias: dict[str, str] = {}
        self.uses = Counter(n for node in og.nodes for n in node.input if n)
        self.uses.update(og.outputs)
        self.label = ""

    # ---- helpers ------------------------------------------------------------------------------
    def refuse(self, reason: str) -> UnsupportedError:
        return UnsupportedError(f"{self.og.where}: {self.label}: {reason}")

    def ir_name(self, name: str) -> str:
        while name in self.alias:
            name = self.alias[name]
        return name

    def const(self, name: str) -> np.ndarray | None:
        return self.og.constants.get(name) if name else None

    def need_const(self, name: str, what: str) -> np.ndarray:
        """A constant input: floats as float32 (finite), integers as they are."""
        value = self.const(name)
        if value is None:
            raise self.refuse(f"{what} ({name!r}) must be a constant")
        if value.dtype.kind not in "fiub":
            raise self.refuse(f"{what} ({name!r}) holds {value.dtype} values, not numbers")
        if value.dtype.kind != "f":
            return value
        with np.errstate(over="ignore"):
            value = value.astype(np.float32)
        bad = nonfinite(value)
        if bad is not None:
            raise self.refuse(f"{what} ({name!r}) holds {bad} in float32")
        return value

    def need_scalar(self, name: str, what: str) -> float:
        value = self.need_const(name, what)
        if value.size != 1:
            raise self.refuse(f"{what} ({name!r}) of shape {list(value.shape)} must be one number")
        return float(value.reshape(-1)[0])

    def ir_axis(self, layout: Layout, axis: int, what: str = "axis") -> int:
        """The IR axis of ONNX axis `axis` of a tensor of `layout`; out of range is refused."""
        rank = len(layout.onnx_shape)
        if not -rank <= axis < rank:
            raise self.refuse(f"attribute {what}={axis} is out of range for a {rank}-D tensor")
        return layout.axis_to_ir(axis)

    def layout(self, name: str) -> Layout:
        name = self.ir_name(name)
        if name not in self.layouts:
            raise self.refuse(f"input {name!r} is a constant where a computed tensor is expected")
        return self.layouts[name]

    def new_activation(self, onnx_name: str, layout: Layout) -> str:
        self.layouts[onnx_name] = layout
        self.tensors[onnx_name] = ir.Tensor(onnx_name, layout.ir_shape, "float32")
        return onnx_name

    def new_constant(self, base: str, value: np.ndarray) -> str:
        name = base
        while name in self.tensors:
            name += "_"
        self.tensors[name] = ir.Tensor(name, tuple(value.shape), "float32",
                                       data=np.ascontiguousarray(value, dtype=np.float32))
        return name

    def intermediate(self, base: str, shape: tuple[int, ...]) -> str:
        """A tensor the import adds between two IR operators (not in the ONNX model)."""
        name = base
        while name in self.tensors or name in self.og.shapes:
            name += "_"
        self.new_activation(name, Layout("plain", tuple(shape)))
        return name

    def emit(self, attrs: ir.Attrs, inputs: tuple[str, ...], output: str, layout: Layout) -> ir.Op:
        self.new_activation(output, layout)
        op = ir.Op(_op_name(self.label, len(self.ops)), attrs, inputs, (output,), self.label)
        self.ops.append(op)
        return op

    def producer(self, name: str) -> tuple[int, ir.Op] | None:
        name = self.ir_name(name)
        for i in range(len(self.ops) - 1, -1, -1):
            if name in self.ops[i].outputs:
                return i, self.ops[i]
        return None

    def single_use(self, name: str) -> bool:
        return self.uses[name] == 1 and name not in self.og.outputs

    def rename_output(self, index: int, new: str) -> None:
        """Give op `index`'s output a new name (a fused successor's), keeping its layout."""
        op = self.ops[index]
        old = op.outputs[0]
        self.tensors[new] = replace(self.tensors.pop(old), name=new)
        self.layouts[new] = replace(self.layouts.pop(old), onnx_shape=self.og.shapes[new])
        self.ops[index] = replace(op, outputs=(new,))

    # ---- the walk ---------------------------------------------------------------------------
    def run(self) -> OnnxImport:
        for name in self.og.inputs:
            self.new_activation(name, Layout(self.input_kind(name), self.og.shapes[name]))
        refusals: list[tuple[str, str]] = []  # (node label, reason)
        poisoned: set[str] = set()  # outputs of refused nodes: what reads them is not checked
        skipped = 0
        for index, node in enumerate(self.og.nodes):
            self.label = self.og.node_label(node, index)
            handler = HANDLERS.get(node.op_type) if node.domain in ("", "ai.onnx") else None
            if poisoned & set(node.input):  # its inputs are unknown: only its type can be checked
                poisoned.update(node.output)
                if handler is None:
                    refusals.append((self.label, _unknown_type(node)))
                else:
                    skipped += 1
                continue
            try:
                if handler is None:
                    raise self.refuse(_unknown_type(node))
                with np.errstate(over="ignore", invalid="ignore"):  # overflows are refused below
                    handler.convert(self, node, _attributes(node))
            except UnsupportedError as exc:
                text = str(exc).removeprefix(f"{self.og.where}: ")
                refusals.append((self.label, text.removeprefix(f"{self.label}: ")))
                poisoned.update(node.output)
        if refusals:
            raise UnsupportedError(self.refusal_message(refusals, skipped))
        self.check_constants()
        outputs = tuple(self.ir_name(n) for n in self.og.outputs)
        for onnx_name, name in zip(self.og.outputs, outputs, strict=True):
            self.check_output(onnx_name, name)
        used = {n for op in self.ops for n in op.inputs} | set(outputs) | set(self.og.inputs)
        tensors = {k: v for k, v in self.tensors.items() if k in used}
        graph = ir.Graph(self.name, tensors, tuple(self.ops), tuple(self.og.inputs), outputs,
                         notes=tuple(self.og.notes))
        layouts = {k: v for k, v in self.layouts.items() if k in tensors}
        return OnnxImport(graph, layouts, self.og.model, tuple(self.og.inputs), tuple(self.og.outputs),
                          self.og.where)

    def input_kind(self, name: str) -> str:
        """How a model input is laid out: a 4-D input is NCHW, unless every node reading it moves
        it to NCHW (a Transpose from NHWC, or a Reshape that is one): then it is taken as NHWC and
        the move costs nothing. A 3-D input that 1-D windows read is NCL."""
        shape = self.og.shapes[name]
        readers = [n for n in self.og.nodes if name in n.input]
        if len(shape) == 4:
            plain = Layout("plain", shape)
            if readers and all(n.op_type in MOVES and free_move(self.og, n, plain) for n in readers):
                return "plain"
            return "nchw"
        if len(shape) == 3 and {n.op_type for n in readers} & SPATIAL_OPS:
            return "ncl"
        return "plain"

    def refusal_message(self, refusals: list[tuple[str, str]], skipped: int) -> str:
        """One line naming every refused node, nodes refused for the same reason together."""
        by_reason: dict[str, list[str]] = {}
        for label, reason in refusals:
            by_reason.setdefault(reason, []).append(label)
        parts = []
        for reason, labels in by_reason.items():
            named = ", ".join(labels[:_MAX_LISTED]) + (f" and {len(labels) - _MAX_LISTED} more"
                                                        if len(labels) > _MAX_LISTED else "")
            parts.append(f"{named}: {reason}")
        count = f"{len(refusals)} nodes cannot be imported: " if len(refusals) > 1 else ""
        text = f"{self.og.where}: {count}" + "; ".join(parts)
        if skipped:
            text += f" ({skipped} node(s) after them not checked)"
        if any(reason.startswith("operator type") for _, reason in refusals):
            text += f" ({_SUPPORTED_LIST})"
        return text

    def check_output(self, onnx_name: str, name: str) -> None:
        """A graph output must be a tensor the imported graph computes."""
        where = self.og.where
        if name in self.og.inputs:
            raise UnsupportedError(f"{where}: output {onnx_name!r} is a model input")
        if any(name in op.outputs for op in self.ops):
            return
        if onnx_name in self.og.constants:
            raise UnsupportedError(f"{where}: output {onnx_name!r} is a constant: it depends on no input")
        producer = next((self.og.node_label(node, i) for i, node in enumerate(self.og.nodes)
                         if onnx_name in node.output), f"output {onnx_name!r}")
        raise UnsupportedError(f"{where}: {producer}: its output {onnx_name!r} is a graph output that "
                               "mcudeploy does not compute (only a node's first output is imported)")

    def check_constants(self) -> None:
        """Weights and biases that folding (BatchNormalization, Gemm's alpha and beta, an added
        bias) made non-finite are refused, naming the node they came from."""
        for op in self.ops:
            for name in op.inputs:
                t = self.tensors[name]
                bad = nonfinite(t.data) if t.data is not None else None
                if bad is not None:
                    raise UnsupportedError(f"{self.og.where}: {op.origin}: {name!r} holds {bad} once "
                                           "folded (a float32 overflow)")


def _unknown_type(node: onnx.NodeProto) -> str:
    domain = f"{node.domain}." if node.domain not in ("", "ai.onnx") else ""
    return f"operator type {domain}{node.op_type} is not supported"


def _attributes(node: onnx.NodeProto) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _op_name(label: str, index: int) -> str:
    match = re.match(r"node '(.*)' \((\w+)\)", label)
    base = match.group(1) if match and not match.group(1).startswith("#") else ""
    kind = match.group(2).lower() if match else "op"
    clean = re.sub(r"[^A-Za-z0-9_]+", "_", base).strip("_")
    return clean or f"{kind}{index}"


# ---- convolution, batch norm --------------------------------------------------------------------
def _window(c: _Converter, node: onnx.NodeProto, attrs: dict, spatial: int,
            in_hw: tuple[int, int], kernel: tuple[int, int], stride: tuple[int, int],
            dilation: tuple[int, int]) -> ir.Padding:
    auto = attrs.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    if auto == "VALID":
        return ir.Padding()
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        p = same_padding(in_hw, kernel, stride, dilation)
        if auto == "SAME_LOWER":
            p = ir.Padding(top=p.bottom, bottom=p.top, left=p.right, right=p.left)
        return p
    if auto != "NOTSET":
        raise c.refuse(f"attribute auto_pad={auto} is not supported")
    pads = list(attrs.get("pads", [0] * (2 * spatial)))
    if len(pads) != 2 * spatial or any(p < 0 for p in pads):
        raise c.refuse(f"attribute pads={pads} must be {2 * spatial} numbers, none negative")
    if spatial == 1:
        return ir.Padding(left=pads[0], right=pads[1])
    return ir.Padding(top=pads[0], left=pads[1], bottom=pads[2], right=pads[3])


def _spatial_params(c: _Converter, node: onnx.NodeProto, attrs: dict, x: Layout,
                    kernel: list[int]) -> tuple[tuple[int, int], ...]:
    spatial = len(kernel)
    if (spatial, x.kind) not in ((2, "nchw"), (1, "ncl")):
        raise c.refuse(f"a {spatial}-D window on a {len(x.onnx_shape)}-D input is not supported")
    strides = list(attrs.get("strides", [1] * spatial))
    dilations = list(attrs.get("dilations", [1] * spatial))
    for name, values in (("kernel_shape", kernel), ("strides", strides), ("dilations", dilations)):
        if len(values) != spatial or any(v < 1 for v in values):
            raise c.refuse(f"attribute {name}={values} must be {spatial} positive numbers")
    if spatial == 1:
        kernel, strides, dilations = [1, *kernel], [1, *strides], [1, *dilations]
    hw = (x.ir_shape[1], x.ir_shape[2])
    return tuple(kernel), tuple(strides), tuple(dilations), hw


def _conv(c: _Converter, node: onnx.NodeProto, attrs: dict) -> None:
    x = c.layout(node.input[0])
    w = c.need_const(node.input[1], "the weights")
    bias = c.need_const(node.input[2], "the bias") if len(node.input) > 2 and node.input[2] else None
    if w.ndim not in (3, 4):
        raise c.refuse(f"weights ({node.input[1]!r}) of shape {list(w.shape)} are not supported "
                       "(need [C_out, C_in/group, KH, KW] or [C_out, C_in/group, K])")
    if bias is not None and bias.shape != (w.shape[0],):
        raise c.refuse(f"the bias ({node.input[2]!r}) has shape {list(bias.shape)}; it must be "
                       f"[{w.shape[0]}], one value per output channel")
    spatial = w.ndim - 2
    kernel, stride, dilation, hw = _spatial_params(c, node, attrs, x, list(w.shape[2:]))
    padding = _window(c, node, attrs, spatial, hw, kernel, stride, dilation)
    if spatial == 1:
        w = w[:, :, None, :]
    c_in, c_out, group = x.onnx_shape[1], w.shape[0], int(attrs.get("group", 1))
    if group < 1 or c_in % group or c_out % group or w.shape[1] != c_in // group:
        raise c.refuse(f"attribute group={group} does not divide {c_in} input and {c_out} output "
                       f"channels with weights {list(w.shape)}")
    bias = np.zeros(c_out, np.float32) if bias is None else bias.astype(np.float32)
    if group == c_in and c_in > 1:
        attrs_ir: ir.Attrs = ir.DepthwiseConv2D(stride, dilation, padding, c_out // c_in, ir.NO_CLIP)
        weights = w[:, 0].transpose(1, 2, 0)[None]
    else:
        attrs_ir = ir.Conv2D(stride, dilation, padding, ir.NO_CLIP)
        weights = w.transpose(0, 2, 3, 1)
    ins = (c.ir_name(node.input[0]), c.new_constant(f"{node.output[0]}_weights", weights),
           c.new_constant(f"{node.output[0]}_bias", bias))
    c.emit(attrs_ir, ins, node.output[0], Layout(x.kind, c.og.shapes[node.output[0]]))


def _batch_norm(c: _Converter, node: onnx.NodeProto, attrs: dict) -> None:
    if len(node.output) > 1 and any(node.output[1:]):
        raise c.refuse("training-mode BatchNormalization (extra outputs) is not supported")
    x = c.layout(node.input[0])
    channels = x.onnx_shape[1] if len(x.onnx_shape) > 1 else 1
    scale, shift, mean, var = (c.need_const(n, what) for n, what in
                               zip(node.input[1:5], ("scale", "B", "mean", "var"), strict=True))
    for name, value in zip(node.input[1:5], (scale, shift, mean, var), strict=True):
        if value.shape != (channels,):
            raise c.refuse(f"parameter {name!r} has shape {list(value.shape)}; it must be [{channels}]")
    spread = var + float(attrs.get("epsilon", 1e-5))
    if not (spread > 0).all():
        channel = int(np.flatnonzero(~(spread > 0))[0])
        raise c.refuse(f"var ({node.input[4]!r}) + epsilon is {float(spread[channel]):g} at channel "
                       f"{channel}; it must be positive")
    factor = (scale / np.sqrt(spread)).astype(np.float32)
    offset = (shift - mean * factor).astype(np.float32)
    if x.kind not in ("nchw", "ncl"):
        raise c.refuse(f"BatchNormalization of a {len(x.onnx_shape)}-D tensor is not supported")
    found = c.producer(node.input[0])
    if found and found[1].kind in ("conv2d", "depthwise_conv2d") and c.single_use(node.input[0]) \
            and found[1].attrs.activation == ir.NO_CLIP:
        index, op = found
        w, b = (c.tensors[n] for n in op.inputs[1:3])
        axis = 0 if op.kind == "conv2d" else 3
        shape = [1] * w.data.ndim
        shape[axis] = -1
        c.tensors[w.name] = replace(w, data=(w.data * factor.reshape(shape)).astype(np.float32))
        c.tensors[b.name] = replace(b, data=(b.data * factor + offset).astype(np.float32))
        c.rename_output(index, node.output[0])
        return
    weights = factor.reshape(1, 1, 1, -1)
    ins = (c.ir_name(node.input[0]), c.new_constant(f"{node.output[0]}_weights", weights),
           c.new_constant(f"{node.output[0]}_bias", offset))
    attrs_ir = ir.DepthwiseConv2D((1, 1), (1, 1), ir.Padding(), 1, ir.NO_CLIP)
    c.emit(attrs_ir, ins, node.output[0], Layout(x.kind, c.og.shapes[node.output[0]]))


# ---- activations ----------------------------------------------------------------------------------
def _fuse_activation(c: _Converter, node: onnx.NodeProto, clip: ir.Clip) -> None:
    """Fused into the operator before it when it is the only reader of that operator's output;
    else a standalone clamp (TFLite RELU, or MAXIMUM/MINIMUM for other bounds)."""
    found = c.producer(node.input[0])
    if found is None or found[1].kind not in _FUSES_ACTIVATION or not c.single_use(node.input[0]):
        x = c.layout(node.input[0])
        if clip.low is not None and clip.high is not None and not clip.low < clip.high:
            raise c.refuse(f"min {clip.low} is not below max {clip.high}")
        c.emit(ir.Relu(clip.low, clip.high), (c.ir_name(node.input[0]),), node.output[0],
               Layout(x.kind, c.og.shapes[node.output[0]], x.spatial))
        return
    index, op = found
    old = op.attrs.activation
    lows = [v for v in (old.low, clip.low) if v is not None]
    highs = [v for v in (old.high, clip.high) if v is not None]
    fused = ir.Clip(max(lows) if lows else None, min(highs) if highs else None)
    c.ops[index] = replace(op, attrs=replace(op.attrs, activation=fused))
    c.rename_output(index, node.output[0])


def _relu(c: _Converter, node: onnx.NodeProto, attrs: dict) -> None:
    _fuse_activation(c, node, ir.Clip(0.0, None))


def _clip(c: _Converter, node: onnx.NodeProto, attrs: dict) -> None:
    low, high = attrs.get("min"), attrs.get("max")
    if len(node.input) > 1 and node.input[1]:
        low = c.need_scalar(node.input[1], "min")
    if len(node.input) > 2 and node.input[2]:
        high = c.need_scalar(node.input[2], "max")
    _fuse_activation(c, node, ir.Clip(None if low is None else float(low),
                                      None if high is None else float(high)))


# ---- fully connected ------------------------------------------------------------------------------
def _fc_weights(c: _Converter, x: Layout, weights: np.ndarray) -> np.ndarray:
    """[N, K] weights reading `x`; columns re-ordered when x is a flattened NCHW tensor."""
    if x.kind == "flat" and not x.trivial_flat:
        return weights[:, x.column_order()]
    if x.kind in ("nchw", "ncl"):
        raise c.refuse("a fully connected layer on a channels-first tensor needs a Flatten first")
    return weights


def _emit_fc(c: _Converter, node: onnx.NodeProto, weights: np.ndarray, bias: np.ndarray) -> None:
    x = c.layout(node.input[0])
    weights = _fc_weights(c, x, weights)
    ins = (c.ir_name(node.input[0]), c.new_constant(f"{node.output[0]}_weights", weights),
           c.new_constant(f"{node.output[0]}_bias", bias))
    c.emit(ir.FullyConnected(ir.NO_CLIP), ins, node.output[0], Layout("plain", c.og.shapes[node.output[0]]))


def _gemm(c: _Converter, node: onnx.NodeProto, attrs: dict) -> None:
    if attrs.get("transA", 0):
        raise c.refuse("attribute transA=1 is not supported")
    b = c.need_const(node.input[1], "B")
    if b.ndim != 2:
        raise c.refuse(f"B ({node.input[1]!r}) of shape {list(b.shape)} is not a matrix")
    weights = b if attrs.get("transB", 0) else b.T
    weights = weights * float(attrs.get("alpha", 1.0))
    n = weights.shape[0]
    bias = np.zeros(n, np.float32)
    if len(node.input) > 2 and node.input[2]:
        bias = _gemm_bias(c, node, c.need_const(node.input[2], "C"), n) * float(attrs.get("beta", 1.0))
    _emit_fc(c, node, weights.astype(np.float32), bias.astype(np.float32))


def _gemm_bias(c: _Converter, node: onnx.NodeProto, value: np.ndarray, n: int) -> np.ndarray:
    """Gemm's C as one value per output: it must broadcast to [M, N] and be the same for every row."""
    rows = c.og.shapes[node.output[0]][0]
    try:
        full = np.broadcast_to(value, (rows, n))
    except ValueError:
        raise c.refuse(f"C ({node.input[2]!r}) of shape {list(value.shape)} does not broadcast to the "
                       f"output's [{rows}, {n}]") from None
    if (full != full[:1]).any():
        raise c.refuse(f"C ({node.input[2]!r}) differs from row to row; only a bias per output column "
                       "is supported")
    return full[0]


def _matmul(c: _Converter, node: onnx.NodeProto, attrs: dict) -> None:
    b = c.need_const(node.input[1], "the second input")
    if b.ndim != 2:
        raise c.refuse(f"a constant second input of shape {list(b.shape)} is not supported (need 2-D)")
    _emit_fc(c, node, b.T.astype(np.float32), np.zeros(b.shape[1], np.float32))


# ---- pooling ------------------------------------------------------------------------------------
def _pool(mode: str) -> Callable[[_Converter, onnx.NodeProto, dict], None]:
    def convert(c: _Converter, node: onnx.NodeProto, attrs: dict) -> None:
        x = c.layout(node.input[0])
        if attrs.get("ceil_mode", 0):
            raise c.refuse("attribute ceil_mode=1 is not supported")
        if any(d != 1 for d in attrs.get("dilations", [])):
            raise c.refuse("dilated pooling is not supported")
        kernel, stride, dilation, hw = _spatial_params(c, node, attrs, x, list(attrs["kernel_shape"]))
        padding = _window(c, node, attrs, len(attrs["kernel_shape"]), hw, kernel, stride, dilation)
        if len(node.output) > 1 and node.output[1]:
            raise c.refuse("MaxPool's Indices output is not supported")
        source = c.ir_name(node.input[0])
        if mode == "avg" and padding != ir.Padding():
            if attrs.get("count_include_pad", 0):
                source = _pad_with_zeros(c, node, x, padding)
                padding = ir.Padding()
            elif padding != same_padding(hw, kernel, stride, (1, 1)):
                raise c.refuse(f"padding {padding} (neither SAME nor VALID) with count_include_pad=0 "
                               "is not supported: TFLite cannot express it, so TFLM could not check it")
        c.emit(ir.Pool2D(mode, kernel, stride, padding, ir.NO_CLIP), (source,), node.output[0],
               Layout(x.kind, c.og.shapes[node.output[0]]))

    return convert


def _pad_with_zeros(c: _Converter, node: onnx.NodeProto, x: Layout, p: ir.Padding) -> str:
    """A Pad before average pooling that counts its padding: the pooling then reads real zeros."""
    n, ch, h, w = x.onnx_shape if x.kind == "nchw" else (*x.onnx_shape[:2], 1, x.onnx_shape[2])
    shape = (n, ch, h + p.top + p.bottom, w + p.left + p.right)
    name = f"{node.output[0]}_padded"
    c.emit(ir.Pad(((0, 0), (p.top, p.bottom), (p.left, p.right), (0, 0))), (c.ir_name(node.input[0]),),
           name, Layout("nchw", shape))
    return name


def _global_pool(mode: str) -> Callable[[_Converter, onnx.NodeProto, dict], None]:
    def convert(c: _Converter, node: onnx.NodeProto, attrs: dict) -> None:
        x = c.layout(node.input[0])
        if x.kind not in ("nchw", "ncl"):
            raise c.refuse(f"global pooling of a {len(x.onnx_shape)}-D tensor is not supported")
        window = (x.ir_shape[1], x.ir_shape[2])
        attrs_ir = ir.Pool2D(mode, window, (1, 1), ir.Padding(), ir.NO_CLIP)
        c.emit(attrs_ir, (c.ir_name(node.input[0]),), node.output[0],
               Layout(x.kind, c.og.shapes[node.output[0]]))

    return convert


# ---- element-wise ---------------------------------------------------------------------------------
def _const_in_layout(c: _Converter, value: np.ndarray, layout: Layout) -> np.ndarray:
    """A constant operand broadcast against a tensor of `layout`, moved to IR order."""
    rank = len(layout.onnx_shape)
    if value.ndim > rank:
        raise c.refuse(f"a constant of shape {list(value.shape)} against a {rank}-D tensor")
    if value.size == 1:
        return value.reshape((1,) * max(value.ndim, 1))
    if layout.kind in ("plain",) or layout.trivial_flat:
        return value
    full = value.reshape((1,) * (rank - value.ndim) + value.shape)
    if layout.kind == "nchw":
        return full.transpose(0, 2, 3, 1)
    if layout.kind == "ncl":
        return full.transpose(0, 2, 1)[:, None]
    raise c.refuse(f"a constant of shape {list(value.shape)} against a flattened NCHW tensor")


def _elementwise(kind: str) -> Callable[[_Converter, onnx.NodeProto, dict], None]:
    def convert(c: _Converter, node: onnx.NodeProto, attrs: dict) -> None:
        a, b = node.input[:2]
        ca, cb = (c.need_const(n, "a constant input") if c.const(n) is not None else None for n in (a, b))
        if ca is not None and cb is not None:
            raise c.refuse("both inputs are constant")
        live = [n for n, v in ((a, ca), (b, cb)) if v is None]
        layouts = [c.layout(n) for n in live]
        if len(layouts) == 2 and layouts[0].kind != layouts[1].kind:
            raise c.refuse(f"inputs of layouts {layouts[0].kind} and {layouts[1].kind} cannot be combined")
        out_layout = Layout(layouts[0].kind, c.og.shapes[node.output[0]], layouts[0].spatial)
        if kind == "add" and _fold_bias(c, node, a, b, ca, cb):
            return
        ins = []
        for name, value in ((a, ca), (b, cb)):
            if value is None:
                ins.append(c.ir_name(name))
            else:
                moved = _const_in_layout(c, value, out_layout)
                ins.append(c.new_constant(f"{node.output[0]}_operand", moved))
        attrs_ir = {"add": ir.Add, "sub": ir.Sub, "mul": ir.Mul}[kind](ir.NO_CLIP)
        c.emit(attrs_ir, tuple(ins), node.output[0], out_layout)

    return convert


def _extremum(mode: str) -> Callable[[_Converter, onnx.NodeProto, dict], None]:
    def convert(c: _Converter, node: onnx.NodeProto, attrs: dict) -> None:
        if len(node.input) != 2:
            raise c.refuse(f"{len(node.input)} inputs are not supported (only 2)")
        consts = [c.need_const(n, "a constant input") if c.const(n) is not None else None
                  for n in node.input]
        if all(v is not None for v in consts):
            raise c.refuse("both inputs are constant")
        live = [c.layout(n) for n, v in zip(node.input, consts, strict=True) if v is None]
        if len(live) == 2 and live[0].kind != live[1].kind:
            raise c.refuse(f"inputs of layouts {live[0].kind} and {live[1].kind} cannot be combined")
        out = Layout(live[0].kind, c.og.shapes[node.output[0]], live[0].spatial)
        ins = []
        for name, value in zip(node.input, consts, strict=True):
            if value is None:
                ins.append(c.ir_name(name))
                continue
            moved = _const_in_layout(c, value, out)
            if moved.size == 1:  # one value per channel: Arm's kernels broadcast [1, 1, 1, C] right
                moved = np.full((1,) * (len(out.ir_shape) - 1) + (out.ir_shape[-1],), moved.reshape(-1)[0],
                                np.float32)
            ins.append(c.new_constant(f"{node.output[0]}_operand", moved))
        c.emit(ir.Extremum(mode), tuple(ins), node.output[0], out)

    return convert


def _sum(c: _Converter, node: onnx.NodeProto, attrs: dict) -> None:
    if len(node.input) != 2:
        raise c.refuse(f"a Sum of {len(node.input)} inputs is not supported (only 2, as an Add)")
    _elementwise("add")(c, node, attrs)


def _fold_bias(c: _Converter, node: onnx.NodeProto, a: str, b: str, ca, cb) -> bool:
    """Add(conv or FC output, constant per output channel) → the layer's bias."""
    live, value = (a, cb) if cb is not None else (b, ca)
    if value is None or not c.single_use(live):
        return False
    found = c.producer(live)
    if found is None or found[1].kind not in ("conv2d", "depthwise_conv2d", "fully_connected") \
            or found[1].attrs.activation != ir.NO_CLIP:
        return False
    index, op = found
    layout = c.layout(live)
    moved = _const_in_layout(c, value, layout)
    channels = c.tensors[op.outputs[0]].shape[-1]
    if moved.size not in (1, channels) or (moved.size == channels and moved.shape[-1] != channels):
        return False
    bias = c.tensors[op.inputs[2]]
    c.tensors[bias.name] = replace(bias, data=(bias.data + moved.reshape(-1)).astype(np.float32))
    c.rename_output(index, node.output[0])
    return True


def _prelu(c: _Converter, node: onnx.NodeProto, attrs: dict) -> None:
    x = c.layout(node.input[0])
    slope = c.need_const(node.input[1], "the slope")
    out = Layout(x.kind, c.og.shapes[node.output[0]], x.spatial)
    moved = _const_in_layout(c, slope, out)
    c.emit(ir.PRelu(), (c.ir_name(node.input[0]), c.new_constant(f"{node.output[0]}_slope", moved)),
           node.output[0], out)


def _unary(make: Callable[[dict], ir.Attrs]) -> Callable[[_Converter, onnx.NodeProto, dict], None]:
    def convert(c: _Converter, node: onnx.NodeProto, attrs: dict) -> None:
        x = c.layout(node.input[0])
        c.emit(make(attrs), (c.ir_name(node.input[0]),), node.output[0],
               Layout(x.kind, c.og.shapes[node.output[0]], x.spatial))

    return convert


def _softmax(c: _Converter, node: onnx.NodeProto, attrs: dict) -> None:
    x = c.layout(node.input[0])
    opset = next((o.version for o in c.og.model.opset_import if o.domain in ("", "ai.onnx")), 13)
    rank = len(x.onnx_shape)
    axis = int(attrs.get("axis", -1 if opset >= 13 else 1))
    axis = axis + rank if axis < 0 else axis
    if opset < 13 and axis != rank - 1:
        # before opset 13 Softmax flattens the axes from `axis` on: the same as a softmax over one
        # axis when all the others are 1
        wide = [a for a in range(axis, rank) if x.onnx_shape[a] != 1]
        if len(wide) > 1:
            raise c.refuse(f"attribute axis={axis} with opset {opset} flattens several axes; "
                           "only one axis of size > 1 works")
        axis = wide[0] if wide else axis
    if c.ir_axis(x, axis) != len(x.ir_shape) - 1:
        raise c.refuse(f"attribute axis={axis} is not the channel/last axis")
    c.emit(ir.Softmax(1.0), (c.ir_name(node.input[0]),), node.output[0],
           Layout(x.kind, c.og.shapes[node.output[0]], x.spatial))


# ---- shapes ----------------------------------------------------------------------------------
def _move(c: _Converter, node: onnx.NodeProto, attrs: dict) -> None:
    """Reshape, Flatten, Squeeze, Unsqueeze and Transpose: in the NHWC plan most of them leave the
    bytes in place (a reshape, which costs nothing); the others are a transpose of the IR tensor
    (arm_transpose_s8), between reshapes where the view needs them."""
    x = c.layout(node.input[0])
    out_shape = c.og.shapes[node.output[0]]
    sources = moved_sources(c.og, node)
    if sources is None:
        raise c.refuse(f"its output {list(out_shape)} is not a reshape or permutation of its input "
                       f"{list(x.onnx_shape)}")
    layouts = out_layouts(c.og, node, x)
    for out in layouts:
        if (gather(x, out, sources) == np.arange(sources.size)).all():
            c.emit(ir.Reshape(), (c.ir_name(node.input[0]),), node.output[0], out)
            return
    for out in layouts:
        found = as_transpose(gather(x, out, sources), x.ir_shape)
        if found is None:
            continue
        view, perm = found
        if len(view) > MAX_TRANSPOSE_RANK:
            raise c.refuse(f"moving the axes of a {list(x.onnx_shape)} tensor to {list(out_shape)} is a "
                           f"transpose of {len(view)} axes; arm_transpose_s8 takes at most "
                           f"{MAX_TRANSPOSE_RANK}")
        source = c.ir_name(node.input[0])
        if view != x.ir_shape:
            source = c.intermediate(f"{node.output[0]}_view", view)
            c.emit(ir.Reshape(), (c.ir_name(node.input[0]),), source, Layout("plain", view))
        moved = tuple(view[p] for p in perm)
        if moved == out.ir_shape:
            c.emit(ir.Transpose(perm), (source,), node.output[0], out)
            return
        target = c.intermediate(f"{node.output[0]}_moved", moved)
        c.emit(ir.Transpose(perm), (source,), target, Layout("plain", moved))
        c.emit(ir.Reshape(), (target,), node.output[0], out)
        return
    raise c.refuse(f"moving a {x.kind} {list(x.onnx_shape)} tensor to {list(out_shape)} is neither a "
                   "reshape nor a transpose of its NHWC form")


def _reduce(mode: str) -> Callable[[_Converter, onnx.NodeProto, dict], None]:
    """ReduceMean and ReduceMax over axes that are contiguous in the NHWC form: the tensor seen as
    [outer, reduced, 1, inner] and averaged (TFLite MEAN over H and W) or max-pooled."""

    def convert(c: _Converter, node: onnx.NodeProto, attrs: dict) -> None:
        x = c.layout(node.input[0])
        rank = len(x.onnx_shape)
        axes = attrs.get("axes")
        if len(node.input) > 1 and node.input[1]:
            axes = c.need_const(node.input[1], "axes").reshape(-1).tolist()
        axes = list(range(rank)) if not axes else [int(a) for a in axes]
        if x.kind == "flat" and not x.trivial_flat:
            raise c.refuse("reducing a flattened channels-first tensor is not supported")
        ir_axes = sorted({c.ir_axis(x, a, "axes") for a in axes})
        shape = x.ir_shape
        between = range(ir_axes[0], ir_axes[-1] + 1)
        if any(shape[a] != 1 for a in between if a not in ir_axes):
            raise c.refuse(f"{node.op_type} over axes {axes} of a {rank}-D tensor is not supported: "
                           "they are not neighbours in the NHWC form")
        outer = int(np.prod(shape[: ir_axes[0]], dtype=np.int64))
        inner = int(np.prod(shape[ir_axes[-1] + 1 :], dtype=np.int64))
        reduced = int(np.prod([shape[a] for a in ir_axes], dtype=np.int64))
        view = (outer, reduced, 1, inner)
        out_shape = c.og.shapes[node.output[0]]
        sources = np.arange(int(np.prod(x.onnx_shape))).reshape(x.onnx_shape)
        sources = sources[tuple(slice(0, 1) if a % rank in [b % rank for b in axes] else slice(None)
                                for a in range(rank))].reshape(out_shape)
        kept = onnx_positions(x).reshape(shape)[tuple(slice(0, 1) if a in ir_axes else slice(None)
                                                      for a in range(len(shape)))].reshape(-1)
        out = next((lay for lay in candidates(x, out_shape)
                    if (lay.to_ir(sources).reshape(-1) == kept).all()), None)
        if out is None:
            raise c.refuse(f"{node.op_type} over axes {axes} of a {rank}-D tensor is not supported")
        source = c.ir_name(node.input[0])
        if len(shape) == 4 and ir_axes == [1, 2]:
            view = shape
        elif view != shape:
            source = c.intermediate(f"{node.output[0]}_view", view)
            c.emit(ir.Reshape(), (c.ir_name(node.input[0]),), source, Layout("plain", view))
        squeeze = mode == "mean" and out.ir_shape == (outer, inner)
        if mode == "mean":
            attrs_ir: ir.Attrs = ir.Mean(keep_dims=not squeeze)
        else:
            attrs_ir = ir.Pool2D("max", (view[1], view[2]), (1, 1), ir.Padding(), ir.NO_CLIP)
        reduced_shape = (outer, inner) if squeeze else (outer, 1, 1, inner)
        if reduced_shape == out.ir_shape:
            c.emit(attrs_ir, (source,), node.output[0], out)
            return
        target = c.intermediate(f"{node.output[0]}_reduced", reduced_shape)
        c.emit(attrs_ir, (source,), target, Layout("plain", reduced_shape))
        c.emit(ir.Reshape(), (target,), node.output[0], out)

    return convert


def _slice(c: _Converter, node: onnx.NodeProto, attrs: dict) -> None:
    """Slice with positive steps: the same elements of the NHWC form (IR slice)."""
    x = c.layout(node.input[0])
    if x.kind == "flat" and not x.trivial_flat:
        raise c.refuse("slicing a flattened channels-first tensor is not supported")

    def values(position: int, name: str, default: list[int] | None) -> list[int] | None:
        if len(node.input) > position and node.input[position]:
            return [int(v) for v in c.need_const(node.input[position], name).reshape(-1)]
        return attrs.get(name, default)

    starts, ends = values(1, "starts", None), values(2, "ends", None)
    axes = values(3, "axes", list(range(len(starts or []))))
    steps = values(4, "steps", [1] * len(axes or []))
    if starts is None or ends is None or not len(starts) == len(ends) == len(axes) == len(steps):
        raise c.refuse("starts, ends, axes and steps must be constants of one length")
    if any(step < 1 for step in steps):
        raise c.refuse(f"steps {steps} are not supported (only positive steps)")
    shape = x.ir_shape
    begin, end, strides = [0] * len(shape), list(shape), [1] * len(shape)
    for start, stop, axis, step in zip(starts, ends, axes, steps, strict=True):
        ir_axis = c.ir_axis(x, axis, "axes")
        dim = shape[ir_axis]
        start, stop = (v + dim if v < 0 else v for v in (start, stop))
        begin[ir_axis], end[ir_axis], strides[ir_axis] = min(max(start, 0), dim), min(max(stop, 0), dim), step
    c.emit(ir.Slice(tuple(begin), tuple(end), tuple(strides)), (c.ir_name(node.input[0]),), node.output[0],
           Layout(x.kind, c.og.shapes[node.output[0]], x.spatial))


def _unrewritten(rule: str) -> Callable[[_Converter, onnx.NodeProto, dict], None]:
    """An element-wise form that onnx_rewrite.py rewrites when it can: reaching the converter, it
    did not meet the rule."""

    def convert(c: _Converter, node: onnx.NodeProto, attrs: dict) -> None:
        raise c.refuse(f"{node.op_type} is supported {rule}")

    return convert


def _pow(c: _Converter, node: onnx.NodeProto, attrs: dict) -> None:
    """Pow by -0.5 as RSQRT (what onnx_rewrite.py makes of a division by a square root); Pow by 2
    was rewritten as Mul(x, x) before."""
    if c.const(node.input[1]) is None or c.need_scalar(node.input[1], "exponent") != -0.5:
        raise c.refuse("Pow is supported only with the constant exponent 2 (Mul) or -0.5 (RSQRT)")
    _unary(lambda _: ir.Rsqrt())(c, node, attrs)


def _identity(c: _Converter, node: onnx.NodeProto, attrs: dict) -> None:
    c.alias[node.output[0]] = c.ir_name(node.input[0])
    c.uses[c.ir_name(node.input[0])] += c.uses[node.output[0]] - 1


def _concat(c: _Converter, node: onnx.NodeProto, attrs: dict) -> None:
    layouts = [c.layout(n) for n in node.input]
    if len({lay.kind for lay in layouts}) != 1 or layouts[0].kind == "flat":
        raise c.refuse("inputs of different or flattened layouts cannot be concatenated")
    axis = c.ir_axis(layouts[0], int(attrs["axis"]))
    out = Layout(layouts[0].kind, c.og.shapes[node.output[0]])
    c.emit(ir.Concat(axis), tuple(c.ir_name(n) for n in node.input), node.output[0], out)


def _pad(c: _Converter, node: onnx.NodeProto, attrs: dict) -> None:
    mode = attrs.get("mode", b"constant")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    if mode != "constant":
        raise c.refuse(f"attribute mode={mode} is not supported (only constant)")
    if len(node.input) > 3 and node.input[3]:
        raise c.refuse("the axes input is not supported")
    pads = attrs.get("pads")
    if len(node.input) > 1 and node.input[1]:
        pads = c.need_const(node.input[1], "pads").reshape(-1)
    value = attrs.get("value", 0.0)
    if len(node.input) > 2 and node.input[2]:
        value = c.need_scalar(node.input[2], "constant_value")
    if value != 0.0:
        raise c.refuse(f"constant_value={value} is not supported (only 0)")
    x = c.layout(node.input[0])
    rank = len(x.onnx_shape)
    if pads is None or len(pads) != 2 * rank or any(p < 0 for p in pads):
        raise c.refuse(f"pads={None if pads is None else [int(p) for p in pads]} must be {2 * rank} "
                       "numbers, none negative")
    pairs = [(int(pads[i]), int(pads[i + rank])) for i in range(rank)]
    if x.kind == "nchw":
        pairs = [pairs[0], pairs[2], pairs[3], pairs[1]]
    elif x.kind == "ncl":
        pairs = [pairs[0], (0, 0), pairs[2], pairs[1]]
    elif x.kind == "flat" and not x.trivial_flat:
        raise c.refuse("padding a flattened channels-first tensor is not supported")
    c.emit(ir.Pad(tuple(pairs)), (c.ir_name(node.input[0]),), node.output[0],
           Layout(x.kind, c.og.shapes[node.output[0]], x.spatial))


@dataclass(frozen=True)
class Handler:
    """How one ONNX operator is imported: what it becomes in the IR (whose constraints then
    apply), the import-time rules it must meet (refused otherwise), and the converter."""

    becomes: str
    rules: str
    convert: Callable[[_Converter, onnx.NodeProto, dict], None]


_WINDOW = "2-D or 1-D; pads explicit or auto_pad SAME_UPPER/SAME_LOWER/VALID"
HANDLERS: dict[str, Handler] = {
    "Conv": Handler("conv2d / depthwise_conv2d", f"constant weights and bias (one value per output "
                    f"channel); group divides both "
                    f"channel counts (group == C_in becomes depthwise); {_WINDOW}", _conv),
    "BatchNormalization": Handler("folded", "folded into the convolution before it, else a 1x1 "
                                  "depthwise convolution; constant parameters, one per channel, with "
                                  "var + epsilon > 0; inference mode", _batch_norm),
    "Relu": Handler("fused / relu", "fused into the convolution, fully connected, pooling, Add or Mul "
                    "before it, whose output nothing else reads; else a standalone RELU", _relu),
    "Clip": Handler("fused / relu", "as Relu (a standalone Clip other than Relu keeps its input's "
                    "quantization); constant min/max", _clip),
    "Gemm": Handler("fully_connected", "transA = 0; constant 2-D B; constant C that broadcasts to "
                    "[M, N] with every row the same", _gemm),
    "MatMul": Handler("fully_connected", "constant 2-D second input; an Add of a constant vector after "
                      "it becomes the bias", _matmul),
    "AveragePool": Handler("pool2d", f"{_WINDOW}; ceil_mode = 0; padding other than SAME or VALID only "
                           "with count_include_pad = 1 (written as Pad + VALID pooling)",
                           _pool("avg")),
    "MaxPool": Handler("pool2d", f"{_WINDOW}; ceil_mode = 0; no dilation; no Indices output",
                       _pool("max")),
    "GlobalAveragePool": Handler("pool2d", "4-D or 3-D input", _global_pool("avg")),
    "GlobalMaxPool": Handler("pool2d", "4-D or 3-D input", _global_pool("max")),
    "Add": Handler("add", "one input may be constant; a constant per-channel Add after a convolution "
                   "or fully connected layer becomes its bias", _elementwise("add")),
    "Mul": Handler("mul", "one input may be constant", _elementwise("mul")),
    "Sum": Handler("add", "two inputs, as Add", _sum),
    "Max": Handler("extremum", "two inputs, at most one of them constant", _extremum("max")),
    "Min": Handler("extremum", "two inputs, at most one of them constant", _extremum("min")),
    "Softmax": Handler("softmax", "over the last (or channel) axis", _softmax),
    "Sigmoid": Handler("logistic", "", _unary(lambda attrs: ir.Logistic())),
    "Tanh": Handler("tanh", "", _unary(lambda attrs: ir.Tanh())),
    "HardSwish": Handler("hard_swish", "", _unary(lambda attrs: ir.HardSwish())),
    "LeakyRelu": Handler("leaky_relu", "",
                         _unary(lambda attrs: ir.LeakyRelu(float(attrs.get("alpha", 0.01))))),
    "PRelu": Handler("prelu", "constant slope, one value or one per channel", _prelu),
    "ReduceMean": Handler("mean", "over axes that are neighbours in the NHWC form (H and W, the "
                          "length of a 1-D signal, the last axis)", _reduce("mean")),
    "ReduceMax": Handler("pool2d", "as ReduceMean, as max pooling", _reduce("max")),
    "Reshape": Handler("reshape / transpose", "free when the NHWC bytes stay in place, else a transpose "
                       "of at most 4 axes", _move),
    "Flatten": Handler("reshape / transpose", "as Reshape", _move),
    "Squeeze": Handler("reshape / transpose", "as Reshape", _move),
    "Unsqueeze": Handler("reshape / transpose", "as Reshape", _move),
    "Transpose": Handler("reshape / transpose", "as Reshape", _move),
    "Concat": Handler("concat", "inputs of one layout", _concat),
    "Slice": Handler("slice", "constant starts, ends, axes; positive steps", _slice),
    "Pad": Handler("pad", "mode constant, value 0, no axes input", _pad),
    "HardSigmoid": Handler("add, mul", "alpha > 0: Add(beta / alpha), Clip(0, 1 / alpha), Mul(alpha)",
                           _unrewritten("only with alpha > 0")),
    "Div": Handler("mul", "by a constant: Mul by its reciprocal; by Sqrt(v): Mul by RSQRT(v)", _unrewritten(
        "only by a constant whose reciprocal is a finite float32 (no zero)")),
    "Sub": Handler("sub / add", "minus a constant: Add of its negation; else SUB (either input may be "
                   "constant)", _elementwise("sub")),
    "Neg": Handler("mul", "Mul by -1", _unrewritten("only on float tensors")),
    "Pow": Handler("mul / rsqrt", "constant exponent 2: Mul(x, x); -0.5: RSQRT", _pow),
    "Sqrt": Handler("rsqrt, mul", "only as a divisor: Div(x, Sqrt(v)) becomes Mul(x, RSQRT(v))",
                    _unrewritten("only as the divisor of Div (x / sqrt(v)), where it becomes RSQRT")),
    "LSTM": Handler("lstm", "X [seq, batch, input] (layout 0); constant W, R, B; no clip, peepholes or "
                    "input_forget; activations Sigmoid, Tanh, Tanh; sequence_lens the whole sequence; "
                    "initial_h/initial_c absent or constant zeros; Y_c unused; reverse and bidirectional "
                    "as forward LSTMs between reversals of the sequence (slice, concat)", convert_lstm),
    "GRU": Handler("fully_connected, add, sub, mul, logistic, tanh, slice, concat, reshape",
                   "unrolled over the steps as TensorFlow's converter deploys a GRU; X [seq, 1, input] "
                   "(layout 0, batch 1); constant W, R, B; no clip; activations Sigmoid, Tanh; "
                   "linear_before_reset 0 or 1; sequence_lens the whole sequence; initial_h absent or "
                   "constant zeros; forward, reverse, bidirectional", convert_gru),
    "Resize": Handler("resize", "H and W of NCHW; constant scales (the output/input ratio for linear) or "
                      "sizes; nearest where its source pixels are those of a TFLite nearest-neighbour "
                      "resize (asymmetric + floor, align_corners + round_prefer_ceil, "
                      "tf_half_pixel_for_nn + floor, and others where they pick the same); linear with "
                      "half_pixel, pytorch_half_pixel, align_corners or asymmetric", convert_resize),
    "Upsample": Handler("resize", "as Resize (asymmetric, floor)", convert_resize),
    "Identity": Handler("removed", "", _identity),
    "Dropout": Handler("removed", "inference mode", _identity),
}
"""ONNX operators mcudeploy imports, by op_type."""
