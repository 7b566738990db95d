"""One function for the generated kernels that are the same code: which layers share whose kernel.

A generated kernel (mcd_kernels; templates mcd_conv_*.c.j2, mcd_depthwise_*.c.j2) is a function of
the layer's shape and quantization only: its constants, input, output and scratch are the
arguments its layer's entry point passes (`lN(void)`, templates/_mcd.j2 `call`). Two layers whose
rendered kernels are the same text once each layer's name is abstracted away compute with the same
code, so the later one's entry point calls the earlier one's kernel and its own is not written
(templates/mcd_shared.c.j2). The key is the rendered text, not a list of values: any constant the
code bakes in (a shape, a stride, a padding, an offset, an activation bound, the requantization's
path) that differs makes the texts differ. GCC's identical code folding (-fipa-icf, on at -O2)
already keeps one copy in the firmware mcudeploy builds; written once in NAME.c, the kernel is
also one copy for a compiler that does not fold (`mcudeploy export`), and compiled once.

Layers of different geometries share a kernel too when reading the values only their loops over
rows and pixels use at run time, from a header of their constants (mcd_kernels.GEOMETRY), makes
their kernels the same text (`runtime_geometry`); the others keep those values as constants.

Every layer keeps its entry point (per-layer timing, localisation of a wrong layer, the scratch
query) and calls its kernel directly, so the call graph (mcudeploy/stack.py) stays static. A
layer of a streamed stage has no entry point of its own (its band kernels are in the stage's body)
and shares no kernel with other layers; its band copies share one when they are the same code
reading their geometry at run time (emit._share_bands).
"""

from __future__ import annotations

import re

# The templates whose kernels are shared: their entry point, `call` of _mcd.j2, is the body's last
# function and passes (input, output, scratch, constants) to `{name}_kernel`.
SHARED_TEMPLATES = frozenset({"mcd_conv_dsp.c.j2", "mcd_conv_mve.c.j2", "mcd_depthwise_dsp.c.j2",
                              "mcd_depthwise_mve.c.j2"})
FOLLOWER_TEMPLATE = "mcd_shared.c.j2"
_PLACEHOLDER = "@LAYER@"


def _entry_point(name: str) -> str:
    return f"static int32_t {name}(void)\n{{\n    return {name}_kernel("


def kernel_text(name: str, body: str) -> str | None:
    """The code of a layer's rendered body before its entry point (the helpers and the kernel;
    not its scratch query, which every layer keeps), with the layer's name abstracted away; None
    when the body has no entry point of the form `call` writes (a layer of a streamed stage)."""
    start = body.rfind(_entry_point(name))
    if start < 0:
        return None
    query = rf"static int32_t {re.escape(name)}_get_buffer_size\(void\)\n\{{\n    return \d+;\n\}}\n"
    code = re.sub(query, "", body[:start])
    return re.sub(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9])", _PLACEHOLDER, code)


def runtime_geometry(layers: list[tuple[str, str, str, str]]) -> set[str]:
    """For layers given as (name, template, body rendered with the geometry as constants, body
    rendered with it read at run time), the layers whose kernel reads its geometry at run time: those
    whose run-time kernels are the same text while their constant kernels are not (some other
    layer's kernel, of a different geometry, is then the same code as theirs). The others keep their
    constants: they share nothing more by reading them."""
    groups: dict[str, list[tuple[str, str | None]]] = {}
    for name, template, constant_body, runtime_body in layers:
        text = kernel_text(name, runtime_body)
        if text is not None:
            groups.setdefault(f"{template}\n{text}", []).append((name, kernel_text(name, constant_body)))
    return {name for group in groups.values() if len({text for _, text in group}) > 1 for name, _ in group}


def shared_kernels(layers: list[tuple[str, str, str]]) -> dict[str, str]:
    """For layers given as (name, template, rendered body) in the order NAME.c defines them, the
    name of the earlier layer whose kernel each later layer with the same kernel text calls."""
    first: dict[str, str] = {}
    leaders: dict[str, str] = {}
    for name, template, body in layers:
        text = kernel_text(name, body) if template in SHARED_TEMPLATES else None
        if text is None:
            continue
        key = f"{template}\n{text}"
        if key in first:
            leaders[name] = first[key]
        else:
            first[key] = name
    return leaders
