"""Writing firmware to a real board's flash through its debug probe, with pyOCD's Python API."""

from __future__ import annotations

from pathlib import Path

from mcudeploy.boards import Board
from mcudeploy.errors import BoardError, InputError, RunnerError


def flash(board: Board, elf: Path, *, probe_id: str | None = None, pack: Path | None = None) -> str:
    """Program `elf` into `board` through its probe (`probe_id`: a part of the probe's unique ID,
    needed when several are connected), then reset it. `pack` is a CMSIS pack for a target pyOCD
    does not know by itself. Returns the probe's description."""
    from pyocd.core.exceptions import Error as PyocdError
    from pyocd.core.helpers import ConnectHelper
    from pyocd.core.session import Session
    from pyocd.flash.file_programmer import FileProgrammer

    if board.probe is None:
        raise BoardError(f"board {board.name} has no [probe] table: it cannot be flashed with pyOCD")
    if pack is not None and not pack.is_file():
        raise InputError(f"--pack {pack}: no such file")
    target = board.probe.pyocd_target
    options = {"pack": str(pack)} if pack else {}
    if not _target_known(target, pack):
        raise RunnerError(f"pyOCD does not know target {target!r} (board {board.name}); install its "
                          f"CMSIS pack (`pyocd pack install {target}`) or pass --pack FILE")
    probes = ConnectHelper.get_all_connected_probes(blocking=False, unique_id=probe_id,
                                                    print_wait_message=False)
    if not probes:
        which = f" with an ID containing {probe_id!r}" if probe_id else ""
        raise RunnerError(f"no debug probe{which} found for board {board.name} (a {board.probe.name} "
                          "on USB); connect the board, and check its USB permissions (udev rules)")
    if len(probes) > 1:
        ids = ", ".join(p.unique_id for p in probes)
        raise RunnerError(f"{len(probes)} debug probes are connected ({ids}); choose one with --probe")
    probe = probes[0]
    try:
        with Session(probe, target_override=target, options=options) as session:
            FileProgrammer(session).program(str(elf), file_format="elf")
            session.target.reset()
    except PyocdError as exc:
        raise RunnerError(f"pyOCD could not flash {elf} through {probe.description}: {exc}") from exc
    return f"{probe.description} ({probe.unique_id})"


def _target_known(target: str, pack: Path | None) -> bool:
    """Whether pyOCD has `target` built in, in the given pack or in a pack it manages."""
    from pyocd.target import TARGET
    from pyocd.target.pack.pack_target import ManagedPacks, PackTargets, normalise_target_type_name

    if target in TARGET:
        return True
    if pack is not None:
        parts: list[str] = []
        PackTargets.process_targets_from_pack(
            str(pack), lambda dev: parts.append(normalise_target_type_name(dev.part_number)))
        return target in parts
    return any(dev.part_number.lower() == target for dev in ManagedPacks.get_installed_targets())
