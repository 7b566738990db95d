"""Kernels of mcudeploy's own, generated per layer: lowering candidates beside the NN library's calls.

Each rewrite turns a plainly lowered layer (convolution, fully connected, depthwise convolution,
ADD) into one whose template (`mcd_*.c.j2`, helpers in firmware/include/mcdk.h) computes it in C
specialised to the layer: channel counts, kernel size, strides and padding are constants, the
constants sit in flash in the order the inner loop reads them, and the requantization is fused
into the loop. The arithmetic is TFLite int8's (mcudeploy.arith), for two instruction
sets:

- `dsp`: the DSP extension (Cortex-M4, M7, M33, M55). SMLAD multiplies two pairs of 16-bit values
  and adds both products in one instruction; int8 data is widened by SXTB16. On a CPU without the
  extension (Cortex-M3) the same code runs with mcdk.h's portable versions of these instructions.
- `mve`: Helium (Cortex-M55). VMLADAVA multiplies 16 int8 pairs and adds their sum; the
  requantization runs on four lanes at once.

Exact whatever the input, each claim checked here at generation time, per layer and channel:
- The input offset is folded into the bias, sum(w * (x + offset)) + bias = sum(w * x) + bias' with
  bias' = bias + offset * sum(w), where the padding reads the input's zero point (x + offset = 0).
  A layer whose bias' does not fit int32 gets no generated kernel.
- The DSP kernels' fast requantization (`mcdk_requantize_fast`) needs the largest possible
  accumulator of each output channel, over every int8 input, to leave no room for overflow
  (`plan_requant`); otherwise they requantize with the exact 64-bit arithmetic. Helium's vector
  requantization is exact for any accumulator.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from mcudeploy.codegen.grouped_fallback import align4, constant, groups
from mcudeploy.codegen.lower import Const, Dims, FixedScratch, Layer

INT32_MAX = 2**31 - 1
# The headers of firmware/include that the code of a generated kernel includes (mcdk.h includes
# mcdk_mve_portable.h where the compiler does not target Helium): emit writes them beside NAME.c.
HEADERS = ("mcdk.h", "mcdk_mve_portable.h")


def is_generated(layer: Layer) -> bool:
    """Whether `layer` is computed by a kernel of mcudeploy's own (a template mcd_*.c.j2)."""
    return layer.template.startswith("mcd_")


def _scratch(layer: Layer, size: int) -> FixedScratch:
    return FixedScratch(f"{layer.name}_get_buffer_size", "fixed", size=size)


def acc_bounds(w: np.ndarray, bias: np.ndarray, low: int = -128, high: int = 127) -> np.ndarray:
    """Per output channel (rows of `w` [N, K]), the largest |bias + sum(w * x)| over all inputs x
    with every element in [low, high] (low <= 0 <= high)."""
    w = w.astype(np.int64)
    pos, neg = np.where(w > 0, w, 0).sum(axis=1), np.where(w < 0, w, 0).sum(axis=1)
    bias = bias.astype(np.int64)
    return np.maximum(np.abs(bias + high * pos + low * neg), np.abs(bias + low * pos + high * neg))


@dataclass(frozen=True)
class Requant:
    """How a DSP kernel requantizes: `fast` (mcdk_requantize_fast on twice the accumulator, with
    each channel's k = 2^(right - 1) + (output_offset << right) and right; no channel shifts left)
    or exact (each channel's multiplier and shift)."""

    fast: bool
    multiplier: np.ndarray
    shift: np.ndarray
    k: np.ndarray
    right: np.ndarray

    @property
    def record(self) -> int:
        """Words per channel of `table`."""
        return 3 if self.fast else 2

    def table(self, n_pad: int) -> np.ndarray:
        """One record per output channel, padded to `n_pad` channels with copies of the last:
        {m, k, right} for the fast path, {m, shift} for the exact one."""
        parts = [self.multiplier, self.k, self.right] if self.fast else [self.multiplier, self.shift]
        table = np.stack(parts, axis=1)
        return np.concatenate([table, np.repeat(table[-1:], n_pad - len(table), axis=0)]).reshape(-1)


def plan_requant(bound: np.ndarray, multiplier: np.ndarray, shift: np.ndarray, offset: int) -> Requant:
    """The fast requantization where it is exact for accumulators up to `bound` per channel: twice
    the accumulator stays below 2^31, every shift is a right shift in [1, 31], every multiplier in
    [2^30, 2^31) (QuantizeMultiplier's range, so that the product's sign is the accumulator's;
    mcdk.h), and q + k - 1, with |q| <= bound + 1, cannot overflow."""
    m = multiplier.astype(np.int64)
    s = shift.astype(np.int64)
    right = np.maximum(-s, 0)
    k = np.where(right > 0, (np.int64(1) << np.maximum(right - 1, 0)) + (offset << np.minimum(right, 40)), 0)
    bound = bound.astype(np.int64)
    fast = bool(np.all(2 * bound < 2**31) and np.all((right >= 1) & (right <= 31))
                and np.all(bound + 2 + np.abs(k) <= INT32_MAX) and np.all((m >= 2**30) & (m < 2**31)))
    return Requant(fast, m, s, k, right)


def _words(data: np.ndarray) -> np.ndarray:
    """int8 bytes (a multiple of 4) as the little-endian int32 words a kernel loads them as."""
    return np.ascontiguousarray(data.astype(np.int8).reshape(-1)).view("<i4").astype(np.int64)


def _padded(a: np.ndarray, n_pad: int) -> np.ndarray:
    """One value per channel, padded to `n_pad` with copies of the last."""
    a = a.astype(np.int64)
    return np.concatenate([a, np.repeat(a[-1:], n_pad - len(a))])


def folded_bias(layer: Layer, w: np.ndarray) -> np.ndarray:
    """bias + input_offset * sum of each output channel's weights (rows of `w`)."""
    offset = layer.values["input_offset"]
    return constant(layer, "bias").astype(np.int64) + offset * w.astype(np.int64).sum(axis=1)


def records(layer: Layer, *parts: np.ndarray) -> tuple[Const, ...]:
    """The layer's constants as one array of words, `{layer.name}_constants`: per block of output
    channels (the rows of every part), the block's words of each part in turn, in the order the
    kernel reads them. One pointer walks them, so that the kernel's code depends on the layer's
    shape only (and no other register holds a constant's address)."""
    words = np.concatenate([np.asarray(p, dtype=np.int64).reshape(len(parts[0]), -1) for p in parts], axis=1)
    return (Const(f"{layer.name}_constants", "int32_t", words.reshape(-1)),)


def _fits(values: np.ndarray) -> bool:
    """Fits int32 (the DSP kernels' doubling is `plan_requant`'s to allow)."""
    return bool(np.all(np.abs(values) <= INT32_MAX))


# ---------------------------------------------------------------- convolution and fully connected


def as_convolution(layer: Layer) -> Layer:
    """A fully connected layer as the 1x1 convolution it is (rows as pixels), with one multiplier
    and shift per output channel; a convolution unchanged."""
    if layer.op.kind != "fully_connected":
        return layer
    v = layer.values
    rows, depth, c_out = v["input_dims"].n, v["filter_dims"].n, v["filter_dims"].c
    consts = layer.constants
    if not v["per_channel"]:
        consts = (*consts, Const(f"{layer.name}_multiplier", "int32_t", np.full(c_out, v["multiplier"])),
                  Const(f"{layer.name}_shift", "int32_t", np.full(c_out, v["shift"])))
    values = {**v, "input_dims": Dims(rows, 1, 1, depth), "filter_dims": Dims(c_out, 1, 1, depth),
              "output_dims": Dims(rows, 1, 1, c_out), "stride": (1, 1), "dilation": (1, 1), "padding": (0, 0)}
    return replace(layer, values=values, constants=consts, persistent_scratch=False)


def conv_applies(layer: Layer) -> bool:
    """An ungrouped convolution (or a fully connected layer) whose folded bias fits."""
    layer = as_convolution(layer)
    if groups(layer) != 1:
        return False
    return _fits(folded_bias(layer, constant(layer, "weights").reshape(layer.values["filter_dims"].n, -1)))


def _conv_values(layer: Layer) -> dict:
    v = layer.values
    x, f, y = v["input_dims"], v["filter_dims"], v["output_dims"]
    pad_top, pad_left = v["padding"]
    return {"pixels": y.n * y.h * y.w, "k": f.h * f.w * f.c, "cin": x.c, "cout": f.n,
            "zero_point": -v["input_offset"], "pad_top": pad_top, "pad_left": pad_left,
            "one_by_one": f.h == 1 and f.w == 1 and pad_top == 0 and pad_left == 0}


def conv_dsp(layer: Layer) -> Layer:
    """Generated for the DSP extension: two pixels' inputs widened once, then two output channels
    at a time, SMLAD over K, the requantization fused."""
    layer = as_convolution(layer)
    v = layer.values
    common = _conv_values(layer)
    n, k = common["cout"], common["k"]
    kp, n_pad = align4(k), n + n % 2
    w = constant(layer, "weights").reshape(n, k).astype(np.int64)
    bias = folded_bias(layer, w)
    requant = plan_requant(acc_bounds(w, bias), constant(layer, "multiplier"), constant(layer, "shift"),
                           v["output_offset"])
    wq = np.zeros((n_pad, kp), dtype=np.int64)
    wq[:n, :k] = w
    # per pair of channels: [group of 4 inputs][channel of the pair][4 bytes]
    weights = _words(wq.reshape(n_pad // 2, 2, kp // 4, 4).transpose(0, 2, 1, 3)).reshape(n_pad // 2, -1)
    direct = common["one_by_one"] and common["cin"] % 4 == 0
    cols_bytes = 2 * kp * 2  # two pixels of kp 16-bit values
    scratch = cols_bytes + (0 if direct else kp)
    consts = records(layer, _padded((2 if requant.fast else 1) * bias, n_pad).reshape(-1, 2), weights,
                     requant.table(n_pad).reshape(n_pad // 2, -1))
    values = {**v, **common, "isa": "dsp", "runtime": False, "kp": kp, "cout_pad": n_pad, "direct": direct,
              "fast": requant.fast, "record": requant.record, "cols_words": cols_bytes // 4,
              "scratch_bytes": scratch}
    return replace(layer, template="mcd_conv_dsp.c.j2", values=values, constants=consts,
                   scratch=_scratch(layer, scratch))


def _mve_requant(layer: Layer, order: np.ndarray, lanes: int) -> list[np.ndarray]:
    """Per block of `lanes` channels, the lanes' multipliers, -right and (when a channel shifts
    left) left, the padded channels taken in `order`."""
    shift = _padded(constant(layer, "shift"), len(order))[order]
    parts = [_padded(constant(layer, "multiplier"), len(order))[order], np.minimum(shift, 0)]
    if np.any(shift > 0):
        parts.append(np.maximum(shift, 0))
    return [p.reshape(-1, lanes) for p in parts]


def conv_mve(layer: Layer) -> Layer:
    """Generated for Helium: per pixel, four output channels at a time, VMLADAVA over 16 inputs
    per step (then 8), two steps per loop iteration, the four sums requantized as one vector."""
    return _conv_mve(layer, 2)


def conv_mve_x1(layer: Layer) -> Layer:
    """mcd_mve with one step per loop iteration: GCC allocates the registers of some layers'
    loops (and spills) differently, so either can be the faster by tens of percent."""
    return _conv_mve(layer, 1)


def _conv_mve(layer: Layer, steps_per_loop: int) -> Layer:
    layer = as_convolution(layer)
    v = layer.values
    common = _conv_values(layer)
    n, k = common["cout"], common["k"]
    direct = common["one_by_one"] and k % 8 == 0
    kp = k if direct else -(-k // 16) * 16
    chunks, tail = kp // 16, (kp % 16) // 8
    n_pad = -(-n // 4) * 4
    w = constant(layer, "weights").reshape(n, k).astype(np.int64)
    wq = np.zeros((n_pad, kp), dtype=np.int64)
    wq[:n, :k] = w
    blocks = wq.reshape(n_pad // 4, 4, kp)
    # per block of 4 channels: [16-byte step][channel][16 bytes], then [channel][the last 8]
    parts = [blocks[:, :, : 16 * chunks].reshape(n_pad // 4, 4, chunks, 16).transpose(0, 2, 1, 3)
             .reshape(n_pad // 4, -1), blocks[:, :, 16 * chunks:].reshape(n_pad // 4, -1)]
    requant = _mve_requant(layer, np.arange(n_pad), 4)
    # the requantization's vectors before the weights: loaded before the loop over K (registers
    # are free then), they leave the pointer at the weights, and at the next block's record after
    consts = records(layer, _padded(folded_bias(layer, w), n_pad).reshape(-1, 4), *requant,
                     _words(np.concatenate(parts, axis=1)).reshape(n_pad // 4, -1))
    scratch = 0 if direct else kp
    values = {**v, **common, "isa": "mve", "runtime": False, "kp": kp, "chunks16": chunks, "tail8": tail,
              "cout_pad": n_pad, "direct": direct, "any_left": len(requant) == 3,
              "steps_per_loop": steps_per_loop, "scratch_bytes": scratch}
    return replace(layer, template="mcd_conv_mve.c.j2", values=values, constants=consts,
                   scratch=_scratch(layer, scratch))


# ---------------------------------------------------------------- depthwise convolution


def depthwise_applies(layer: Layer, channel_block: int) -> bool:
    """A multiplier-1, undilated depthwise convolution whose channels come in blocks of
    `channel_block`, and whose folded bias fits."""
    v = layer.values
    return (v["ch_mult"] == 1 and tuple(v["dilation"]) == (1, 1) and v["input_dims"].c % channel_block == 0
            and _fits(folded_bias(layer, _depthwise_weights(layer).T)))


def _depthwise_weights(layer: Layer) -> np.ndarray:
    """[taps, C]."""
    f = layer.values["filter_dims"]
    return constant(layer, "weights").reshape(f.h * f.w, f.c).astype(np.int64)


def _rows(layer: Layer) -> dict:
    """The input rows a depthwise kernel keeps at once (a ring of KH), each
    `row_width` pixels wide with `pad_left` pixels of padding first."""
    v = layer.values
    x, f, y = v["input_dims"], v["filter_dims"], v["output_dims"]
    pad_top, pad_left = v["padding"]
    extent = (y.w - 1) * v["stride"][1] + f.w
    return {"pad_top": pad_top, "pad_left": pad_left, "row_width": max(extent, pad_left + x.w),
            "channels": x.c, "taps": f.h * f.w}


def depthwise_geometry(v: dict) -> dict[str, int]:
    """The values of a depthwise kernel's code (`v`, its generated values) that only its loops over
    rows and pixels use, not the channel loop: constants of the kernel, or, when layers of
    different geometries share one kernel (`v["runtime"]`, kernel_sharing), read from the header of
    its constants (`geometry_header`). Computed from `v` as it is rendered (a band copy of a
    streamed stage has its own rows and padding). The ring's rows are `row` units apart (words of
    two 16-bit values for the DSP kernel, bytes for Helium's); `first`: where a copied row starts
    in its ring row; `pixel_step`: one output pixel's step along a ring row."""
    x, y, c = v["input_dims"], v["output_dims"], v["channels"]
    per_unit = 2 if v["isa"] == "dsp" else 1  # channels per unit of the ring
    row = v["row_words"] if v["isa"] == "dsp" else v["row_bytes"]
    return {"scratch_bytes": v["scratch_bytes"], "row": row,
            "in_image": x.h * x.w * c, "out_image": y.h * y.w * c, "in_h": x.h, "last_row": x.h - 1,
            "in_row": x.w * c, "out_h": y.h, "out_w": y.w, "stride_h": v["stride"][0],
            "pad_top": v["pad_top"], "first": v["pad_left"] * c // per_unit,
            "pixel_step": v["stride"][1] * c // per_unit,
            **({"out_row": y.w * c} if v["isa"] == "mve" else {}), **_skip(v)}


def _skip(v: dict) -> dict[str, int]:
    """The last word of the header of a band copy that shares its kernel (`geometry_header`)."""
    return {"skip": 0} if v.get("shared_bands") else {}


def conv_geometry(v: dict) -> dict[str, int]:
    """As `depthwise_geometry`, for a convolution kernel that reads its input in place (1x1,
    stride 1): its pixels, input channels, and the iterations of its loop over K (`loops`) and of
    the DSP kernel's widening (`groups`); the shape of the loop over K (steps per iteration, the
    steps after it) and the output channels stay constants."""
    if v["isa"] == "dsp":
        groups = v["kp"] // 4
        return {"pixels": v["pixels"], "cin": v["cin"], "groups": groups, "loops": groups // min(groups, 4),
                **_skip(v)}
    steps = v["steps_per_loop"]
    return {"pixels": v["pixels"], "cin": v["cin"], "loops": v["chunks16"] // steps, **_skip(v)}


GEOMETRY = {"mcd_depthwise_dsp.c.j2": depthwise_geometry, "mcd_depthwise_mve.c.j2": depthwise_geometry,
            "mcd_conv_dsp.c.j2": conv_geometry, "mcd_conv_mve.c.j2": conv_geometry}


def geometry_applies(template: str, v: dict) -> bool:
    """Whether a kernel of `template` with values `v` can read its geometry at run time
    (`GEOMETRY`): a generated depthwise convolution, or a convolution that reads its input in place."""
    if template not in GEOMETRY:
        return False
    return "channels" in v or (v["direct"] and tuple(v["stride"]) == (1, 1))


def reads_geometry(layer: Layer) -> bool:
    """`geometry_applies` to a layer of the model (not a band copy of a streamed stage's member)."""
    return "band" not in layer.values and geometry_applies(layer.template, layer.values)


def geometry_header(template: str, v: dict, skip: int | None = None) -> np.ndarray:
    """The words a kernel of `template` reads its geometry `v` from when it reads it at run time,
    padded to a multiple of four (the constants after them keep their alignment to 16 bytes); with
    `skip` (the band copies of a stage's member, which share one kernel: one header per band, then
    the constants), the words from this header to the constants as the last."""
    words = list(GEOMETRY[template](v).values())
    if skip is not None:
        words[-1] = skip
    return np.array(words + [0] * (-len(words) % 4), dtype=np.int64)


def depthwise_dsp(layer: Layer) -> Layer:
    """Generated for the DSP extension: the input rows widened once into a ring of 16-bit rows
    (offset added, padding 0), four channels at a time, SMLABB/SMLATT per tap."""
    v = layer.values
    rows = _rows(layer)
    c, offset = rows["channels"], v["input_offset"]
    w = _depthwise_weights(layer)
    bias = constant(layer, "bias").astype(np.int64)
    requant = plan_requant(acc_bounds(w.T, bias, -128 + offset, 127 + offset), constant(layer, "multiplier"),
                           constant(layer, "shift"), v["output_offset"])
    scale = 2 if requant.fast else 1
    # per block of 4 channels: [tap][channels 0, 2, 1, 3 as 16-bit values], the order SXTB16
    # leaves an input word's four channels in
    blocks = (scale * w).reshape(rows["taps"], c // 4, 4)[:, :, [0, 2, 1, 3]].transpose(1, 0, 2)
    row_words = rows["row_width"] * c // 2
    scratch = 4 * row_words * v["filter_dims"].h
    weights = np.ascontiguousarray(blocks.astype(np.int16).reshape(-1)).view("<i4").astype(np.int64)
    consts = records(layer, (scale * bias).reshape(-1, 4), weights.reshape(c // 4, -1),
                     requant.table(c).reshape(c // 4, -1))
    values = {**v, **rows, "isa": "dsp", "runtime": False, "fast": requant.fast, "record": requant.record,
              "row_words": row_words, "offset_pair": (offset & 0xFFFF) * 0x10001, "scratch_bytes": scratch}
    return replace(layer, template="mcd_depthwise_dsp.c.j2", values=values, constants=consts,
                   scratch=_scratch(layer, scratch))


def depthwise_mve(layer: Layer) -> Layer:
    """Generated for Helium: the input rows copied once into a ring of rows padded with the zero
    point, eight channels at a time as 16-bit lanes, VMULLB/VMULLT into the even and the odd
    channels' sums."""
    v = layer.values
    rows = _rows(layer)
    c = rows["channels"]
    w = _depthwise_weights(layer)
    order = np.arange(c).reshape(-1, 4, 2).transpose(0, 2, 1).reshape(-1)  # per 8: 0 2 4 6 1 3 5 7
    row_bytes = rows["row_width"] * c
    scratch = row_bytes * v["filter_dims"].h
    requant = _mve_requant(layer, order, 8)
    weights = _words(w.reshape(rows["taps"], c // 8, 8).transpose(1, 0, 2)).reshape(c // 8, -1)  # [tap][8]
    consts = records(layer, folded_bias(layer, w.T)[order].reshape(-1, 8), weights, *requant)
    values = {**v, **rows, "isa": "mve", "runtime": False, "any_left": len(requant) == 3,
              "row_bytes": row_bytes, "zero_point": -v["input_offset"], "scratch_bytes": scratch}
    return replace(layer, template="mcd_depthwise_mve.c.j2", values=values, constants=consts,
                   scratch=_scratch(layer, scratch))


# ---------------------------------------------------------------- element-wise ADD


def add_applies(layer: Layer, isa: str) -> bool:
    """TFLite's ADD preparation (left shift 20, inputs rescaled by multipliers below one), so that
    nothing overflows: |x + offset| < 2^8, so (x + offset) << 20 and each rescaled input are below
    2^28 and their sum below 2^29. The DSP kernel also needs QuantizeMultiplier's multipliers: it
    computes the rounding doubling high multiply of (x + offset) << 20 as SMMLAR of twice that."""
    v = layer.values
    inputs_ok = all(v[f"input{i}_shift"] <= 0 and 0 <= v[f"input{i}_multiplier"] < 2**31 for i in (1, 2))
    if isa == "dsp":
        inputs_ok = inputs_ok and all(v[f"input{i}_multiplier"] >= 2**30 for i in (1, 2))
    return v["left_shift"] <= 20 and inputs_ok


def _add(layer: Layer, isa: str) -> Layer:
    v = layer.values
    right = max(-v["output_shift"], 0)
    # Each rescaled input is below 2^28 in magnitude and their sum below 2^29, so twice the sum
    # fits; the fast output path needs a right shift and k far from overflow.
    k = (1 << max(right - 1, 0)) + (v["output_offset"] << right) if right else 0
    fast = 1 <= right <= 31 and abs(k) < 2**30 and 2**30 <= v["output_multiplier"] < 2**31
    values = {**v, "isa": isa, "fast_out": fast, "out_k": k, "out_right": right,
              "in_right": (-v["input1_shift"], -v["input2_shift"])}
    return replace(layer, template=f"mcd_add_{isa}.c.j2", values=values)


def add_dsp(layer: Layer) -> Layer:
    """Generated for the DSP extension: per element, the three rescalings as SMMLAR and shifts."""
    return _add(layer, "dsp")


def add_mve(layer: Layer) -> Layer:
    """Generated for Helium: four elements at a time, VMLAS, VQRDMULH and rounding shifts."""
    return _add(layer, "mve")
