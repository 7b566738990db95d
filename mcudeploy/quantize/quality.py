"""Quantization quality at conversion: the int8 graph against the float model, layer by layer.

On the calibration samples kept by `calibrate`, every activation of the int8 host reference is
dequantized and compared with the float value onnxruntime computed for the same tensor (SNR in
dB). Classifier-like outputs (2-D, more than one class) also get the top-1 agreement. A model whose
output SNR falls below the threshold is reported loudly, naming its worst layers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mcudeploy.arith import round_half_away
from mcudeploy.ir import Graph
from mcudeploy.oracles import dequantize, snr_db
from mcudeploy.reference import run_graph


@dataclass
class Quality:
    """Per-layer SNR (dB) of every activation, output SNR, top-1 agreement, the worst layers;
    `samples` is how many samples these were measured on, `calibration_samples` how many set the
    quantization ranges."""

    layer_snr_db: dict[str, float] = field(default_factory=dict)
    output_snr_db: dict[str, float] = field(default_factory=dict)
    top1_agreement: dict[str, float] = field(default_factory=dict)
    worst_layers: list[str] = field(default_factory=list)
    samples: int = 0
    calibration_samples: int = 0
    warning: str | None = None


def quantize_input(value: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    return np.clip(round_half_away(value / scale) + zero_point, -128, 127).astype(np.int8)


def measure(graph: Graph, float_values: list[dict[str, np.ndarray]], warn_below_db: float, *,
            calibration_samples: int) -> Quality:
    """Compare the int8 reference with the float values of the same samples (the first of the
    `calibration_samples` that calibrated the graph)."""
    quality = Quality(samples=len(float_values), calibration_samples=calibration_samples)
    reference: dict[str, list[np.ndarray]] = {}
    floats: dict[str, list[np.ndarray]] = {}
    for values in float_values:
        inputs = {n: quantize_input(values[n], graph.tensor(n).scale, graph.tensor(n).zero_point)
                  for n in graph.inputs}
        ours = run_graph(graph, inputs)
        for name, q in ours.items():
            if name in graph.inputs or name not in values:
                continue
            t = graph.tensor(name)
            reference.setdefault(name, []).append(dequantize(q, t.scale, t.zero_point))
            floats.setdefault(name, []).append(values[name])
    for name in reference:
        f, r = np.concatenate([v.reshape(-1) for v in floats[name]]), np.concatenate(
            [v.reshape(-1) for v in reference[name]])
        quality.layer_snr_db[name] = round(snr_db(f, r), 2)
    for name in graph.outputs:
        quality.output_snr_db[name] = quality.layer_snr_db.get(name, float("inf"))
        shape = graph.tensor(name).shape
        if len(shape) == 2 and shape[-1] > 1 and name in reference:
            agree = [np.array_equal(np.argmax(f, -1), np.argmax(r, -1))
                     for f, r in zip(floats[name], reference[name], strict=True)]
            quality.top1_agreement[name] = round(float(np.mean(agree)), 4)
    ranked = sorted(quality.layer_snr_db, key=quality.layer_snr_db.get)
    quality.worst_layers = ranked[:3]
    low = {n: s for n, s in quality.output_snr_db.items() if s < warn_below_db}
    if low:
        worst = ", ".join(f"{n} ({quality.layer_snr_db[n]:.1f} dB)" for n in quality.worst_layers)
        outputs = ", ".join(f"{n} {s:.1f} dB" for n, s in low.items())
        quality.warning = (f"int8 output SNR below {warn_below_db:g} dB ({outputs}); "
                           f"worst layers: {worst}")
    return quality
