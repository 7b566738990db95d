"""Render the lowered, planned model as a C library, `NAME.c`/`NAME.h` (Jinja2: model.c.j2 and its
parts, one template per layer kind; the API is model.h.j2), with `mcd_harness.c`, the verification
firmware's binding of that API (harness.c.j2), and describe it in `manifest.json`
(mcudeploy.manifest) for the host side of a run. When a layer is computed by a generated kernel,
the headers its code includes (mcd_kernels.HEADERS) are copied beside NAME.c: the library is the
files the manifest lists."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import jinja2
import numpy as np

from mcudeploy import __version__
from mcudeploy.codegen.arena import ArenaLayout
from mcudeploy.codegen.cname import macro_prefix
from mcudeploy.codegen.ctext import comment_text
from mcudeploy.codegen.fit import state_bytes
from mcudeploy.codegen.kernel_sharing import FOLLOWER_TEMPLATE, runtime_geometry, shared_kernels
from mcudeploy.codegen.lower import Const, Layer, LoweredModel
from mcudeploy.codegen.mcd_kernels import (
    HEADERS,
    conv_geometry,
    depthwise_geometry,
    geometry_applies,
    geometry_header,
    is_generated,
    reads_geometry,
)
from mcudeploy.codegen.stages import STAGE_TEMPLATE
from mcudeploy.ir import Graph
from mcudeploy.manifest import IoInfo, LayerInfo, Manifest, TensorInfo
from mcudeploy.resources import firmware_dir

_HASH_PLACEHOLDER = "MCD_MODEL_HASH_PLACEHOLDER"
HARNESS_FILE = "mcd_harness.c"
# The C condition under which a compiler for Arm does not take the CPU class's CMSIS-NN path.
_OTHER_CPU_CLASS = {
    "mve": "!defined(__ARM_FEATURE_MVE)",
    "dsp": "!defined(__ARM_FEATURE_DSP) || defined(__ARM_FEATURE_MVE)",
    "plain": "defined(__ARM_FEATURE_DSP) || defined(__ARM_FEATURE_MVE)",
}
_VARIABLE_CTYPES = {"uint8": "uint8_t", "int16": "int16_t"}  # else int8_t
_QUERY_ARGS = {
    "conv": "&{n}_params, &{n}_input_dims, &{n}_filter_dims, &{n}_output_dims",
    "dw_conv": "&{n}_params, &{n}_input_dims, &{n}_filter_dims, &{n}_output_dims",
    "fc": "&{n}_filter_dims",
    "avgpool": "{ow}, {c}",
    "fixed": "",  # scratch of a size fixed on the host (lower.FixedScratch: generated kernels, LSTM)
}
# Depthwise layers keep their wrapper call's arguments as a struct (templates/_conv_call.j2) when the
# model has CALL_STRUCTS_FROM or more of them: with fewer, the compiler inlines the library's function
# into each call with its constant dims, which is faster and, for one or two, smaller. Convolutions
# keep their own calls: through the struct, nnref's convolution took up to 1.7% more instructions on
# the M4 (ResNet-8, DS-CNN), as the compiler no longer specialises it.
CALL_KINDS = {"depthwise_conv2d.c.j2": "depthwise"}
KERNELS = {"depthwise": "arm_depthwise_conv_wrapper_s8", "conv": "arm_convolve_wrapper_s8"}  # by call kind
STAGE_KERNELS = {**KERNELS, "add": "arm_elementwise_add_s8"}  # what a stage's members call
CALL_STRUCTS_FROM = 3


def _c_array(values: np.ndarray, per_line: int = 16) -> str:
    items = [str(int(v)) for v in np.asarray(values).reshape(-1)]
    lines = (", ".join(items[i : i + per_line]) for i in range(0, len(items), per_line))
    return ",\n".join("    " + line for line in lines)


def c_float(value: float) -> str:
    """A float32 as a C float literal that reads back as the same float32 (`0.0113391f`)."""
    return f"{np.float32(value)!s}f"


def template_environment() -> jinja2.Environment:
    """The environment of every C and linker-script template: `c_array` for constants, `c_float`
    for float32 values, `comment` for any text from outside mcudeploy (codegen/ctext.py), and
    `depthwise_geometry` and `conv_geometry` (mcd_kernels) for the generated kernels."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("mcudeploy.codegen", "templates"),
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["c_array"] = _c_array
    env.filters["c_float"] = c_float
    env.filters["comment"] = comment_text
    env.globals["depthwise_geometry"] = depthwise_geometry
    env.globals["conv_geometry"] = conv_geometry
    return env


@dataclass(frozen=True)
class _LayerView:
    """A layer with the addresses the templates need filled in; `in_place`: the tensor whose
    storage its output reuses; `overlap`: how many bytes below its input its output starts.
    The `_offset` fields place its first input, output and scratch in the arena (None: elsewhere,
    or no scratch), for the constant call structs (templates/_conv_call.j2), which cannot hold
    addresses in an arena that NAME_set_arena() may move."""

    layer: Layer
    input_exprs: list[str]
    output_expr: str
    scratch_expr: str
    scratch_bytes: int
    query_call: str
    shapes: str
    in_place: str | None
    overlap: int | None = None
    input_offset: int | None = None
    output_offset: int | None = None
    scratch_offset: int | None = None
    body: str = ""

    @property
    def in_arena(self) -> bool:
        """Whether its first input and its output are both in the arena (what a call struct needs)."""
        return self.input_offset is not None and self.output_offset is not None

    def __getattr__(self, item: str):
        return getattr(self.layer, item)


def address(lowered: LoweredModel, layout: ArenaLayout, name: str) -> str:
    """The C expression of a tensor's storage: a place in the arena, or a variable's array (`0`
    for a tensor computed inside a streamed stage, which has none)."""
    key = lowered.storage(name)
    if key in lowered.variables:
        return lowered.variables[key]
    if key in lowered.internal:
        return "0"
    return f"arena + {layout.tensor_offsets[key]}"


def _arena_offset(lowered: LoweredModel, layout: ArenaLayout, layer: Layer, name: str) -> int | None:
    """Where a layer's operand lies in the arena; None for a constant, a variable or no storage."""
    key = lowered.storage(name)
    if name in layer.const_inputs or key in lowered.variables or key in lowered.internal:
        return None
    return layout.tensor_offsets[key]


def _view(layer: Layer, graph: Graph, lowered: LoweredModel, layout: ArenaLayout,
          scratch: int) -> _LayerView:
    def expr(name: str) -> str:
        if name in layer.const_inputs:
            return layer.const_inputs[name]
        return address(lowered, layout, name)

    scratch_offset = layout.scratch_offsets[layer.index] if scratch > 0 else None
    scratch_expr = f"arena + {scratch_offset}" if scratch_offset is not None else "0"
    query = ""
    if layer.scratch is not None:
        v = layer.values
        args = _QUERY_ARGS[layer.scratch.args].format(
            n=layer.name, ow=v["output_dims"].w, c=v["input_dims"].c
        )
        query = f"{layer.scratch.function}({args})"
    shapes = " + ".join(str(list(graph.tensor(n).shape)) for n in layer.inputs)
    shapes += f" -> {list(graph.tensor(layer.output).shape)}"
    return _LayerView(layer, [expr(n) for n in layer.inputs], expr(layer.output), scratch_expr,
                      scratch, query, shapes, layout.in_place.get(layer.index),
                      layout.overlaps.get(layer.index),
                      _arena_offset(lowered, layout, layer, layer.inputs[0]) if layer.inputs else None,
                      _arena_offset(lowered, layout, layer, layer.output), scratch_offset)


def _struct_calls(view: _LayerView, call_kinds: list[str]) -> str:
    """The library calls a layer makes through a call struct (templates/_conv_call.j2), as C, for
    `check_layer`: the layer's body names only the struct."""
    layer = view.layer
    kinds = {CALL_KINDS.get(layer.template)} & set(call_kinds) if view.in_arena else set()
    if layer.template == STAGE_TEMPLATE:
        kinds = {member["kind"] for member in layer.values["members"] if not member["generated"]}
    return "".join(f"\n{STAGE_KERNELS[kind]}(...);" for kind in sorted(kinds))


def _generated_stage(layer: Layer) -> bool:
    """A streamed stage of generated kernels (their code is in its body)."""
    return layer.template == STAGE_TEMPLATE and layer.values["generated"]


def _tensor_place(lowered: LoweredModel, layout: ArenaLayout, name: str) -> str:
    """A tensor's storage as an entry of NAME.c's tensor table: (variable, offset in the arena);
    one computed inside a streamed stage has none (its entry's size is 0)."""
    key = lowered.storage(name)
    if key in lowered.variables:
        return f"(int8_t *){lowered.variables[key]}, 0u"
    if key in lowered.internal:
        return "NULL, 0u"
    return f"NULL, {layout.tensor_offsets[key]}u"


def _int_type(dtype: str) -> dict[str, int]:
    """An input's or output's integer type (int8, int16) for the templates: its bytes and range."""
    info = np.iinfo(dtype)
    return {"bytes": info.bits // 8, "min": int(info.min), "max": int(info.max)}


def _runtime(layer: Layer) -> Layer:
    """A generated layer whose kernel reads its geometry from the header of its constants
    (mcd_kernels.geometry_header)."""
    values = {**layer.values, "runtime": True}
    header = geometry_header(layer.template, values)
    constants = tuple(Const(c.name, c.ctype, np.concatenate([header, c.values]))
                      if c.name == f"{layer.name}_constants" else c for c in layer.constants)
    return replace(layer, values=values, constants=constants)


def _read_geometry(render: Callable[[_LayerView], _LayerView], views: list[_LayerView]) -> list[_LayerView]:
    """Each generated layer that shares its kernel with layers of other geometries by reading its
    geometry at run time (kernel_sharing.runtime_geometry), so rendered."""
    candidates = {v.layer.name: render(replace(v, layer=_runtime(v.layer))) for v in views
                  if reads_geometry(v.layer)}
    runtime = runtime_geometry([(v.layer.name, v.layer.template, v.body, candidates[v.layer.name].body)
                                for v in views if v.layer.name in candidates])
    return [candidates[v.layer.name] if v.layer.name in runtime else v for v in views]


def _share_bands(env: jinja2.Environment, views: list[_LayerView]) -> list[_LayerView]:
    """Each member of a streamed stage of generated kernels whose band copies are the same code
    once they read their geometry at run time calls one kernel for every band: its constants get
    one header per band (mcd_kernels.geometry_header with `skip`), and the stage passes the
    band's (stage.c.j2)."""
    headers: dict[str, np.ndarray] = {}
    for view in views:
        if not _generated_stage(view.layer):
            continue
        members = []
        for m in view.layer.values["members"]:
            bands = [replace(b, values={**b.values, "runtime": True, "shared_bands": True})
                     for b in m["bands"]]
            texts = {re.sub(rf"(?<![A-Za-z0-9_]){b.name}(?![A-Za-z0-9])", "@",
                            env.get_template(m["template"]).render(l=b)) for b in bands}
            if len(bands) < 2 or not geometry_applies(m["template"], m["values"]) or len(texts) > 1:
                members.append({**m, "shared_bands": False})
                continue
            header = len(geometry_header(m["template"], bands[0].values, 0))
            skips = [header * (len(bands) - i) for i in range(len(bands))]
            headers[m["name"]] = np.concatenate([geometry_header(m["template"], b.values, skip)
                                                 for b, skip in zip(bands, skips, strict=True)])
            members.append({**m, "bands": bands, "shared_bands": True, "header": header})
        views[views.index(view)] = replace(view, layer=replace(
            view.layer, values={**view.layer.values, "members": members}))
    return [replace(v, layer=replace(v.layer, constants=tuple(
        Const(c.name, c.ctype, np.concatenate([headers[v.layer.name], c.values]))
        if c.name == f"{v.layer.name}_constants" else c for c in v.layer.constants)))
        if v.layer.name in headers else v for v in views]


def _share_kernels(env: jinja2.Environment, views: list[_LayerView]) -> list[_LayerView]:
    """Each layer whose generated kernel is the same code as an earlier layer's with only its entry
    point, which calls the earlier kernel (kernel_sharing)."""
    leaders = shared_kernels([(v.layer.name, v.layer.template, v.body) for v in views])
    by_name = {v.layer.name: v.layer for v in views}
    template = env.get_template(FOLLOWER_TEMPLATE)
    return [replace(v, body=template.render(l=v, leader=by_name[leaders[v.layer.name]]).strip())
            if v.layer.name in leaders else v for v in views]


def emit_model(
    graph: Graph, lowered: LoweredModel, layout: ArenaLayout, scratch: dict[int, int],
    out_dir: Path, *, source: str, board: str, cpu_class: str, library: str, name: str = "model",
    placement: dict[str, str] | None = None, check_layer: Callable[[Layer, str], None] | None = None,
    stages: list[dict] | None = None,
) -> Manifest:
    """Write NAME.c, NAME.h (and the generated kernels' headers if a layer uses one), mcd_harness.c
    and manifest.json into `out_dir`, NAME being the library's name (a C identifier,
    mcudeploy.codegen.cname); returns the manifest. Each layer's rendered C is passed to
    `check_layer` before anything is written; `stages` (the streamed stages taken or declined,
    mcudeploy.codegen.memory.StageDecision) go to the manifest as they are."""
    env = template_environment()
    views = [_view(layer, graph, lowered, layout, scratch.get(layer.index, 0))
             for layer in lowered.layers]
    kinds = [CALL_KINDS[v.layer.template] for v in views if v.layer.template in CALL_KINDS and v.in_arena]
    call_kinds = sorted(kind for kind in set(kinds) if kinds.count(kind) >= CALL_STRUCTS_FROM)
    def render(v: _LayerView) -> _LayerView:
        return replace(v, body=env.get_template(v.layer.template).render(l=v, call_kinds=call_kinds).strip())

    views = _share_bands(env, views)
    views = _share_kernels(env, _read_geometry(render, [render(v) for v in views]))
    for view in views:
        if check_layer is not None:
            check_layer(view.layer, view.body + _struct_calls(view, call_kinds))

    def io(name: str) -> IoInfo:
        t = graph.tensor(name)
        return IoInfo(name, list(t.shape), t.scale, t.zero_point,
                      layout.tensor_offsets[lowered.storage(name)], t.nbytes, t.dtype)

    # A tensor computed inside a streamed stage has no storage: size 0 on the device, not listed.
    stored = [lowered.storage(layer.output) not in lowered.internal for layer in lowered.layers]
    tensors = [
        TensorInfo(i, layer.output, layer.index,
                   layout.tensor_offsets.get(lowered.storage(layer.output), -1),
                   graph.tensor(layer.output).nbytes if stored[i] else 0,
                   list(graph.tensor(layer.output).shape))
        for i, layer in enumerate(lowered.layers)
    ]
    variables = [
        {"symbol": symbol, "initial": graph.variables[name].reshape(-1),
         "ctype": _VARIABLE_CTYPES.get(graph.tensor(name).dtype, "int8_t"), "name": name}
        for name, symbol in lowered.variables.items()
    ]
    constants = [c for view in views for c in view.layer.constants]
    weight_bytes = sum(c.nbytes for c in constants)
    inputs, outputs = [io(n) for n in graph.inputs], [io(n) for n in graph.outputs]
    generated = any(is_generated(layer) or _generated_stage(layer) for layer in lowered.layers)
    stage_members = [m for layer in lowered.layers if layer.template == STAGE_TEMPLATE
                     for m in layer.values["members"]]
    headers = {h: (firmware_dir() / "include" / h).read_text(encoding="utf-8")
               for h in (HEADERS if generated else ())}
    context = {
        "name": name, "macro": macro_prefix(name), "library": library,
        "cpu_check": _OTHER_CPU_CLASS[cpu_class],
        "version": __version__, "source": source, "board": board, "cpu_class": cpu_class,
        "layers": views, "constants": constants, "arena_bytes": layout.plan.arena_bytes,
        "lower_bound": layout.plan.lower_bound, "planner": layout.plan.algorithm,
        "weight_bytes": weight_bytes, "kernel_headers": bool(headers),
        "inputs": inputs, "outputs": outputs,
        "tensors": tensors, "model_hash": _HASH_PLACEHOLDER, "variables": variables,
        "tensor_places": [_tensor_place(lowered, layout, layer.output) for layer in lowered.layers],
        "float_names": dict(graph.float_io),
        "float_inputs": [i for i, io_ in enumerate(inputs) if io_.name in graph.float_io],
        "float_outputs": [i for i, io_ in enumerate(outputs) if io_.name in graph.float_io],
        "call_kinds": call_kinds, "kernels": KERNELS,
        "row_kinds": sorted({m["kind"] for m in stage_members if not m["generated"] and m["kind"] != "add"}),
        "row_add": any(m["kind"] == "add" and not m["generated"] for m in stage_members),
        "generated_rows": [{"name": m["name"], "add": m["kind"] == "add", "inlined": m["inlined"]}
                           for m in stage_members if m["generated"]],
        "stage_max": max((len(layer.values["members"]) for layer in lowered.layers
                          if layer.template == STAGE_TEMPLATE), default=0),
        "int_types": {io_.dtype: _int_type(io_.dtype) for io_ in inputs + outputs},
    }
    text = env.get_template("model.c.j2").render(**context)
    digest = hashlib.sha256(text.encode()).digest()[:8]
    text = text.replace(_HASH_PLACEHOLDER, ", ".join(f"0x{b:02x}" for b in digest))
    header = env.get_template("model.h.j2").render(**context)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{name}.c").write_text(text, encoding="utf-8")
    (out_dir / f"{name}.h").write_text(header, encoding="utf-8")
    for header, header_text in headers.items():
        (out_dir / header).write_text(header_text, encoding="utf-8")
    (out_dir / HARNESS_FILE).write_text(env.get_template("harness.c.j2").render(**context), "utf-8")
    manifest = Manifest(
        mcudeploy_version=__version__, source=source, board=board, cpu_class=cpu_class, name=name,
        files={f"{name}.c": hashlib.sha256(text.encode()).hexdigest(),
               f"{name}.h": hashlib.sha256(header.encode()).hexdigest(),
               **{h: hashlib.sha256(t.encode()).hexdigest() for h, t in headers.items()}},
        library=library, model_hash=digest.hex(), arena_bytes=layout.plan.arena_bytes,
        lower_bound=layout.plan.lower_bound, planner=layout.plan.algorithm,
        weight_bytes=weight_bytes, inputs=inputs, outputs=outputs,
        layers=[
            LayerInfo(layer.index, layer.name, layer.op.name, layer.op.origin, layer.op.kind,
                      layer.output, layer.index, layer.macs, scratch.get(layer.index, 0))
            for layer in lowered.layers
        ],
        tensors=[t for t, kept in zip(tensors, stored, strict=True) if kept],
        state_bytes=state_bytes(lowered), variables=dict(lowered.variable_bytes),
        placement=dict(placement or {}), stages=list(stages or []),
    )
    manifest.save(out_dir / "manifest.json")
    return manifest
