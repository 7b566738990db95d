"""Build a model for a board, count its instructions per layer on QEMU (-icount), and set its
memory beside the liveness lower bound and TFLM's arena for the same file.

Prints a per-layer table (MACs, instructions, instructions per MAC) and the totals; writes
DIR/bench.json beside the build, and DIR/model.tflite (the int8 file TFLM ran). Exit status: 0,
or 1 if the measured inference was not bit-exact with the host reference and TFLM, 2 for an
error in the input, 3 when the device failed.
"""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from mcudeploy.bench import BenchResult, bench_model
from mcudeploy.cli.options import (
    add_library,
    add_model_and_board,
    add_quantization,
    import_options,
    out_dir,
)
from mcudeploy.progress import Progress

HELP = "count instructions per layer on QEMU and compare memory with TFLM"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_and_board(parser)
    add_library(parser)
    add_quantization(parser)
    parser.add_argument("--seed", type=int, default=0, help="seed of the random input vector")
    parser.add_argument("--no-tflm", dest="tflm", action="store_false",
                        help="do not ask TFLM for its arena")


def run(args: argparse.Namespace) -> int:
    out = out_dir(args)
    result = bench_model(args.model, args.board, out, Progress(quiet=args.quiet), seed=args.seed,
                         tflm=args.tflm, import_options=import_options(args),
                         cmsis_nn=args.cmsis_nn)
    if args.emit_tflite is not None:
        args.emit_tflite.parent.mkdir(parents=True, exist_ok=True)
        args.emit_tflite.write_bytes((out / "model.tflite").read_bytes())
    console = Console()
    console.print(layer_table(result))
    console.print(summary_table(result))
    print(f"bench: {out / 'bench.json'}")
    return 0 if result.bit_exact else 1


def _per_mac(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def layer_table(r: BenchResult) -> Table:
    table = Table(title=f"mcudeploy bench: {r.model} on {r.board} ({r.cpu}, {r.library})")
    for name in ("#", "layer", "op", "MACs", "instructions", "instr/MAC", "share"):
        table.add_column(name, justify="left" if name in ("layer", "op") else "right")
    for layer in r.layers:
        share = layer.instructions / r.instructions if r.instructions else 0.0
        table.add_row(str(layer.index), layer.name, layer.origin, f"{layer.macs:,}",
                      f"{layer.instructions:,}", _per_mac(layer.instructions_per_mac),
                      f"{share:.1%}")
    table.add_row("", "total", "", f"{r.macs:,}", f"{r.instructions:,}",
                  _per_mac(r.instructions_per_mac), "", style="bold")
    return table


def summary_table(r: BenchResult) -> Table:
    table = Table(show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")
    table.add_row("bit-exact", "yes" if r.bit_exact else "[bold red]NO[/]: the figures are of a "
                  "miscomputing build")
    table.add_row("arena", f"{r.arena_bytes:,} B = {r.arena_bytes / max(r.lower_bound, 1):.2f} x "
                  f"the liveness lower bound ({r.lower_bound:,} B)")
    if r.tflm is not None:
        table.add_row("TFLM arena", f"{r.tflm.total:,} B (head {r.tflm.head:,} + tail {r.tflm.tail:,}); "
                      f"ours with the model's state {r.model_ram:,} B = "
                      f"{r.model_ram / r.tflm.total:.2f} x")
    ram, flash = r.ram, r.flash
    table.add_row("RAM", f"{ram['total']:,} B: arena {ram['arena']:,}, stack {ram['stack']:,}, "
                  f"static {ram['static']:,} (model state {ram['model_state']:,})")
    table.add_row("flash", f"{flash['total']:,} B: weights {flash['weights']:,}, model code "
                  f"{flash['model_code']:,}, runtime {flash['runtime']:,}; "
                  f"flash - weights {flash['code']:,} B")
    table.add_row("instructions", f"{r.instructions:,} per inference ({r.method})")
    return table
