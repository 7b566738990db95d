"""The verdict of a run, as a value: every vector the device ran compared bit for bit with every
oracle that answered, the float oracle's SNR floor for ONNX input, and the failure that stopped the
run, if one did. "pass" only if every vector was bit-exact with every oracle; "fail" if any differed;
"error" if the run could not finish or an oracle could not answer (no verdict rests on it)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from mcudeploy.device.protocol import CpuFault, DeviceHang
from mcudeploy.device.session import DeviceLayerError, DeviceRun
from mcudeploy.errors import DeviceFault, LinkError, MCUDeployError, OracleError
from mcudeploy.faults import function_at
from mcudeploy.ir import Graph
from mcudeploy.oracles import OnnxFloat, dequantize, snr_db
from mcudeploy.vectors import Vector
from mcudeploy.verify.compare import Mismatch, compare

_KINDS = ((CpuFault, "fault"), (DeviceHang, "hang"), (DeviceLayerError, "layer status"),
          (LinkError, "link"), (DeviceFault, "device"), (OracleError, "oracle"))


@dataclass(frozen=True)
class Failure:
    """Why a run could not finish: the error in words, its kind (fault, hang, layer status, link,
    device, oracle, other) and, for a CPU fault, its registers and the function it hit."""

    error: str
    kind: str
    fault: dict = field(default_factory=dict)


def combined(first: Failure | None, later: Failure | None) -> Failure | None:
    """The run's failure: the first, with a later one's message added (the first one's kind stays)."""
    if first is None or later is None:
        return first or later
    return replace(first, error=f"{first.error}; and {later.error}")


def failure_of(exc: MCUDeployError | None, elf: Path) -> Failure | None:
    """The failure an error stands for (a CPU fault with the function of `elf` it hit)."""
    if exc is None:
        return None
    if isinstance(exc, CpuFault):
        function = function_at(elf, exc.report.pc)
        return Failure(exc.report.describe(function), "fault",
                       {**asdict(exc.report), "function": function,
                        "causes": [bit for bit, _ in exc.report.causes()]})
    return Failure(str(exc), next((name for kind, name in _KINDS if isinstance(exc, kind)), "other"))


@dataclass(frozen=True)
class Verdict:
    """What the comparison established; `float_oracle` holds the SNR check for ONNX input."""

    verdict: str
    vectors: int
    bit_exact_vectors: int
    mismatched_vectors: int
    mismatches: list[Mismatch]
    failure: Failure | None = None
    float_oracle: dict = field(default_factory=dict)

    def report_fields(self) -> dict:
        """The verdict as the run report's fields."""
        f = self.failure
        return {"verdict": self.verdict, "vectors": self.vectors, "bit_exact_vectors": self.bit_exact_vectors,
                "mismatched_vectors": self.mismatched_vectors, "mismatches": self.mismatches,
                "error": f.error if f else None, "error_kind": f.kind if f else None,
                "fault": f.fault if f else {}, "float_oracle": self.float_oracle}


def bit_exact_verdict(device: DeviceRun, expected: dict[str, list[list[np.ndarray]]],
                      failure: Failure | None) -> Verdict:
    """Every output the device returned against every oracle's (`expected` by oracle name; empty
    when no oracle answered: then no vector counts as bit-exact)."""
    mismatches: list[Mismatch] = []
    for i, outputs in zip(device.indices, device.outputs, strict=True):
        for oracle, values in expected.items():
            mismatches += compare(i, outputs, values[i], oracle)
    bad = {m.vector for m in mismatches}
    vectors = len(device.outputs)
    verdict = "error" if failure is not None else "pass" if not bad and vectors > 0 else "fail"
    return Verdict(verdict, vectors, vectors - len(bad) if expected else 0, len(bad), mismatches, failure)


def float_verdict(verdict: Verdict, oracle: OnnxFloat, graph: Graph, device: DeviceRun,
                  vectors: list[Vector], min_snr_db: float) -> Verdict:
    """Device outputs, dequantized, against onnxruntime's float outputs: SNR per output over all
    vectors. Below `min_snr_db` a pass becomes a fail: bit-exactness alone cannot catch a weight-layout
    mistake made the same way in the reference and the device. When onnxruntime cannot answer (an
    output that is not finite), a pass becomes an error: no verdict rests on it."""
    check: dict = {"name": "onnxruntime", "min_snr_db": min_snr_db, "snr_db": {}, "passed": False}
    floats = {}
    for i in device.indices:
        try:
            floats[i] = oracle.invoke(vectors[i])
        except OracleError as exc:
            error = f"vector {i}: {exc}"
            check["error"] = error
            if verdict.verdict == "pass":
                return replace(verdict, verdict="error", failure=Failure(error, "oracle"), float_oracle=check)
            return replace(verdict, float_oracle=check)
    snr = {}
    for k, name in enumerate(graph.outputs):
        t = graph.tensor(name)
        got = [dequantize(out[k], t.scale, t.zero_point).reshape(-1) for out in device.outputs]
        want = [floats[i][k].reshape(-1) for i in device.indices]
        if got:
            snr[name] = round(snr_db(np.concatenate(want), np.concatenate(got)), 2)
    low = {n: v for n, v in snr.items() if not v >= min_snr_db}
    check.update(snr_db=snr, passed=bool(snr) and not low)
    outcome = "fail" if low and verdict.verdict == "pass" else verdict.verdict
    return replace(verdict, verdict=outcome, float_oracle=check)
