"""bench.json: a model on a board, per layer and in total (instructions counted on QEMU, MACs), with
its memory and TFLM's arena for the same file."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mcudeploy.memory import TflmArena


@dataclass(frozen=True)
class LayerFigures:
    """One layer: what it computes and what it cost."""

    index: int
    name: str
    op: str
    origin: str
    macs: int
    instructions: int

    @property
    def instructions_per_mac(self) -> float | None:
        return self.instructions / self.macs if self.macs else None


@dataclass(frozen=True)
class BenchResult:
    """A model on a board: per-layer instructions, memory, and TFLM's arena beside ours."""

    model: str
    board: str
    cpu: str
    cpu_class: str
    library: str
    bit_exact: bool
    layers: list[LayerFigures]
    instructions: int
    macs: int
    arena_bytes: int
    lower_bound: int
    ram: dict[str, int]
    flash: dict[str, int]
    tflm: TflmArena | None
    method: str
    startup_instructions: int | None = None  # mcd_model_init, once after reset
    tuning: dict = field(default_factory=dict)  # per-layer lowerings and candidates (tuning_report)

    @property
    def instructions_per_mac(self) -> float | None:
        return self.instructions / self.macs if self.macs else None

    @property
    def model_ram(self) -> int:
        """What the model needs in RAM beyond the runtime: the arena and the model's state."""
        return self.arena_bytes + self.ram["model_state"]

    def to_dict(self) -> dict:
        out = asdict(self)
        out["instructions_per_mac"] = _round(self.instructions_per_mac)
        out["model_ram"] = self.model_ram
        for row, layer in zip(out["layers"], self.layers, strict=True):
            row["instructions_per_mac"] = _round(layer.instructions_per_mac)
        return out

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=1) + "\n", encoding="utf-8")

    @staticmethod
    def load(path: Path) -> BenchResult:
        """A bench.json as `save` wrote it."""
        raw = json.loads(path.read_text(encoding="utf-8"))
        derived = ("instructions_per_mac", "model_ram")
        layers = [LayerFigures(**{k: v for k, v in x.items() if k not in derived})
                  for x in raw["layers"]]
        tflm = TflmArena(**raw["tflm"]) if raw["tflm"] else None
        fields = {k: v for k, v in raw.items() if k not in (*derived, "layers", "tflm")}
        return BenchResult(**fields, layers=layers, tflm=tflm)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
