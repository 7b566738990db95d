"""Tuning files: which lowering candidate a layer uses, as measured by `--tune`, kept for reuse.

A tuning file (JSON, `DIR/tuning.json` beside a build) holds one entry per measured layer shape,
keyed by
- the layer's signature: its kind, input, filter and output dims, stride, dilation, padding and
  channel multiplier (a fully connected layer: its dims and whether it is per-channel), which is
  all the instruction count depends on;
- the CPU class (plain, dsp, mve);
- the NN library: its name (with the version, for a pack) and a digest of its sources and headers,
  so that a changed library is measured again;
so any later build, of any model into any directory, reuses what was measured for the same layer
on the same kind of CPU with the same library. An entry keeps every candidate's figures (ticks,
instructions, bit-exact or why not) and the one chosen: the fastest bit-exact one.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mcudeploy.codegen.candidates import (
    CANDIDATES,
    GENERATED,
    Candidate,
    Chooser,
    Table,
    candidates_for,
    default_chooser,
    library_only,
)
from mcudeploy.codegen.lower import Dims, Layer, lower
from mcudeploy.errors import InputError
from mcudeploy.ir import Graph
from mcudeploy.nnlib import NNLibrary

FORMAT = 1


def _dims(d: Dims) -> str:
    return f"{d.n}x{d.h}x{d.w}x{d.c}"


def layer_signature(layer: Layer) -> str:
    """What a plainly lowered layer's instruction count depends on, as one line: a convolution's
    dims, stride, dilation, padding and multiplier; a fully connected layer's dims and whether it is
    per-channel; an element-wise layer's block and repeats."""
    v = layer.values
    if "block_size" in v:
        strides = ",".join(str(s) for s in v["strides"])
        return f"{layer.op.kind} block {v['block_size']} repeats {v['repeats']} strides {strides}"
    if layer.op.kind == "fully_connected":
        return (f"fully_connected in {_dims(v['input_dims'])} filter {_dims(v['filter_dims'])} "
                f"out {_dims(v['output_dims'])}" + (" per-channel" if v["per_channel"] else ""))
    text = (f"{layer.op.kind} in {_dims(v['input_dims'])} filter {_dims(v['filter_dims'])} "
            f"out {_dims(v['output_dims'])} stride {v['stride'][0]},{v['stride'][1]} "
            f"dilation {v['dilation'][0]},{v['dilation'][1]} padding {v['padding'][0]},{v['padding'][1]}")
    return text + (f" mult {v['ch_mult']}" if "ch_mult" in v else "")


def library_id(library: NNLibrary) -> str:
    """The library's name and a digest of its sources and headers."""
    return f"{library.name} #{library.digest[:12]}"


def entry_key(signature: str, cpu_class: str, library: str) -> str:
    return f"{signature} | {cpu_class} | {library}"


@dataclass(frozen=True)
class CandidateFigures:
    """One candidate measured for one layer: SysTick ticks and instructions (None when it could
    not run), and whether its output was bit-exact with the host reference (`note`: why not)."""

    name: str
    ticks: int | None
    instructions: int | None
    bit_exact: bool
    note: str = ""


@dataclass(frozen=True)
class TuningEntry:
    """A measured layer shape: every candidate's figures and the fastest bit-exact one."""

    signature: str
    cpu_class: str
    library: str
    chosen: str
    candidates: tuple[CandidateFigures, ...]
    method: str
    measured_on: str = ""  # the model and layer it was measured on, for people
    # The chosen candidate in the model it was measured on with every layer as chosen (the final
    # firmware): with link-time optimisation a kernel costs more when several layers share it.
    in_model: int | None = None
    in_model_ticks: int | None = None

    @property
    def key(self) -> str:
        return entry_key(self.signature, self.cpu_class, self.library)

    def figures(self, name: str) -> CandidateFigures | None:
        return next((c for c in self.candidates if c.name == name), None)


@dataclass
class Tuning:
    """The entries of a tuning file (or of none yet); with `library_only` (`--library-calls`, not
    kept in the file) every layer goes through the NN library, its generated kernels left out."""

    entries: dict[str, TuningEntry] = field(default_factory=dict)
    library_only: bool = False

    @staticmethod
    def load(path: Path) -> Tuning:
        """Read a tuning file; a missing or malformed one is an InputError naming it."""
        try:
            raw = json.loads(Path(path).read_text(encoding="utf-8"))
            if raw.get("format") != FORMAT:
                raise ValueError(f"format {raw.get('format')!r}, expected {FORMAT}")
            entries = [
                TuningEntry(**{**e, "candidates": tuple(CandidateFigures(**c) for c in e["candidates"])})
                for e in raw["entries"]
            ]
        except FileNotFoundError:
            raise InputError(f"{path}: no such tuning file") from None
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise InputError(f"{path}: not a mcudeploy tuning file ({exc})") from None
        return Tuning({e.key: e for e in entries})

    def save(self, path: Path) -> None:
        raw = {"format": FORMAT, "entries": [asdict(e) for e in sorted(self.entries.values(),
                                                                         key=lambda e: e.key)]}
        Path(path).write_text(json.dumps(raw, indent=1) + "\n", encoding="utf-8")

    def lookup(self, layer: Layer, cpu_class: str, library: NNLibrary) -> TuningEntry | None:
        return self.entries.get(entry_key(layer_signature(layer), cpu_class, library_id(library)))

    def add(self, entry: TuningEntry) -> None:
        self.entries[entry.key] = entry

    def chooser(self, cpu_class: str, library: NNLibrary) -> Chooser:
        """Each layer's measured choice; the CPU class's default for layers not measured."""
        default = default_chooser(cpu_class)

        def choose(layer: Layer, options: Sequence[Candidate]) -> Candidate:
            if self.library_only:
                options = [c for c in options if c.name not in GENERATED] or options
            entry = self.lookup(layer, cpu_class, library)
            chosen = next((c for c in options if entry is not None and c.name == entry.chosen), None)
            return chosen or default(layer, options)

        return choose


@dataclass(frozen=True)
class LayerTuning:
    """How one layer with several candidates is lowered in a build, and why: `source` is "tuned"
    (a tuning file's measured choice) or "default" (the CPU class's default, nothing measured)."""

    index: int
    name: str
    origin: str
    lowering: str
    source: str
    candidates: tuple[CandidateFigures, ...] = ()
    method: str = ""
    in_model: int | None = None  # the chosen candidate's instructions in the model as chosen

    @property
    def baseline(self) -> CandidateFigures | None:
        """The first candidate of the table: the library's wrapper call where it applies."""
        return self.candidates[0] if self.candidates else None

    @property
    def chosen(self) -> CandidateFigures | None:
        return next((c for c in self.candidates if c.name == self.lowering), None)

    @property
    def gain(self) -> int | None:
        """Instructions saved against the baseline (None when either was not measured)."""
        base, chosen = self.baseline, self.chosen
        if base is None or chosen is None or base.instructions is None or chosen.instructions is None:
            return None
        return base.instructions - chosen.instructions

    def to_dict(self) -> dict:
        return {**asdict(self), "gain": self.gain}


def model_tuning(graph: Graph, library: NNLibrary, cpu_class: str, tuning: Tuning,
                 table: Table = CANDIDATES) -> list[LayerTuning]:
    """Every layer of `graph` that has several candidates: its lowering with `tuning` and the
    figures behind it."""
    rows = []
    choose = tuning.chooser(cpu_class, library)
    if tuning.library_only:
        table = library_only(table)
    for layer in lower(graph).layers:
        options = candidates_for(layer, library, table, cpu_class)
        if len(options) < 2:
            continue
        entry = tuning.lookup(layer, cpu_class, library)
        measured = () if entry is None else tuple(
            f for c in options if (f := entry.figures(c.name)) is not None)
        rows.append(LayerTuning(layer.index, layer.name, layer.op.origin, choose(layer, options).name,
                                "default" if entry is None else "tuned", measured,
                                "" if entry is None else entry.method,
                                None if entry is None else entry.in_model))
    return rows


def tuning_summary(rows: Sequence[LayerTuning]) -> dict:
    """The per-layer rows and their totals, as reports show them: the instructions of the measured
    layers with their baseline candidate and with the chosen one, and the gain."""
    measured = [r for r in rows if r.gain is not None]
    baseline = sum(r.baseline.instructions for r in measured if r.baseline and r.baseline.instructions)
    return {
        "layers": [r.to_dict() for r in rows],
        "measured_layers": len(measured),
        "baseline_instructions": baseline,
        "chosen_instructions": baseline - sum(r.gain or 0 for r in measured),
        "gain": sum(r.gain or 0 for r in measured),
        "method": next((r.method for r in rows if r.method), ""),
    }
