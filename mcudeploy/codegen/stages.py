"""Streamed stages: a chain of convolutions computed a few rows at a time, so that the maps between
them are never whole (patch-based inference, MCUNetV2, with full-width patches).

A stage is a chain of layers, each the only reader of the one before it: convolution or depthwise
wrapper calls over batch 1, or all of them mcudeploy's generated kernels (mcd_kernels) of such
layers. Its first layer reads the stage's input, a whole tensor in the arena;
its last writes the stage's output, a whole tensor too; between them each layer keeps only the rows
of its output that the next one still needs, in a window buffer in the stage's scratch.

The schedule (`schedule`, and the same loop in C in templates/_stage.j2): for each band of `band`
output rows of the last layer, from the top,
1. backwards from the last layer, each layer's new rows: from the first row it has not computed
   (or the first row the next layer needs, if later) to the last row the next layer needs; and the
   input rows those need (`Member.inputs`: stride, padding, window extent, clipped to the input);
2. forwards, each layer with new rows drops the rows of its window that no later layer will read
   (moving the rest to the window's start), then calls the library's kernel on its input rows,
   as a tensor of that many rows with the top padding the band still has, writing the new rows
   after the ones it keeps.

A generated kernel has its layer's rows and top padding as constants: it is rendered once more for
each band shape (input rows, output rows, top padding) its stage calls it with (`BandKernel`:
the first band, the middle ones, the last), the rest of its code and its constants the layer's,
and the stage calls the copy for the band directly (stage.c.j2).

Each output row is computed exactly once, from the same products as a whole call would sum (the
kernel sees the same window of real rows; rows beyond a band's input are padding only where the
whole input ends), so the result is bit-exact; the cost is one kernel call per layer and band and
the rows moved in the windows. The windows hold at most `capacity` rows, which `schedule` finds by
running the same loop; the C loop checks it and fails the layer rather than overflow.

The stage's output may overlap its input: band b writes its rows after its first layer has read
all the input rows it needs, so `access_order.band_shift` over the bands' reads and writes gives
how far below the input the output may start.

Layers of a stage keep their index: the last becomes the stage, the others do nothing at their
step and their outputs are never stored (`LoweredModel.internal`), so the host cannot read them.

A residual stage ends in the ADD of its chain's output with the stage's own input (a ResNet block):
the ADD is a member of one row per row (`Member.add`), called on each band's rows of both, and its
output is written over the stage's input, offset for offset, like any in-place element-wise output
(mcudeploy.codegen.arena). `residual_refusal` says when that would not be safe, from the schedule.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from mcudeploy.codegen.access_order import NO_READ, band_gap, band_shift
from mcudeploy.codegen.grouped_fallback import CompositeScratch, align4
from mcudeploy.codegen.lower import FixedScratch, Layer, LoweredModel, ScratchQuery
from mcudeploy.ir import Graph

STAGE_TEMPLATE = "stage.c.j2"
MEMBER_TEMPLATE = "stage_member.c.j2"
KINDS = {"conv2d.c.j2": "conv", "depthwise_conv2d.c.j2": "depthwise"}
# mcudeploy's generated kernels (mcd_kernels), called on a band through a copy rendered for each band
# shape the stage uses (its rows and top padding constants, like the whole layer's)
GENERATED_KINDS = {"mcd_conv_dsp.c.j2": "conv", "mcd_conv_mve.c.j2": "conv",
                   "mcd_depthwise_dsp.c.j2": "depthwise", "mcd_depthwise_mve.c.j2": "depthwise"}
# an ADD may end a stage (its sum of the chain's output and the stage's input written over that input,
# band by band): the library's arm_elementwise_add_s8 and the generated kernels, all element-wise
ADD_TEMPLATES = {"add.c.j2": False, "mcd_add_dsp.c.j2": True, "mcd_add_mve.c.j2": True}  # generated?
QUERIES = {"conv": ("arm_convolve_wrapper_s8_get_buffer_size", "conv"),
           "depthwise": ("arm_depthwise_conv_wrapper_s8_get_buffer_size", "dw_conv")}
MAX_MEMBERS = 8


@dataclass(frozen=True)
class Member:
    """One layer of a stage, along the rows."""

    layer: Layer
    stride: int
    pad: int
    extent: int  # rows one output row's window spans: (KH - 1) * dilation + 1
    in_rows: int
    out_rows: int
    in_row_bytes: int
    out_row_bytes: int
    skip: int | None = None  # an ADD: which of its operands (0, 1) is the stage's input

    @staticmethod
    def of(layer: Layer) -> Member:
        v = layer.values
        x, y, f = v["input_dims"], v["output_dims"], v["filter_dims"]
        return Member(layer, v["stride"][0], v["padding"][0], (f.h - 1) * v["dilation"][0] + 1,
                      x.h, y.h, x.w * x.c, y.w * y.c)

    @staticmethod
    def add(layer: Layer, before: Member, skip: int) -> Member:
        """An ADD ending a stage: row r of its output from row r of the member `before`'s output and
        row r of the stage's input, operand `skip` (the same shape: `residual_refusal`)."""
        return Member(layer, 1, 0, 1, before.out_rows, before.out_rows, before.out_row_bytes,
                      before.out_row_bytes, skip)

    def inputs(self, first: int, end: int) -> tuple[int, int]:
        """The input rows that output rows [first, end) read."""
        return (max(0, first * self.stride - self.pad),
                min(self.in_rows, (end - 1) * self.stride - self.pad + self.extent))


@dataclass(frozen=True)
class Call:
    """One kernel call of a band: member `k` computes its output rows [first, end) from its input
    rows [in_first, in_end), with `pad` rows of padding above them."""

    k: int
    first: int
    end: int
    in_first: int
    in_end: int
    pad: int


@dataclass(frozen=True)
class Schedule:
    """The calls band by band; the rows each window must hold; the lowest input byte each band
    reads (its first member's input rows, and an ending ADD's rows of the stage's input) and the end
    of the output bytes it writes (for the overlap)."""

    bands: tuple[tuple[Call, ...], ...]
    capacity: tuple[int, ...]  # rows, one per member but the last
    reads_low: tuple[int, ...]
    writes_end: tuple[int, ...]
    moved_bytes: int  # rows moved down inside the windows, over the whole stage


def schedule(members: list[Member], band: int) -> Schedule:
    """Run the stage's loop (the module's docstring; the C is templates/_stage.j2)."""
    n = len(members)
    lo, hi = [0] * n, [0] * n
    capacity = [0] * (n - 1)
    bands, reads_low, writes_end = [], [], []
    moved = 0
    total = members[-1].out_rows
    for first in range(0, total, band):
        need = [(0, 0)] * n
        need[-1] = (first, min(first + band, total))
        new: list[tuple[int, int, int, int] | None] = [None] * n
        for k in reversed(range(n)):
            a = need[k][0] if k == n - 1 else max(hi[k], need[k][0])
            z = need[k][1]
            if a < z:
                new[k] = (a, z, *members[k].inputs(a, z))
            if k > 0:
                need[k - 1] = new[k][2:] if new[k] else (0, 0)
        calls = []
        for k in range(n):
            if new[k] is None:
                continue
            a, z, in_a, in_z = new[k]
            if k < n - 1:
                if need[k][0] > lo[k]:
                    moved += max(0, hi[k] - need[k][0]) * members[k].out_row_bytes
                    lo[k] = need[k][0]
                    hi[k] = max(hi[k], lo[k])
                capacity[k] = max(capacity[k], need[k][1] - lo[k])
                hi[k] = need[k][1]
            m = members[k]
            calls.append(Call(k, a, z, in_a, in_z, max(0, m.pad - a * m.stride)))
        bands.append(tuple(calls))
        reads = [c.in_first for c in calls if c.k == 0]
        reads += [c.first for c in calls if members[c.k].skip is not None]
        reads_low.append(min(reads) * members[0].in_row_bytes if reads else NO_READ)
        writes_end.append(calls[-1].end * members[-1].out_row_bytes)
    return Schedule(tuple(bands), tuple(capacity), tuple(reads_low), tuple(writes_end), moved)


def is_member(layer: Layer) -> bool:
    """A layer a stage can hold: a convolution or depthwise wrapper call, or a generated kernel of a
    convolution or depthwise layer, over batch 1."""
    if layer.template in GENERATED_KINDS:
        return layer.op.kind in ("conv2d", "depthwise_conv2d") and layer.values["input_dims"].n == 1
    return (layer.template in KINDS and type(layer.scratch) is ScratchQuery
            and layer.values["input_dims"].n == 1)


def kind_of(layer: Layer) -> str:
    """"conv", "depthwise" or "add": what a member computes."""
    if layer.template in ADD_TEMPLATES:
        return "add"
    return KINDS.get(layer.template) or GENERATED_KINDS[layer.template]


def is_generated(layer: Layer) -> bool:
    """A member computed by one of mcudeploy's generated kernels."""
    return layer.template in GENERATED_KINDS or ADD_TEMPLATES.get(layer.template, False)


def _readers(lowered: LoweredModel) -> dict[str, int]:
    """How many times each stored tensor is read by a layer."""
    readers: dict[str, int] = {}
    for layer in lowered.layers:
        for name in layer.inputs:
            key = lowered.storage(name)
            readers[key] = readers.get(key, 0) + 1
    return readers


def chains(graph: Graph, lowered: LoweredModel) -> list[tuple[int, int]]:
    """Every run of layers [i, j] (two or more) that may be one stage: members, each reading only
    the output of the one before, which nothing else reads; the last may be an ADD of that output
    with another tensor (a residual stage, formed only if `residual_refusal` finds no reason not to)."""
    readers = _readers(lowered)
    outputs = {lowered.storage(name) for name in graph.outputs}
    found = []
    for i, first in enumerate(lowered.layers):
        if not is_member(first) or lowered.storage(first.output) in lowered.internal:
            continue
        for j in range(i + 1, min(i + MAX_MEMBERS, len(lowered.layers))):
            prev, layer = lowered.layers[j - 1], lowered.layers[j]
            link = lowered.storage(prev.output)
            if (readers.get(link) != 1 or is_generated(layer) != is_generated(first)
                    or link in outputs or link in lowered.variables):
                break
            if layer.template in ADD_TEMPLATES and link in map(lowered.storage, layer.inputs):
                found.append((i, j))  # a residual stage ends at its ADD
                break
            if not is_member(layer) or lowered.storage(layer.inputs[0]) != link:
                break
            found.append((i, j))
    return found


def members_of(lowered: LoweredModel, i: int, j: int) -> list[Member]:
    """Layers i..j of a chain as members of a stage (an ending ADD's skip operand: the one that is
    not the chain's output)."""
    layers = lowered.layers
    members = [Member.of(layers[k]) for k in range(i, j + (layers[j].template not in ADD_TEMPLATES))]
    if len(members) <= j - i:
        link = lowered.storage(layers[j - 1].output)
        skip = 1 if lowered.storage(layers[j].inputs[0]) == link else 0
        members.append(Member.add(layers[j], members[-1], skip))
    return members


def residual_refusal(lowered: LoweredModel, i: int, j: int, band: int) -> str | None:
    """Why layers i..j, ending in an ADD, cannot be a residual stage of `band` rows (None: they can,
    or they do not end in an ADD). The stage writes the ADD's output over the stage's input, band
    by band, at the same offsets (the arena's in-place element-wise output: element i of both
    operands is read before element i of the output is written). That needs: the ADD's other operand
    is the stage's input, of the chain output's shape (no broadcast), read by nothing else; and no
    band reads a row of the stage's input that an earlier band's ADD has written (the schedule's
    reads and writes, `access_order.band_gap` at most 0)."""
    layers = lowered.layers
    add = layers[j]
    if add.template not in ADD_TEMPLATES:
        return None
    members = members_of(lowered, i, j)
    source = lowered.storage(layers[i].inputs[0])
    other = lowered.storage(add.inputs[members[-1].skip])
    if other != source:
        return (f"the ADD's other operand ({add.inputs[members[-1].skip]}) is not the stage's input "
                f"({layers[i].inputs[0]})")
    x, y = layers[i].values["input_dims"], layers[j - 1].values["output_dims"]
    if (x.n, x.h, x.w, x.c) != (y.n, y.h, y.w, y.c) or add.values["repeats"] != 1:
        return f"the ADD's operands differ in shape ({x.h}x{x.w}x{x.c} and {y.h}x{y.w}x{y.c})"
    if _readers(lowered).get(source) != 2:
        return f"the stage's input ({layers[i].inputs[0]}) has another reader"
    if source in lowered.variables:
        return f"the stage's input ({layers[i].inputs[0]}) is a variable"
    plan = schedule(members, band)
    gap = band_gap(list(plan.writes_end), list(plan.reads_low))
    if gap > 0:
        rows = -(-gap // members[-1].out_row_bytes)
        return (f"a band's ADD would overwrite {rows} row{'s' if rows > 1 else ''} of the stage's input "
                "that a later band still reads")
    return None


ScratchOf = Callable[[Layer], int]


def stage(lowered: LoweredModel, i: int, j: int, band: int, scratch_of: ScratchOf,
          ) -> tuple[LoweredModel, int, int] | None:
    """Layers i..j as one stage computing `band` rows at a time: the model, the stage's scratch
    bytes and how far below its input its output may start; None if a band would read no row, or
    the stage ends in an ADD that `residual_refusal` refuses."""
    layers = lowered.layers
    members = members_of(lowered, i, j)
    plan = schedule(members, band)
    calls = [c for calls in plan.bands for c in calls]
    if any(c.in_end <= c.in_first for c in calls) or residual_refusal(lowered, i, j, band):
        return None
    residual = members[-1].skip is not None
    windows, offset = [], 0
    for k, rows in enumerate(plan.capacity):
        windows.append(offset)
        offset += align4(rows * members[k].out_row_bytes)
    configs = {(c.k, c.in_end - c.in_first, c.end - c.first, c.pad) for c in calls
               if members[c.k].skip is None}  # an ADD needs no scratch and is rendered once
    kernel_scratch = max(scratch_of(_band_layer(members[k].layer, *config)) for k, *config in configs)
    total = offset + align4(kernel_scratch)
    last = layers[j]
    generated = is_generated(last)
    values = {
        "members": [{"name": m.layer.name, "kind": kind_of(m.layer), "values": m.layer.values,
                     "generated": generated, "template": m.layer.template,
                     "bands": _band_kernels(m, k, configs) if generated else [],
                     "window": windows[k] if k < len(windows) else None,
                     "capacity": plan.capacity[k] if k < len(windows) else 0,
                     "row_bytes": m.out_row_bytes, "stride": m.stride, "pad": m.pad,
                     "extent": m.extent, "in_rows": m.in_rows, "skip": m.skip,
                     "aligned": m.in_row_bytes % 4 == 0 and m.out_row_bytes % 4 == 0,
                     "inlined": generated and kind_of(m.layer) == "conv" and not m.layer.values.get("direct")}
                    for k, m in enumerate(members)],
        "generated": generated, "total_bytes": total, "residual": residual,
        "input_dims": layers[i].values["input_dims"],
        "output_dims": members[-1 - residual].layer.values["output_dims"],
        "band": band, "in_row_bytes": members[0].in_row_bytes, "out_rows": members[-1].out_rows,
        "kernel_offset": offset, "kernel_bytes": kernel_scratch, "configs": sorted(configs),
        "windows_bytes": offset, "moved_bytes": plan.moved_bytes, "calls": len(calls),
        "lowering": f"stage of layers {i}-{j}, {band} row{'s' if band > 1 else ''} at a time"
                    + (", its ADD written over its input" if residual else ""),
    }
    if generated:
        query: ScratchQuery = FixedScratch(f"{last.name}_get_buffer_size", "fixed", size=total)
    else:  # asked with the last convolution's dims (its own query asks for every band's: stage.c.j2)
        function, args = QUERIES[KINDS[members[-1 - residual].layer.template]]
        query = CompositeScratch(f"{last.name}_get_buffer_size", "fixed" if residual else args,
                                 library_function=function, fixed_bytes=offset)
    stage_layer = replace(
        last, template=STAGE_TEMPLATE, inputs=layers[i].inputs[:1], values=values, scratch=query,
        macs=sum(m.layer.macs for m in members))
    placeholders = [replace(layers[k], template=MEMBER_TEMPLATE, inputs=(), scratch=None, macs=0,
                            values={"stage": last.name}) for k in range(i, j)]
    new_layers = (*layers[:i], *placeholders, stage_layer, *layers[j + 1:])
    internal = lowered.internal | {lowered.storage(layers[k].output) for k in range(i, j)}
    shift = band_shift(list(plan.writes_end), list(plan.reads_low))
    return replace(lowered, layers=new_layers, internal=frozenset(internal)), total, shift


@dataclass(frozen=True)
class BandKernel:
    """A generated member's kernel as rendered for one band shape: its template with these rows
    and this top padding as its constants, under `name` (`values["band"]` tells the template to
    leave out the layer's own call and query)."""

    name: str
    values: dict
    in_rows: int
    out_rows: int
    pad: int
    scratch_expr: str = "0"


def _band_kernels(member: Member, k: int, configs: set[tuple[int, int, int, int]]) -> list[BandKernel]:
    """The copies of generated member `k`'s kernel its stage calls: one per band shape; an ending ADD's
    once, on one row (the stage calls it on each row of a band)."""
    if member.skip is not None:
        values = {**member.layer.values, "block_size": member.out_row_bytes, "band": True}
        return [BandKernel(f"{member.layer.name}_band0", values, 1, 1, 0)]
    shapes = sorted(config[1:] for config in configs if config[0] == k)
    return [band_kernel(member.layer, n, *shape) for n, shape in enumerate(shapes)]


def band_kernel(layer: Layer, n: int, in_rows: int, out_rows: int, pad: int) -> BandKernel:
    """`layer` (a generated kernel) on bands of `in_rows` input rows, `pad` of padding above."""
    v = _band_layer(layer, in_rows, out_rows, pad).values
    y = v["output_dims"]
    values = {**v, "pad_top": pad, "band": True}
    if "pixels" in v:
        values["pixels"] = y.n * y.h * y.w
    return BandKernel(f"{layer.name}_band{n}", values, in_rows, out_rows, pad)


def _band_layer(layer: Layer, in_rows: int, out_rows: int, pad: int) -> Layer:
    """`layer` as called on a band: its input and output dims that many rows, that padding above."""
    v = layer.values
    x, y = v["input_dims"], v["output_dims"]
    return replace(layer, values={**v, "input_dims": replace(x, h=in_rows),
                                  "output_dims": replace(y, h=out_rows),
                                  "padding": (pad, v["padding"][1])})
