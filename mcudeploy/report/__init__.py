"""The run report: one record, written as report.json (for scripts; schema in docs/report.md),
report.txt and report.html (for people).

report.json is strict JSON: a number that is not finite (the SNR of outputs equal to their
reference is infinite) is written as null.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mcudeploy.verify.compare import Mismatch
from mcudeploy.verify.localise import Localisation

SCHEMA_VERSION = 2


def strict_json(value: object) -> object:
    """`value` with every float that is not finite (inf, NaN) replaced by None (JSON null)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: strict_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [strict_json(v) for v in value]
    return value


@dataclass
class RunReport:
    """Everything a run established. `verdict` is "pass" only if every vector was bit-exact with
    every oracle; "fail" if any differed; "error" if the run could not finish (see `error`)."""

    model: str
    board: str
    runner: str
    library: str
    oracles: list[str]
    verdict: str = "error"
    vectors: int = 0
    bit_exact_vectors: int = 0
    mismatched_vectors: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)
    error: str | None = None
    error_kind: str | None = None
    fault: dict = field(default_factory=dict)
    localisation: Localisation | None = None
    model_info: dict = field(default_factory=dict)
    firmware: dict = field(default_factory=dict)
    link: dict = field(default_factory=dict)
    timing: dict = field(default_factory=dict)
    instructions: dict = field(default_factory=dict)
    float_oracle: dict = field(default_factory=dict)
    quantization: dict = field(default_factory=dict)
    tuning: dict = field(default_factory=dict)  # lowering candidates measured (mcudeploy.tune)
    schema_version: int = SCHEMA_VERSION

    def to_json(self) -> str:
        return json.dumps(strict_json(asdict(self)), indent=2, allow_nan=False) + "\n"

    def write(self, directory: Path) -> None:
        """report.json, report.txt and report.html in `directory`."""
        from mcudeploy.report.html import render_html
        from mcudeploy.report.text import render_text

        (directory / "report.json").write_text(self.to_json(), encoding="utf-8")
        (directory / "report.txt").write_text(render_text(self), encoding="utf-8")
        (directory / "report.html").write_text(render_html(self), encoding="utf-8")
