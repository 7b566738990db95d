"""The host-device contract: what the host knows of a generated model (its inputs, outputs, layers
and their output tensors in the arena, the arena and weight sizes, the model hash the device
reports), saved beside the generated C as manifest.json. Code generation writes it; the device
session, the verification and the reports read it."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class IoInfo:
    name: str
    shape: list[int]
    scale: float
    zero_point: int
    offset: int
    size: int
    dtype: str = "int8"


@dataclass(frozen=True)
class LayerInfo:
    index: int
    name: str
    op: str
    origin: str
    kind: str
    output: str
    tensor: int
    macs: int
    scratch_bytes: int


@dataclass(frozen=True)
class TensorInfo:
    id: int
    name: str
    producer: int
    offset: int
    size: int
    shape: list[int]


@dataclass(frozen=True)
class Manifest:
    """What the host needs to know about a generated model, saved as manifest.json."""

    mcudeploy_version: str
    source: str
    board: str
    cpu_class: str
    library: str
    model_hash: str
    arena_bytes: int
    lower_bound: int
    planner: str
    weight_bytes: int
    inputs: list[IoInfo]
    outputs: list[IoInfo]
    layers: list[LayerInfo]
    tensors: list[TensorInfo]
    state_bytes: int = 0  # the model's static RAM outside the arena (variables)
    variables: dict[str, int] = field(default_factory=dict)  # persistent variable -> bytes
    name: str = "model"  # the C library's name: NAME.c, NAME.h, NAME_invoke
    files: dict[str, str] = field(default_factory=dict)  # NAME.c, NAME.h -> SHA-256 (hex)
    placement: dict[str, str] = field(default_factory=dict)  # weights, arena -> the board's region
    stages: list[dict] = field(default_factory=list)  # streamed stages taken or declined (codegen.memory)

    @property
    def code_file(self) -> str:
        """The library's C file, NAME.c."""
        return f"{self.name}.c"

    def describe_layer(self, index: int) -> str:
        """`layer 3 (op3_conv_2d, operator 3 (CONV_2D))`, for messages."""
        layer = self.layers[index]
        return f"layer {layer.index} ({layer.op}, {layer.origin})"

    def output_tensor(self, layer: int) -> TensorInfo | None:
        """Layer `layer`'s output tensor as the device stores it; None for one computed inside a
        streamed stage (mcudeploy.codegen.stages), which has no storage and is not listed."""
        wanted = self.layers[layer].tensor
        return next((t for t in self.tensors if t.id == wanted), None)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=1) + "\n", encoding="utf-8")

    @staticmethod
    def load(path: Path) -> Manifest:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return Manifest(
            **{k: v for k, v in raw.items() if k not in ("inputs", "outputs", "layers", "tensors")},
            inputs=[IoInfo(**x) for x in raw["inputs"]],
            outputs=[IoInfo(**x) for x in raw["outputs"]],
            layers=[LayerInfo(**x) for x in raw["layers"]],
            tensors=[TensorInfo(**x) for x in raw["tensors"]],
        )


def code_path(model_dir: Path) -> Path:
    """The generated model's C file (NAME.c) in `model_dir`, as its manifest.json names it."""
    return model_dir / Manifest.load(model_dir / "manifest.json").code_file
