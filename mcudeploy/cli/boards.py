"""List the boards mcudeploy knows: CPU, CMSIS-NN path, memory and runners."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from mcudeploy.boards import available_boards, load_board

HELP = "list the boards"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    del parser  # no options


def run(args: argparse.Namespace) -> int:
    table = Table(title="boards (boards/*.toml)")
    for column in ("board", "cpu", "path", "memory", "runners", "description"):
        table.add_column(column)
    for name in available_boards():
        b = load_board(name)
        memory = ", ".join(f"{r.name} {r.length // 1024}K" for r in b.memory)
        table.add_row(b.name, b.cpu, b.cpu_class, memory, ", ".join(b.runners), b.description)
    Console().print(table)
    return 0
