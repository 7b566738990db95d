"""report.html: one self-contained page (inline CSS and SVG, no script, nothing fetched) with the
verdict, what ran where, the quantization quality of a quantized model (a loud warning in the
banner when it lost accuracy), per-output and per-layer error plots, the per-channel heatmaps of a
mismatch, the instruction and memory figures, and with a tuning file each layer's lowering
candidates and the gain of the one chosen."""

from __future__ import annotations

import math

import jinja2
from markupsafe import Markup

from mcudeploy.report import RunReport, format_db
from mcudeploy.report.svg import bar_chart, heatmap
from mcudeploy.verify.localise import format_indices

_MEMORY_PARTS = ("code", "weights", "data", "bss", "arena", "fault_stack", "stack")
_MAX_BARS = 200


def render_html(report: RunReport) -> str:
    """The whole page as text."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("mcudeploy.report", "templates"),
        autoescape=True, trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined,
    )
    env.filters["indices"] = format_indices
    env.filters["db"] = format_db
    return env.get_template("report.html.j2").render(
        r=report, exact_oracles=report.exact_oracles(), snr_chart=_snr_chart(report),
        output_charts=_output_charts(report), layer_charts=_layer_charts(report),
        instruction_chart=_instruction_chart(report), memory_chart=_memory_chart(report),
        tuning_chart=_tuning_chart(report),
    )


def _snr_chart(report: RunReport) -> Markup | None:
    """The SNR of every layer of the quantized graph against the float model (layers with no
    difference at all drawn at the tallest finite bar, or 100 dB)."""
    layers = report.quantization.get("layer_snr_db") if report.quantization else None
    if not layers:
        return None
    finite = [v for v in layers.values() if v is not None and math.isfinite(v)]
    top = max(finite, default=100.0)
    values = [v if v is not None and math.isfinite(v) else top for v in layers.values()]
    worst = min(range(len(values)), key=values.__getitem__)
    return bar_chart(list(layers), {"SNR (dB)": values}, y_label="SNR against the float model (dB)",
                     highlight=worst)


def _output_charts(report: RunReport) -> list[tuple[int, Markup]]:
    """For each output, the largest |diff| of every vector (of every bin of vectors, when there
    are many) against each bit-exact oracle (the float model's SNR is shown apart)."""
    per_bin = max(1, -(-report.vectors // _MAX_BARS))
    bins = max(1, -(-report.vectors // per_bin))
    labels = [str(b * per_bin) if per_bin == 1
              else f"{b * per_bin}-{min(report.vectors, (b + 1) * per_bin) - 1}" for b in range(bins)]
    charts = []
    for k in sorted({m.output for m in report.mismatches} | {0}):
        series = {}
        for oracle in report.exact_oracles() or ["-"]:
            values = [0] * bins
            for m in report.mismatches:
                if m.output == k and m.oracle == oracle and m.vector // per_bin < bins:
                    values[m.vector // per_bin] = max(values[m.vector // per_bin], m.max_abs_diff)
            series[oracle] = values
        what = "vector" if per_bin == 1 else f"{per_bin} vectors"
        charts.append((k, bar_chart(labels, series, y_label=f"max |diff| by {what}")))
    return charts


def _layer_charts(report: RunReport) -> dict[str, Markup]:
    """The per-layer error plot and the channel heatmaps of the localised vector."""
    loc = report.localisation
    if loc is None or not loc.layers:
        return {}
    labels = [f"{d.index} {d.name}" for d in loc.layers]
    first = next((i for i, d in enumerate(loc.layers) if d.index == loc.first_divergent), None)
    charts = {
        "max": bar_chart(labels, {"max |diff|": [d.max_abs_diff for d in loc.layers]},
                         y_label="max |diff|", highlight=first),
        "mean": bar_chart(labels, {"mean |diff|": [d.mean_abs_diff for d in loc.layers]},
                          y_label="mean |diff|", highlight=first),
    }
    widest = max(len(d.channel_max_abs_diff) for d in loc.layers)
    grid = [[*d.channel_max_abs_diff, *[None] * (widest - len(d.channel_max_abs_diff))]
            for d in loc.layers]
    charts["layers_by_channel"] = heatmap(grid, labels, [str(c) for c in range(widest)])
    if loc.heatmap:
        rows = [f"{loc.heatmap_rows[:-1]} {r}" for r in range(len(loc.heatmap))]
        charts["first_by_channel"] = heatmap(loc.heatmap, rows,
                                             [str(c) for c in range(len(loc.heatmap[0]))])
    return charts


def _instruction_chart(report: RunReport) -> Markup | None:
    layers = report.instructions.get("per_layer") if report.instructions else None
    if not layers:
        return None
    return bar_chart([f"{x['layer']} {x['name']}" for x in layers],
                     {"instructions": [x["instructions"] for x in layers]},
                     y_label="instructions")


def _tuning_chart(report: RunReport) -> Markup | None:
    """Instructions of each measured layer with its first candidate (the wrapper call) and as
    lowered."""
    rows = [row for row in report.tuning.get("layers", []) if row["gain"] is not None]
    if not report.tuning.get("tuning_file") or not rows:
        return None
    first = [row["candidates"][0]["instructions"] for row in rows]
    lowered = [f - row["gain"] for f, row in zip(first, rows, strict=True)]
    series = {"first candidate": first, "as lowered": lowered}
    return bar_chart([f"{row['index']} {row['name']}" for row in rows], series, y_label="instructions")


def _memory_chart(report: RunReport) -> Markup | None:
    parts = [p for p in _MEMORY_PARTS if report.firmware.get(p)]
    if not parts:
        return None
    return bar_chart(parts, {"bytes": [report.firmware[p] for p in parts]}, y_label="bytes",
                     width=420)
