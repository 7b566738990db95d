"""What a streamed stage costs in instructions, estimated on the host from its layers' shapes.

A stage computes every row once (mcudeploy.codegen.stages), so its extra work is not recomputed
halos but what calling the library's kernel on each band instead of once costs:
- each extra call: the stage loop's row arithmetic, the call structs, the wrapper's dispatch and
  the kernel's set-up (`call`); a kernel that recomputes each output channel's filter sum (times
  the input offset) on every call does it again (`sum_per_byte` per filter byte: Arm's
  `arm_nn_mat_mult_nt_t_s8` on the DSP and plain paths, behind `arm_convolve_1x1_s8_fast`);
- the output pixels a call leaves outside the kernel's groups (it computes `group` pixels together,
  the rest one by one: `leftover_per_mac` per multiply-accumulate of such a pixel), beyond those the
  whole call leaves;
- the rows moved down in the windows (`move_per_byte`: a byte loop);
- once per kernel kind (convolution, depthwise) a stage calls: the kernel is then called with
  dimensions only known at run time, and the link-time optimisation no longer specialises it for
  the model's constant ones, so every layer of that kind runs slower (`despecialised`, a share of
  their instructions; measured with nnref on the M4, about 1.3%, not on the M55);
- a residual stage's ADD: a call per band, and the same loss of specialisation for every ADD of the
  model (`ADD_CALL`, `ADD_DESPECIALISED` per element).
A stage of generated kernels (mcd_kernels) calls a copy of each kernel per band shape, rendered
with its constants: nothing is despecialised and nothing recomputed per call but the stage loop and
the depthwise kernels' ring, cleared and refilled with the rows the band before read too
(`GeneratedCosts`).
The model's own instructions are estimated per layer from its multiply-accumulates by kind
(pointwise, depthwise, other convolutions, the rest) and, for convolutions, its output bytes
(`Rates`), so that a stage's cost is a share of the inference.

Every constant was fitted to instructions counted on QEMU, one inference, with the layers whole and
with stages forced (DS-CNN and MobileNetV1-0.25, Arm's CMSIS-NN 7.0.0 and nnref, on the M4 and the
M55); docs/memory.md gives the agreement. The plain path (no DSP extension) is costed as the DSP
one, not measured. A library whose code was not read
(mcudeploy.codegen.walks) is costed as Arm's, with the filter sums recomputed on every call.
"""

from __future__ import annotations

from dataclasses import dataclass

from mcudeploy.codegen.lower import Layer, LoweredModel
from mcudeploy.codegen.mcd_kernels import geometry_applies
from mcudeploy.codegen.stages import GENERATED_KINDS, KINDS, Member, Schedule, kind_of, members_of, schedule


@dataclass(frozen=True)
class CallCosts:
    """Instructions a stage adds (see the module)."""

    call: float
    sum_per_byte: float
    leftover_per_mac: float
    move_per_byte: float
    despecialised: float


@dataclass(frozen=True)
class Rates:
    """A whole layer's instructions: per multiply-accumulate of a pointwise convolution, a
    depthwise one, another convolution, anything else; per output byte of a convolution."""

    pointwise: float
    depthwise: float
    conv: float
    other: float
    conv_output: float


@dataclass(frozen=True)
class GeneratedCosts:
    """Instructions a stage of generated kernels adds (a copy of each kernel per band shape: nothing
    despecialised, no filter sums): per extra call (the stage loop, the dispatch to the band's
    copy); per byte of the ring a depthwise kernel clears on each call; per byte of the input
    rows a depthwise kernel widens or copies into its ring again (those the band before read too);
    per byte moved in the windows; a residual stage's ADD (its block rendered for one row) per extra
    call and per row; and, as a fraction of a member's own instructions, its band copies made one
    kernel that reads its geometry at run time (emit._share_bands: depthwise and in-place 1x1)."""

    call: float
    clear_per_byte: float
    reread_per_byte: float
    move_per_byte: float
    add_call: float
    add_row: float
    runtime_geometry: float


PER_LAYER = 300  # a layer's call, around its kernel
# call, sum_per_byte, leftover_per_mac, move_per_byte, despecialised
ARM_DSP = CallCosts(440, 3.5, 0.58, 4.5, 0.002)
ARM_MVE = CallCosts(340, 0.0, 0.46, 3.0, 0.0)
NNREF_DSP = CallCosts(530, 0.0, 0.0, 4.5, 0.013)
NNREF_MVE = CallCosts(200, 0.0, 0.0, 2.0, 0.0)  # two stages measured, noisier (code layout)
COSTS = {("nnref", "mve"): NNREF_MVE, ("nnref", "dsp"): NNREF_DSP,
         ("arm", "mve"): ARM_MVE, ("arm", "dsp"): ARM_DSP}
# call, clear_per_byte, reread_per_byte, move_per_byte: newlib's memset stores a word in 4
# instructions (3.2 on the M55, fitted); the rest fitted to MobileNet's layers 2-3 streamed 1, 2
# and 4 rows at a time (QEMU, docs/memory.md), the reread from the widening (DSP) and the
# predicated copy (Helium) loops
# and the run-time geometry fitted on the same (1.6% of the members' estimated instructions on both
# CPUs: 24-32 k on the M4, 12 k on the M55)
GENERATED_COSTS = {"dsp": GeneratedCosts(300, 1.0, 1.8, 3.2, 60, 10, 0.016),
                   "mve": GeneratedCosts(300, 0.8, 0.3, 3.6, 60, 10, 0.016)}
# A residual stage's ADD through the library: arm_elementwise_add_s8 called on each band (per extra
# call, `ADD_CALL`), and with a run-time size, so the link-time optimisation no longer specialises it
# for each ADD's constant one: every ADD of the model then takes `ADD_DESPECIALISED` more instructions
# per element (ResNet-8's ADDs 7 and 11 on QEMU: nnref +27 on the M4 and the M55, a third of its
# 76-86; Arm's 7.0.0 +24 on the M4, +2.5 on the M55)
ADD_CALL = 100
ADD_DESPECIALISED = {("nnref", "dsp"): 27.0, ("nnref", "mve"): 27.0,
                     ("arm", "dsp"): 24.0, ("arm", "mve"): 2.5}
# fitted per layer on the three benchmark models (nnref's M55 rates for its MVE path); the generated
# kernels (mcd_*) as Arm's on the same CPU class times one factor, fitted on the three models' totals
# with the default lowering (0.56 on the M4, 0.64 on the M55); the plain path as the DSP one
RATES = {("nnref", "dsp"): Rates(6.0, 15.9, 6.9, 6.8, 172), ("nnref", "mve"): Rates(3.6, 15.1, 5.3, 4.8, 209),
         ("arm", "dsp"): Rates(1.2, 8.2, 1.8, 2.8, 59), ("arm", "mve"): Rates(0.03, 3.4, 0.21, 0.77, 24),
         ("generated", "dsp"): Rates(0.67, 4.6, 1.0, 1.57, 33),
         ("generated", "mve"): Rates(0.02, 2.18, 0.13, 0.49, 15.4)}


def library_kind(release: str | None) -> str:
    """"nnref" for nnref, "arm" for any other library (a release of mcudeploy.codegen.walks by
    its name, or None: not read)."""
    return "nnref" if release == "nnref" else "arm"


def _cpu(cpu_class: str) -> str:
    return "mve" if cpu_class == "mve" else "dsp"


@dataclass(frozen=True)
class KernelTraits:
    """How a library's kernel spends per call: `group` output pixels computed together, and
    whether it recomputes the filter sums on every call."""

    group: int
    sums_per_call: bool


def kernel_traits(layer: Layer, release: str | None, cpu_class: str) -> KernelTraits:
    """The traits of the kernel that `release`'s wrapper runs for `layer` (walks.py's dispatch)."""
    if release == "nnref":
        return KernelTraits(1, False)  # pixel by pixel, nothing precomputed per call
    mve = cpu_class == "mve"
    if kind_of(layer) == "depthwise":
        return KernelTraits(4 if mve else 1, False)
    v = layer.values
    f = v["filter_dims"]
    pointwise = (f.h, f.w) == (1, 1) and tuple(v["padding"]) == (0, 0)
    if pointwise and tuple(v["stride"]) == (1, 1):  # arm_convolve_1x1_s8_fast
        return KernelTraits(4, False) if mve else KernelTraits(2, True)
    return KernelTraits(4 if mve else 2, release is None)  # im2col of 4 or 2 pixels


def layer_instructions(layer: Layer, release: str | None, cpu_class: str) -> float:
    """A whole layer's instructions, estimated (see `Rates`)."""
    library = "generated" if layer.template.startswith("mcd_") else library_kind(release)
    rates = RATES[(library, _cpu(cpu_class))]
    if layer.template not in KINDS and layer.template not in GENERATED_KINDS:
        return PER_LAYER + layer.macs * rates.other
    v = layer.values
    f, y = v["filter_dims"], v["output_dims"]
    if kind_of(layer) == "depthwise":
        return PER_LAYER + layer.macs * rates.depthwise
    rate = rates.pointwise if (f.h, f.w) == (1, 1) else rates.conv
    return PER_LAYER + layer.macs * rate + y.h * y.w * y.c * rates.conv_output


def model_instructions(lowered: LoweredModel, release: str | None, cpu_class: str) -> int:
    """The model's instructions per inference, estimated."""
    return round(sum(layer_instructions(layer, release, cpu_class) for layer in lowered.layers))


def stage_instructions(lowered: LoweredModel, first: int, last: int, band: int, release: str | None,
                       cpu_class: str, banded: frozenset[str] = frozenset()) -> int:
    """The instructions layers first..last of `lowered` (a chain) add as one stage of `band` rows;
    `banded`: the templates earlier stages already call on bands (their despecialisation is paid)."""
    layers = lowered.layers[first:last + 1]
    members = members_of(lowered, first, last)
    plan = schedule(members, band)
    if layers[0].template in GENERATED_KINDS:
        return _generated_instructions(members, plan, cpu_class)
    costs = COSTS[(library_kind(release), _cpu(cpu_class))]
    extra = plan.moved_bytes * costs.move_per_byte
    for k, member in enumerate(members):
        layer = member.layer
        if member.skip is not None:  # an ending ADD: one call of the library's per band
            extra += (len(plan.bands) - 1) * ADD_CALL
            continue
        traits = kernel_traits(layer, release, cpu_class)
        f, y = layer.values["filter_dims"], layer.values["output_dims"]
        calls = [c for calls in plan.bands for c in calls if c.k == k]
        sums = f.n * f.h * f.w * f.c * costs.sum_per_byte if traits.sums_per_call else 0
        extra += (len(calls) - 1) * (costs.call + sums)
        leftover = sum((c.end - c.first) * y.w % traits.group for c in calls) - y.h * y.w % traits.group
        extra += leftover * layer.macs / max(1, y.h * y.w) * costs.leftover_per_mac
    kinds = {layer.template for layer in layers} - banded
    extra += costs.despecialised * sum(layer_instructions(layer, release, cpu_class)
                                       for layer in lowered.layers if layer.template in kinds)
    if "add.c.j2" in kinds:
        per_element = ADD_DESPECIALISED[library_kind(release), _cpu(cpu_class)]
        extra += per_element * sum(layer.values["block_size"] * layer.values["repeats"]
                                   for layer in lowered.layers if layer.template == "add.c.j2")
    return round(extra)


def _generated_instructions(members: list[Member], plan: Schedule, cpu_class: str) -> int:
    """What a stage of generated kernels adds (`GeneratedCosts`). Not counted: a DSP convolution
    computes two pixels together, so a band of an odd number of pixels computes one alone."""
    costs = GENERATED_COSTS[_cpu(cpu_class)]
    extra = plan.moved_bytes * costs.move_per_byte
    for k, member in enumerate(members):
        layer = member.layer
        calls = [c for calls in plan.bands for c in calls if c.k == k]
        if member.skip is not None:  # an ending ADD: its block once per row, its rows function per band
            extra += (len(calls) - 1) * costs.add_call + member.out_rows * costs.add_row
            continue
        extra += (len(calls) - 1) * costs.call
        if len(calls) > 1 and geometry_applies(layer.template, layer.values):
            extra += costs.runtime_geometry * layer_instructions(layer, None, cpu_class)
        if kind_of(layer) == "depthwise":
            reread = sum(c.in_end - c.in_first for c in calls) - member.in_rows
            extra += ((len(calls) - 1) * layer.values["scratch_bytes"] * costs.clear_per_byte
                      + reread * member.in_row_bytes * costs.reread_per_byte)
    return round(extra)
