"""List the boards mcudeploy knows: CPU, CMSIS-NN path, clock, memory, UART and runners (with
the QEMU machine, the FVP model or the debug probe each runner uses)."""

from __future__ import annotations

import argparse

from rich.table import Table

from mcudeploy import terminal
from mcudeploy.boards import Board, available_boards, load_board

HELP = "list the boards"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    del parser  # no options


def run(args: argparse.Namespace) -> int:
    console = terminal.console()
    columns = ("board", "cpu", "path", "clock", "memory", "uart", "runners")
    rows = [_row(load_board(name)) for name in available_boards()]
    if console.is_terminal:
        table = Table(title="boards (boards/*.toml)")
        for column in columns:
            table.add_column(column)
        for row in rows:
            table.add_row(*row[:-1], "\n".join(row[-1].split("; ")))
        console.print(table)
    else:  # one plain line per board, whatever the width
        for row in rows:
            labelled = (f"{c}: {v}" for c, v in zip(columns[4:], row[4:], strict=True))
            print("  ".join([*row[:4], *labelled]))
    return 0


def _row(b: Board) -> tuple[str, ...]:
    memory = ", ".join(f"{r.name} {_size(r.length)}" for r in b.memory)
    uart = f"{b.uart.kind} 0x{b.uart.base:08X}, {b.baudrate} baud"
    return (b.name, b.cpu, b.cpu_class, f"{b.clock_hz / 1e6:g} MHz", memory, uart,
            "; ".join(_runners(b)))


def _runners(board: Board) -> list[str]:
    """Each runner with what it drives: QEMU machine, FVP model, probe and pyOCD target."""
    out = []
    for runner in board.runners:
        if runner == "qemu" and board.qemu:
            out.append(f"qemu ({board.qemu.machine})")
        elif runner == "fvp" and board.fvp:
            out.append(f"fvp ({board.fvp.model})")
        elif runner == "serial" and board.probe:
            p = board.probe
            out.append(f"serial ({p.name} {p.usb_vid:04x}:{p.usb_pid:04x}, pyOCD {p.pyocd_target})")
        else:
            out.append(runner)
    return out


def _size(length: int) -> str:
    return f"{length // 2**20}M" if length % 2**20 == 0 else f"{length // 1024}K"
