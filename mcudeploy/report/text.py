"""The human report: a summary table, mismatches and figures, as plain text or in the terminal."""

from __future__ import annotations

import io

from rich.console import Console
from rich.table import Table
from rich.text import Text

from mcudeploy import terminal
from mcudeploy.report import RunReport, format_db
from mcudeploy.verify.localise import format_indices as _indices

_VERDICT_STYLE = {"pass": "bold green", "fail": "bold red", "error": "bold dark_orange"}


def _summary(report: RunReport) -> Table:
    table = Table(title=f"mcudeploy run: {report.model} on {report.board}", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")
    verdict = report.verdict.upper()
    table.add_row("verdict", Text(verdict, style=_VERDICT_STYLE[report.verdict]))
    exact = ", ".join(report.exact_oracles())
    table.add_row("vectors", f"{report.bit_exact_vectors} of {report.vectors} bit-exact" +
                  (f" with {exact}" if exact else ""))
    table.add_row("oracles", ", ".join(report.oracles))
    table.add_row("runner / library", f"{report.runner} / {report.library}")
    info = report.model_info
    if info:
        table.add_row("model", f"{info.get('layers')} layers, hash {info.get('hash')}")
        if info.get("code_sha256"):
            table.add_row("C library", f"{info['library_name']}.c, SHA-256 {info['code_sha256']} "
                          "(what `mcudeploy export` ships)")
        table.add_row("arena", f"{info.get('arena_bytes')} B (lower bound {info.get('lower_bound')} B)")
        for stage in info.get("stages", []):
            table.add_row("streamed stage", stage)
        if info.get("float_io"):
            table.add_row("float I/O", "the file's " + ", ".join(sorted(info["float_io"].values())) +
                          ": quantized and dequantized on the host, the device runs the int8 body")
        if info.get("uint8_io"):
            table.add_row("uint8 I/O", "the file's " + ", ".join(sorted(info["uint8_io"].values())) +
                          ": shifted by 128 on the host, the device runs the int8 graph")
    _quality_rows(report, table)
    fw = report.firmware
    if fw:
        table.add_row("firmware", f"flash {fw.get('flash_bytes')} B (weights {fw.get('weights_bytes')} B), "
                      f"RAM {fw.get('ram_bytes')} B")
        stack = fw.get("stack_use") or {}
        if stack.get("measured") is not None:
            table.add_row("stack", f"{stack['measured']} B used of {stack['bytes']} B reserved"
                          + (f" (call-graph bound {stack['bound']} B)" if stack.get("bound") is not None else
                             f" (the board's maximum: {terminal.printable(stack.get('note', ''))})"))
    if report.link:
        link = report.link
        jobs = f" on {link['jobs']} devices" if link.get("jobs", 1) > 1 else ""
        table.add_row("link", f"{link.get('vectors_per_second', 0):.1f} vectors/s{jobs}, "
                      f"{link.get('retries', 0)} retries")
    if report.instructions:
        table.add_row("instructions", f"{report.instructions.get('per_inference')} per inference "
                      f"({report.instructions.get('method')})")
    if report.error:
        table.add_row("error", Text(terminal.printable(report.error), style="red"))
    return table


def _quality_rows(report: RunReport, table: Table) -> None:
    """For a quantized model: the quality measured at conversion, the device against the float
    model, and the warning when the quantization lost accuracy (in bold red, first). Strings print
    literally through the console; Text is escaped here."""
    q, check = report.quantization, report.float_oracle
    if q.get("warning"):
        table.add_row(Text("QUANTIZATION", style="bold red"),
                      Text(terminal.printable("lost accuracy: " + q["warning"]), style="bold red"))
    if q:
        outputs = q.get("output_snr_db", {}).items()
        parts = ["output SNR " + ", ".join(f"{n} {format_db(s)}" for n, s in outputs)]
        if q.get("top1_agreement"):
            agreement = q["top1_agreement"].items()
            parts.append("top-1 agreement " + ", ".join(f"{n} {100 * a:.0f} %" for n, a in agreement))
        layers = q.get("layer_snr_db", {})
        worst = [f"{n} {format_db(layers.get(n))}" for n in q.get("worst_layers", [])]
        if worst:
            parts.append("worst layers " + ", ".join(worst))
        table.add_row("quantization", "; ".join(parts) + f" (on {q.get('samples')} of "
                      f"{q.get('calibration_samples')} calibration samples)")
    if check:
        if check.get("error"):
            found = "no answer: " + check["error"]
        else:
            found = ", ".join(f"{n} {format_db(s)}" for n, s in check.get("snr_db", {}).items())
            floor = check.get("min_snr_db")
            found += f" (floor {floor} dB: passed)" if check.get("passed") else \
                f" (BELOW the {floor} dB floor)"
        style = None if check.get("passed") else "bold red"
        line = terminal.printable(f"device outputs against {check.get('name')}: {found}")
        table.add_row("float model", Text(line, style=style))


def _layers(report: RunReport) -> Table | None:
    """The layer-by-layer comparison of the localised vector."""
    loc = report.localisation
    if loc is None or not loc.layers:
        return None
    table = Table(title=f"vector {loc.vector}, layer by layer against the host reference")
    for col in ("layer", "name", "differing", "max |diff|", "mean |diff|", "channels"):
        table.add_column(col, no_wrap=col != "channels")
    for d in loc.layers:
        style = "bold yellow" if d.index == loc.first_divergent else None
        table.add_row(str(d.index), d.name, f"{d.differing}/{d.elements}",
                      str(d.max_abs_diff), f"{d.mean_abs_diff:.3g}",
                      _indices(d.pattern["channels"]) if d.differing else "", style=style)
    return table


def _mismatches(report: RunReport) -> Table | None:
    if not report.mismatches:
        return None
    table = Table(title="mismatches (first 20)")
    for col in ("vector", "output", "against", "elements", "max |diff|", "first at"):
        table.add_column(col)
    for m in report.mismatches[:20]:
        table.add_row(str(m.vector), str(m.output), m.oracle, str(m.elements),
                      str(m.max_abs_diff), str(m.first_index))
    return table


def print_report(report: RunReport, console: Console | None = None) -> None:
    """Print the summary to the terminal (colour only on a TTY); names print as they are, on a
    console from mcudeploy.terminal."""
    console = console or terminal.console()
    console.print(_summary(report))
    for table in (_mismatches(report), _layers(report)):
        if table is not None:
            console.print(table)
    if report.localisation is not None:
        console.print(Text.assemble(("localised: ", "bold"),
                                    (terminal.printable(report.localisation.describe()), "bold yellow")))


def render_text(report: RunReport) -> str:
    """The same summary as plain text, for report.txt."""
    buffer = io.StringIO()
    print_report(report, terminal.console(file=buffer, width=100, no_color=True, force_terminal=False))
    return buffer.getvalue()
