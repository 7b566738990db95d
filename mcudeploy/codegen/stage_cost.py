"""What a streamed stage costs in instructions, estimated on the host from its layers' shapes.

A stage computes every row once (mcudeploy.codegen.stages), so its extra work is not recomputed
halos but what calling a kernel on each band instead of once costs:
- each extra call: the stage loop's row arithmetic, the call structs, the wrapper's dispatch and
  the kernel's set-up (`CALL`); a kernel that recomputes each output channel's filter sum (times
  the input offset) on every call does that again (`SUM_PER_BYTE` per filter byte: Arm's
  `arm_nn_mat_mult_nt_t_s8` on the DSP and plain paths, behind `arm_convolve_1x1_s8_fast`);
- the pixels a call leaves outside the kernel's groups (it computes `group` pixels together; the
  rest go one by one, slower: `LEFTOVER_PER_MAC` per multiply-accumulate), beyond those the whole
  call leaves;
- the rows moved down in the windows (`MOVE_PER_BYTE`).
The model's own instructions are estimated from its multiply-accumulates (`PER_MAC`, by lowering,
library and CPU class) and a fixed cost per layer, so that a stage's cost is a share of the
inference. The constants were fitted to instructions counted on QEMU (docs/memory.md gives the
agreement); a library whose code was not read (mcudeploy.codegen.walks) is costed as the worst
read, Arm's DSP path.
"""

from __future__ import annotations

from dataclasses import dataclass

from mcudeploy.codegen.lower import Layer, LoweredModel
from mcudeploy.codegen.stages import KINDS, Member, schedule

CALL = 400  # instructions per extra kernel call
SUM_PER_BYTE = 2.5  # recomputing filter sums, per filter byte
LEFTOVER_PER_MAC = 0.5  # a pixel computed alone instead of in a group, per multiply-accumulate
MOVE_PER_BYTE = 0.5  # a window's rows moved down
PER_LAYER = 300  # a layer's call, for the model's own instructions
# instructions per multiply-accumulate of a whole layer: (library release, CPU class) -> rate
PER_MAC = {("nnref", "plain"): 11.0, ("nnref", "dsp"): 11.0, ("nnref", "mve"): 10.0,
           ("arm", "plain"): 6.0, ("arm", "dsp"): 2.8, ("arm", "mve"): 0.7,
           ("generated", "plain"): 2.0, ("generated", "dsp"): 1.5, ("generated", "mve"): 0.45}


@dataclass(frozen=True)
class KernelTraits:
    """How a library's kernel spends per call: `group` output pixels computed together, and
    whether it recomputes the filter sums on every call."""

    group: int
    sums_per_call: bool


def kernel_traits(layer: Layer, release: str | None, cpu_class: str) -> KernelTraits:
    """The traits of the kernel `release` ("nnref", "arm", None: not read) runs for `layer`."""
    if release == "nnref":
        return KernelTraits(1, False)  # pixel by pixel, nothing precomputed per call
    mve = cpu_class == "mve"
    v = layer.values
    f = v["filter_dims"]
    if KINDS[layer.template] == "depthwise":
        return KernelTraits(4 if mve else 1, False)
    pointwise = (f.h, f.w) == (1, 1) and tuple(v["padding"]) == (0, 0)
    if pointwise and tuple(v["stride"]) == (1, 1):  # arm_convolve_1x1_s8_fast
        return KernelTraits(4, False) if mve else KernelTraits(2, True)
    return KernelTraits(4 if mve else 2, False)  # im2col of 4 or 2 pixels; sums in the offsets


def release_kind(name: str | None) -> str | None:
    """"nnref", "arm" or None for a release of mcudeploy.codegen.walks (by its name)."""
    if name is None:
        return None
    return "nnref" if name == "nnref" else "arm"


def stage_instructions(layers: list[Layer], band: int, release: str | None, cpu_class: str) -> int:
    """The instructions `layers` (a chain) take more as one stage of `band` rows than called whole."""
    members = [Member.of(layer) for layer in layers]
    plan = schedule(members, band)
    extra = plan.moved_bytes * MOVE_PER_BYTE
    for k, member in enumerate(members):
        layer = member.layer
        traits = kernel_traits(layer, release, cpu_class)
        y = layer.values["output_dims"]
        calls = [c for calls in plan.bands for c in calls if c.k == k]
        per_call = CALL + (layer.values["filter_dims"].n * layer.values["filter_dims"].h
                           * layer.values["filter_dims"].w * layer.values["filter_dims"].c * SUM_PER_BYTE
                           if traits.sums_per_call else 0)
        extra += (len(calls) - 1) * per_call
        leftover = sum((c.end - c.first) * y.w % traits.group for c in calls) - y.h * y.w % traits.group
        extra += leftover * layer.macs / max(1, y.h * y.w) * LEFTOVER_PER_MAC
    return round(extra)


def model_instructions(lowered: LoweredModel, release: str | None, cpu_class: str) -> int:
    """The model's instructions per inference, estimated from its multiply-accumulates."""
    library = release_kind(release) or "arm"
    total = 0.0
    for layer in lowered.layers:
        kind = "generated" if layer.template.startswith("mcd_") else library
        total += PER_LAYER + layer.macs * PER_MAC.get((kind, cpu_class), PER_MAC[(kind, "dsp")])
    return round(total)
