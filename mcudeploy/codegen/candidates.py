"""Lowering candidates: the ways one layer can be computed, bit-exactly, through the NN library.

A candidate is a rewrite of the plain lowering (mcudeploy.codegen.lower): a plain function
Layer -> Layer with its own template, and a test of whether it applies to a layer with a library.
`CANDIDATES` lists them per layer kind, the library's wrapper call first:

| kind | candidate | applies when |
| --- | --- | --- |
| conv2d | wrapper | groups == 1, or the library has grouped convolution |
| conv2d | as_depthwise | groups == C_in (one input channel per group) |
| conv2d | per_group | groups > 1 |
| depthwise_conv2d | wrapper | always |
| depthwise_conv2d | split_multiplier | channel multiplier > 1 |
| depthwise_conv2d | as_grouped | the library has grouped convolution |
| depthwise_conv2d | per_batch | batch > 1 |
| fully_connected | wrapper | per-tensor, or the library has `arm_fully_connected_per_channel_s8` |
| fully_connected | as_1x1_convolution | per-channel |

The rewrites are in mcudeploy.codegen.grouped_fallback, mcudeploy.codegen.depthwise_rewrites and
mcudeploy.codegen.library_calls (`fc_as_conv`).
Which candidate a build uses comes from a tuning file, where `--tune` measured them on the board's
simulator with the library in use (mcudeploy.tune), else from `DEFAULTS` for the CPU class.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from mcudeploy.codegen.depthwise_rewrites import as_grouped, per_batch, split_multiplier
from mcudeploy.codegen.grouped_fallback import as_depthwise, groups, per_group
from mcudeploy.codegen.library_calls import PER_CHANNEL_FC, fc_as_conv
from mcudeploy.codegen.lower import Layer, LoweredModel
from mcudeploy.nnlib import NNLibrary


@dataclass(frozen=True)
class Candidate:
    """One way to lower a layer: `rewrite` turns the plain lowering into it, for the layers (and
    libraries) `applies` accepts."""

    name: str
    rewrite: Callable[[Layer], Layer]
    applies: Callable[[Layer, NNLibrary], bool]

    @property
    def description(self) -> str:
        """The rewrite's docstring, first line."""
        return (self.rewrite.__doc__ or self.name).strip().splitlines()[0]


Table = Mapping[str, Sequence[Candidate]]
Chooser = Callable[[Layer, Sequence[Candidate]], Candidate]


def wrapper(layer: Layer) -> Layer:
    """The library's wrapper call, as lowered."""
    return layer


CANDIDATES: Table = {
    "conv2d": (
        Candidate("wrapper", wrapper, lambda layer, library: groups(layer) == 1 or library.grouped_conv),
        Candidate("as_depthwise", as_depthwise,
                  lambda layer, library: groups(layer) > 1 and layer.values["filter_dims"].c == 1),
        Candidate("per_group", per_group, lambda layer, library: groups(layer) > 1),
    ),
    "depthwise_conv2d": (
        Candidate("wrapper", wrapper, lambda layer, library: True),
        Candidate("split_multiplier", split_multiplier, lambda layer, library: layer.values["ch_mult"] > 1),
        Candidate("as_grouped", as_grouped, lambda layer, library: library.grouped_conv),
        Candidate("per_batch", per_batch, lambda layer, library: layer.values["input_dims"].n > 1),
    ),
    "fully_connected": (
        Candidate("wrapper", wrapper,
                  lambda layer, library: not layer.values["per_channel"] or library.has(PER_CHANNEL_FC)),
        Candidate("as_1x1_convolution", fc_as_conv, lambda layer, library: layer.values["per_channel"]),
    ),
}

# Without a tuning file: per CPU class and layer kind, the candidates in order of preference (the
# first that applies wins; none applying, the first candidate of the table that does). Measured
# with nnref on QEMU over the convolution test matrix (README, "Tuning"); Arm's CMSIS-NN has other
# fast paths, so with a pack `--tune` may well choose differently.
DEFAULTS: dict[str, dict[str, tuple[str, ...]]] = {
    "mve": {"conv2d": ("wrapper",), "depthwise_conv2d": ("split_multiplier", "wrapper")},
    "dsp": {"conv2d": ("wrapper",), "depthwise_conv2d": ("split_multiplier", "wrapper")},
    "plain": {"conv2d": ("wrapper",), "depthwise_conv2d": ("split_multiplier", "wrapper")},
}


def candidates_for(layer: Layer, library: NNLibrary, table: Table = CANDIDATES) -> list[Candidate]:
    """The candidates that apply to a plainly lowered `layer` with `library`, in table order (none
    for a 16x8 layer: its `_s16` call is its only lowering)."""
    if layer.values.get("s16"):
        return []
    return [c for c in table.get(layer.op.kind, ()) if c.applies(layer, library)]


def default_chooser(cpu_class: str) -> Chooser:
    """The documented default for a CPU class."""
    preferences = DEFAULTS.get(cpu_class, {})

    def choose(layer: Layer, options: Sequence[Candidate]) -> Candidate:
        by_name = {c.name: c for c in options}
        wanted = preferences.get(layer.op.kind, ())
        return next((by_name[name] for name in wanted if name in by_name), options[0])

    return choose


def choose_lowerings(lowered: LoweredModel, library: NNLibrary, choose: Chooser,
                     table: Table = CANDIDATES) -> LoweredModel:
    """Every layer with candidates rewritten as the one `choose` picks; its name is kept in the
    layer's values as `lowering` (model.c names it in the layer's comment)."""
    layers = []
    for layer in lowered.layers:
        options = candidates_for(layer, library, table)
        if options:
            chosen = choose(layer, options)
            layer = chosen.rewrite(layer)
            layer = replace(layer, values={**layer.values, "lowering": chosen.name})
        layers.append(layer)
    return replace(lowered, layers=tuple(layers))
