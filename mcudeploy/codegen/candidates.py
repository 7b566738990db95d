"""Lowering candidates: the ways one layer can be computed, bit-exactly, through the NN library
or by a kernel mcudeploy generates for the layer.

A candidate is a rewrite of the plain lowering (mcudeploy.codegen.lower): a plain function
Layer -> Layer with its own template, a test of whether it applies to a layer with a library, and
the CPU classes it runs on (all when none are named). `CANDIDATES` lists them per layer kind, the
library's wrapper call first:

| kind | candidate | applies when |
| --- | --- | --- |
| conv2d | wrapper | groups == 1, or the library has grouped convolution |
| conv2d | as_depthwise | groups == C_in (one input channel per group) |
| conv2d | per_group | groups > 1 |
| conv2d, fully_connected | mcd_dsp, mcd_mve, mcd_mve_x1 | groups == 1 (the folded bias fits int32) |
| depthwise_conv2d | wrapper | always |
| depthwise_conv2d | split_multiplier | channel multiplier > 1 |
| depthwise_conv2d | as_grouped | the library has grouped convolution |
| depthwise_conv2d | per_batch | batch > 1 |
| depthwise_conv2d | mcd_dsp, mcd_mve | multiplier 1, no dilation, C a multiple of 4 (mcd_mve: 8) |
| fully_connected | wrapper | per-tensor, or the library has `arm_fully_connected_per_channel_s8` |
| fully_connected | as_1x1_convolution | per-channel |
| add | wrapper | always |
| add | mcd_dsp, mcd_mve | TFLite's ADD quantization (left shift 20, input multipliers below one) |

mcd_dsp runs on every CPU class (the DSP extension's instructions, or mcdk.h's portable C for
them), mcd_mve and mcd_mve_x1 (the same with one step per loop iteration) on Helium CPUs only.
The rewrites are in mcudeploy.codegen.grouped_fallback, mcudeploy.codegen.depthwise_rewrites,
mcudeploy.codegen.library_calls (`fc_as_conv`) and mcudeploy.codegen.mcd_kernels. Which candidate
a build uses comes from a tuning file, where `--tune` measured them on the board's simulator with
the library in use (mcudeploy.tune), else from `DEFAULTS` for the CPU class.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from mcudeploy.codegen.depthwise_rewrites import as_grouped, per_batch, split_multiplier
from mcudeploy.codegen.grouped_fallback import as_depthwise, groups, per_group
from mcudeploy.codegen.library_calls import PER_CHANNEL_FC, fc_as_conv
from mcudeploy.codegen.lower import Layer, LoweredModel
from mcudeploy.codegen.mcd_kernels import (
    add_applies,
    add_dsp,
    add_mve,
    conv_applies,
    conv_dsp,
    conv_mve,
    conv_mve_x1,
    depthwise_applies,
    depthwise_dsp,
    depthwise_mve,
)
from mcudeploy.nnlib import NNLibrary


@dataclass(frozen=True)
class Candidate:
    """One way to lower a layer: `rewrite` turns the plain lowering into it, for the layers (and
    libraries) `applies` accepts, on the CPU classes `cpu_classes` names (all when empty)."""

    name: str
    rewrite: Callable[[Layer], Layer]
    applies: Callable[[Layer, NNLibrary], bool]
    cpu_classes: tuple[str, ...] = ()

    @property
    def description(self) -> str:
        """The rewrite's docstring, first line."""
        return (self.rewrite.__doc__ or self.name).strip().splitlines()[0]


Table = Mapping[str, Sequence[Candidate]]
Chooser = Callable[[Layer, Sequence[Candidate]], Candidate]


def wrapper(layer: Layer) -> Layer:
    """The library's wrapper call, as lowered."""
    return layer


DSP_CPUS = ("dsp", "mve", "plain")  # without the DSP extension, mcdk.h's portable C
MVE_CPUS = ("mve",)

CANDIDATES: Table = {
    "conv2d": (
        Candidate("wrapper", wrapper, lambda layer, library: groups(layer) == 1 or library.grouped_conv),
        Candidate("as_depthwise", as_depthwise,
                  lambda layer, library: groups(layer) > 1 and layer.values["filter_dims"].c == 1),
        Candidate("per_group", per_group, lambda layer, library: groups(layer) > 1),
        Candidate("mcd_dsp", conv_dsp, lambda layer, library: conv_applies(layer), DSP_CPUS),
        Candidate("mcd_mve", conv_mve, lambda layer, library: conv_applies(layer), MVE_CPUS),
        Candidate("mcd_mve_x1", conv_mve_x1, lambda layer, library: conv_applies(layer), MVE_CPUS),
    ),
    "depthwise_conv2d": (
        Candidate("wrapper", wrapper, lambda layer, library: True),
        Candidate("split_multiplier", split_multiplier, lambda layer, library: layer.values["ch_mult"] > 1),
        Candidate("as_grouped", as_grouped, lambda layer, library: library.grouped_conv),
        Candidate("per_batch", per_batch, lambda layer, library: layer.values["input_dims"].n > 1),
        Candidate("mcd_dsp", depthwise_dsp, lambda layer, library: depthwise_applies(layer, 4), DSP_CPUS),
        Candidate("mcd_mve", depthwise_mve, lambda layer, library: depthwise_applies(layer, 8), MVE_CPUS),
    ),
    "fully_connected": (
        Candidate("wrapper", wrapper,
                  lambda layer, library: not layer.values["per_channel"] or library.has(PER_CHANNEL_FC)),
        Candidate("as_1x1_convolution", fc_as_conv, lambda layer, library: layer.values["per_channel"]),
        Candidate("mcd_dsp", conv_dsp, lambda layer, library: conv_applies(layer), DSP_CPUS),
        Candidate("mcd_mve", conv_mve, lambda layer, library: conv_applies(layer), MVE_CPUS),
        Candidate("mcd_mve_x1", conv_mve_x1, lambda layer, library: conv_applies(layer), MVE_CPUS),
    ),
    "add": (
        Candidate("wrapper", wrapper, lambda layer, library: True),
        Candidate("mcd_dsp", add_dsp, lambda layer, library: add_applies(layer, "dsp"), DSP_CPUS),
        Candidate("mcd_mve", add_mve, lambda layer, library: add_applies(layer, "mve"), MVE_CPUS),
    ),
}

# mcudeploy's own kernels (mcudeploy.codegen.mcd_kernels)
GENERATED = frozenset({"mcd_dsp", "mcd_mve", "mcd_mve_x1"})


def library_only(table: Table = CANDIDATES) -> Table:
    """`table` without the generated kernels: every layer through the NN library's calls."""
    return {kind: tuple(c for c in cs if c.name not in GENERATED) for kind, cs in table.items()}


# Without a tuning file: per CPU class and layer kind, the candidates in order of preference (the
# first that applies wins; none applying, the first candidate of the table that does). Measured on
# QEMU over the benchmark models and the convolution test matrix (README, "Tuning" and "Generated
# kernels"): the generated kernels were the fastest for every layer they apply to with nnref on the
# M4, M7 and M55 (mcd_mve ahead of mcd_dsp on every layer), for all but six small fully connected
# layers on the M3, and for all but two layers with Arm's CMSIS-NN 7.0.0 on the M4 and the M55; for
# the other layers `split_multiplier` beat the wrapper with nnref (with a pack, run `--tune`).
_DSP = {"conv2d": ("mcd_dsp", "wrapper"), "depthwise_conv2d": ("mcd_dsp", "split_multiplier", "wrapper"),
        "fully_connected": ("mcd_dsp", "wrapper"), "add": ("mcd_dsp", "wrapper")}
DEFAULTS: dict[str, dict[str, tuple[str, ...]]] = {
    "mve": {kind: ("mcd_mve", *names) for kind, names in _DSP.items()},
    "dsp": _DSP,
    "plain": _DSP,
}


def candidates_for(layer: Layer, library: NNLibrary, table: Table = CANDIDATES,
                   cpu_class: str | None = None) -> list[Candidate]:
    """The candidates that apply to a plainly lowered `layer` with `library` on a CPU of
    `cpu_class` (None: only those for every CPU), in table order (none for a 16x8 layer: its `_s16`
    call is its only lowering)."""
    if layer.values.get("s16"):
        return []
    return [c for c in table.get(layer.op.kind, ())
            if (not c.cpu_classes or cpu_class in c.cpu_classes) and c.applies(layer, library)]


def default_chooser(cpu_class: str) -> Chooser:
    """The documented default for a CPU class."""
    preferences = DEFAULTS.get(cpu_class, {})

    def choose(layer: Layer, options: Sequence[Candidate]) -> Candidate:
        by_name = {c.name: c for c in options}
        wanted = preferences.get(layer.op.kind, ())
        return next((by_name[name] for name in wanted if name in by_name), options[0])

    return choose


def choose_lowerings(lowered: LoweredModel, library: NNLibrary, choose: Chooser,
                     table: Table = CANDIDATES, cpu_class: str | None = None) -> LoweredModel:
    """Every layer with candidates rewritten as the one `choose` picks; its name is kept in the
    layer's values as `lowering` (model.c names it in the layer's comment)."""
    layers = []
    for layer in lowered.layers:
        options = candidates_for(layer, library, table, cpu_class)
        if options:
            chosen = choose(layer, options)
            layer = chosen.rewrite(layer)
            layer = replace(layer, values={**layer.values, "lowering": chosen.name})
        layers.append(layer)
    return replace(lowered, layers=tuple(layers))
