"""Build a model for a board, count its instructions per layer on QEMU (-icount), and set its
memory beside the liveness lower bound and TFLM's arena for the same file.

Prints a per-layer table (MACs, instructions, instructions per MAC; with a tuning file, or where a
layer is not lowered as the wrapper call, the lowering of each layer that has several instead of
its origin) and the totals; with --tune or a tuning file, a table of every measured candidate per
layer and the gain over the wrapper call. Writes DIR/bench.json beside the build (and DIR/tuning.json), and
DIR/model.tflite (the int8 file TFLM ran). Exit status: 0, or 1 if the measured inference was not
bit-exact with the host reference and TFLM, 2 for an error in the input, 3 when the device failed.
"""

from __future__ import annotations

import argparse

from rich.table import Table
from rich.text import Text

from mcudeploy import terminal
from mcudeploy.cli.options import (
    add_library,
    add_model_and_board,
    add_quantization,
    add_tuning,
    build_options,
    out_dir,
)
from mcudeploy.pipeline import bench_model
from mcudeploy.progress import Progress
from mcudeploy.report.bench_result import BenchResult

HELP = "count instructions per layer on QEMU and compare memory with TFLM"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_and_board(parser)
    add_library(parser)
    add_tuning(parser)
    add_quantization(parser)
    parser.add_argument("--seed", type=int, default=0, help="seed of the random input vector")
    parser.add_argument("--no-tflm", dest="tflm", action="store_false",
                        help="do not ask TFLM for its arena")


def run(args: argparse.Namespace) -> int:
    out = out_dir(args)
    result = bench_model(args.model, build_options(args), out, Progress(quiet=args.quiet), seed=args.seed,
                         tflm=args.tflm)
    console = terminal.console()
    console.print(layer_table(result))
    if result.tuning.get("measured_layers"):
        console.print(tuning_table(result))
    console.print(summary_table(result))
    console.print(f"bench: {out / 'bench.json'}", soft_wrap=True)
    return 0 if result.bit_exact else 1


def _per_mac(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def layer_table(r: BenchResult) -> Table:
    """Per layer: MACs, instructions, per MAC, share; and where it came from in the model, or, when
    a tuning file is in use or a layer is not lowered as the library's wrapper call, how each layer
    is lowered instead (its origin is in bench.json)."""
    table = Table(title=f"mcudeploy bench: {r.model} on {r.board} ({r.cpu}, {r.library})")
    rows = r.tuning.get("layers", [])
    shown = r.tuning.get("tuning_file") or any(row["lowering"] != "wrapper" for row in rows)
    lowering = {row["index"]: row["lowering"] + (" (tuned)" if row["source"] == "tuned" else "")
                for row in rows}
    third = "lowering" if shown else "op"
    for name in ("#", "layer", third, "MACs", "instructions", "instr/MAC", "share"):
        table.add_column(name, justify="left" if name in ("layer", third) else "right",
                         no_wrap=name == "lowering")
    for layer in r.layers:
        share = layer.instructions / r.instructions if r.instructions else 0.0
        table.add_row(str(layer.index), layer.name, lowering.get(layer.index, "") if shown else layer.origin,
                      f"{layer.macs:,}", f"{layer.instructions:,}", _per_mac(layer.instructions_per_mac),
                      f"{share:.1%}")
    table.add_row("", "total", "", f"{r.macs:,}", f"{r.instructions:,}", _per_mac(r.instructions_per_mac),
                  "", style="bold")
    return table


def _instructions(figures: dict) -> str:
    if figures["instructions"] is None:
        return f"failed: {figures['note']}"
    mark = "" if figures["bit_exact"] else f" NOT bit-exact: {figures['note']}"
    return f"{figures['instructions']:,}{mark}"


def tuning_table(r: BenchResult) -> Table:
    """Each measured layer's candidates (* the one kept) and the gain over the first (the wrapper)."""
    t = r.tuning
    table = Table(title=f"lowering candidates, instructions per layer ({t['method']})",
                  caption="* chosen: the fastest bit-exact candidate; (in the model): the chosen one "
                          "with every layer as chosen, as the final firmware runs it")
    for name in ("#", "layer", "candidate", "instructions", "gain"):
        table.add_column(name, justify="left" if name in ("layer", "candidate") else "right",
                         no_wrap=name in ("candidate", "instructions"))
    for row in t["layers"]:
        if row["gain"] is None:
            continue
        names = [("* " if c["name"] == row["lowering"] else "  ") + c["name"] for c in row["candidates"]]
        base = row["candidates"][0]["instructions"]
        gain = f"{row['gain']:,}\n{row['gain'] / base:.1%}" if base else f"{row['gain']:,}"
        figures = [_instructions(c) + (f" ({row['in_model']:,} in the model)"
                                       if c["name"] == row["lowering"] and row.get("in_model") else "")
                   for c in row["candidates"]]
        table.add_row(str(row["index"]), row["name"], "\n".join(names), "\n".join(figures), gain)
    total, gain = t["baseline_instructions"], t["gain"]
    share = f"\n{gain / total:.1%} of them\n{gain / r.instructions:.1%} of the model" if total else ""
    table.add_row("", "total", f"{t['measured_layers']} layers:\nfirst candidate\nas chosen",
                  f"\n{total:,}\n{t['chosen_instructions']:,}", f"{gain:,}{share}", style="bold")
    return table


def _stack(s: dict) -> str:
    """The reserved stack, where its size comes from, and what the device measured."""
    if s["bound"] is None:
        return (f"{s['bytes']:,} B reserved: the board's maximum ({terminal.printable(s['note'])}); "
                f"measured {s['measured']:,} B")
    return (f"{s['bytes']:,} B reserved = call-graph bound {s['thread']:,} + an interrupt {s['interrupt']:,} "
            f"+ a fault's frame {s['fault']:,}; measured {s['measured']:,} B (after the handshake "
            f"{s['handshake']:,} B)")


def summary_table(r: BenchResult) -> Table:
    table = Table(show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")
    table.add_row("bit-exact", "yes" if r.bit_exact else Text.assemble(
        ("NO", "bold red"), ": the figures are of a miscomputing build"))
    table.add_row("arena", f"{r.arena_bytes:,} B = {r.arena_bytes / max(r.lower_bound, 1):.2f} x "
                  f"the liveness lower bound ({r.lower_bound:,} B)")
    if r.tflm is not None:
        table.add_row("TFLM arena", f"{r.tflm.total:,} B (head {r.tflm.head:,} + tail {r.tflm.tail:,}); "
                      f"ours with the model's state {r.model_ram:,} B = "
                      f"{r.model_ram / r.tflm.total:.2f} x")
    ram, flash = r.ram, r.flash
    table.add_row("RAM", f"{ram['total']:,} B: arena {ram['arena']:,}, stack {ram['stack']:,} (measured), "
                  f"static {ram['static']:,} (model state {ram['model_state']:,}); the image reserves "
                  f"{ram['reserved']:,} B")
    if r.stack:
        table.add_row("stack", _stack(r.stack))
    table.add_row("flash", f"{flash['total']:,} B: weights {flash['weights']:,}, model code "
                  f"{flash['model_code']:,}, runtime {flash['runtime']:,}; "
                  f"flash - weights {flash['code']:,} B")
    table.add_row("instructions", f"{r.instructions:,} per inference ({r.method})")
    if r.startup_instructions is not None:
        table.add_row("start-up", f"{r.startup_instructions:,} instructions (mcd_model_init, after reset)")
    return table
