"""Boards in a labgrid farm (`--runner labgrid`): places acquired through the lab's coordinator,
firmware loaded through the GDB server a place offers, the UART reached through the serial port
its exporter serves (ser2net, RFC 2217).

labgrid (the optional extra `mcudeploy[labgrid]`) is imported only here, and only when used. The
coordinator connection runs labgrid's client session on an event loop of its own thread, so that
it keeps answering the coordinator while the jobs stream vectors.

A place is what `labgrid-client -p NAME create` / `add-match` made. It must hold one serial port
(`RawSerialPort` or `USBSerialPort` on the exporter, a `NetworkSerialPort` once acquired) and one
`GDBServer` entry (`host`, `port` and optionally `reset`, the `monitor` command that resets the
target after loading: `system_reset` for QEMU, the default; `reset halt` for pyOCD and OpenOCD).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import serial

from mcudeploy.boards import Board
from mcudeploy.device.protocol import DeviceHang
from mcudeploy.device.runners.base import Runner
from mcudeploy.device.runners.gdbload import GdbServer, GdbServerSilent, load_elf
from mcudeploy.device.runners.serial import open_port
from mcudeploy.errors import DeviceFault, LinkError, RunnerError

DEFAULT_COORDINATOR = "127.0.0.1:20408"  # labgrid's own default
GDB_SERVER = "GDBServer"  # the exporter entry naming a place's GDB server
_SERIAL = "NetworkSerialPort"
_PUBLISH_SECONDS = 10.0  # for an exporter to start ser2net after the place is acquired
_CALL_SECONDS = 30.0


def coordinator_address(option: str | None) -> str:
    """The coordinator to use: --coordinator, else LG_COORDINATOR, else labgrid's default."""
    return option or os.environ.get("LG_COORDINATOR") or DEFAULT_COORDINATOR


@dataclass(frozen=True)
class Place:
    """An acquired place as a run uses it: its serial port's pyserial URL and its GDB server."""

    name: str
    serial_url: str
    gdb: GdbServer


@dataclass(frozen=True)
class PlaceState:
    """What the coordinator says of a place: who acquired it ("host/user"), who else may use it,
    its aliases."""

    acquired: str | None = None
    allowed: frozenset[str] = frozenset()
    aliases: frozenset[str] = frozenset()


class _Messages(logging.Handler):
    """The warnings and errors labgrid logs (to the root logger), kept for our own messages
    instead of printed."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.seen: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.seen.append(record.getMessage().split("\n")[0])


class Lab:
    """A client session with a labgrid coordinator. Every use of labgrid's session runs on the
    session's event loop, in its own thread."""

    def __init__(self, address: str) -> None:
        try:
            from labgrid.remote.client import ClientSession
        except ImportError:
            raise RunnerError("--runner labgrid needs labgrid: pip install 'mcudeploy[labgrid]'") from None
        self.address = address if ":" in address else f"{address}:20408"
        self._messages = _Messages()
        logging.getLogger().addHandler(self._messages)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="labgrid", daemon=True)
        self._thread.start()

        async def connect() -> Any:
            session = ClientSession(self.address, self._loop)
            await session.start()
            return session

        try:
            self.session = self._call(connect)
        except Exception as exc:
            self._stop_loop()
            why = self._messages.seen[-1] if self._messages.seen else str(exc)
            raise RunnerError(f"cannot reach the labgrid coordinator at {self.address}: {why}") from None
        self.user = f"{self.session.gethostname()}/{self.session.getuser()}"

    def _call(self, work: Callable[[], Any]) -> Any:
        """Run the coroutine function `work` on the session's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(work(), self._loop).result(_CALL_SECONDS)

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()
        logging.getLogger().removeHandler(self._messages)

    def close(self) -> None:
        """End the session and its thread."""
        async def stop() -> None:
            await self.session.stop()
            await self.session.close()

        try:
            self._call(stop)
        finally:
            self._stop_loop()

    def places(self) -> dict[str, PlaceState]:
        """Every place the coordinator knows, by name."""
        async def read() -> dict[str, PlaceState]:
            return {name: PlaceState(p.acquired, frozenset(p.allowed), frozenset(p.aliases))
                    for name, p in self.session.places.items()}
        return self._call(read)

    def acquire(self, name: str) -> None:
        self._request("AcquirePlace", "AcquirePlaceRequest", name, "could not be acquired")

    def release(self, name: str) -> None:
        self._request("ReleasePlace", "ReleasePlaceRequest", name, "could not be released")

    def _request(self, method: str, request: str, name: str, failed: str) -> None:
        import grpc
        from labgrid.remote.generated import labgrid_coordinator_pb2 as pb2

        async def send() -> None:
            await getattr(self.session.stub, method)(getattr(pb2, request)(placename=name))
            await self.session.sync_with_coordinator()

        try:
            self._call(send)
        except grpc.aio.AioRpcError as exc:
            raise RunnerError(f"place {name} {failed}: {exc.details()}") from None

    def resources(self, name: str) -> dict[str, list[dict]]:
        """The place's acquired resources by class: each as {params, avail}."""
        async def read() -> dict[str, list[dict]]:
            await self.session.sync_with_coordinator()
            found: dict[str, list[dict]] = {}
            for exporter, group, cls, resource in self.session.places[name].acquired_resources:
                entry = self.session.resources.get(exporter, {}).get(group, {}).get(resource)
                if entry is not None:
                    found.setdefault(cls, []).append({"params": entry.params, "avail": entry.avail,
                                                      "name": f"{exporter}/{group}/{resource}"})
            return found
        return self._call(read)


def matching_places(places: dict[str, PlaceState], pattern: str) -> list[str]:
    """The places `pattern` names, as `labgrid-client -p` reads it: the place of that name, else
    every place whose name or alias contains it."""
    if pattern in places:
        return [pattern]
    return sorted(name for name, place in places.items()
                  if pattern in name or any(pattern in alias for alias in place.aliases))


def choose_places(places: dict[str, PlaceState], patterns: tuple[str, ...], count: int,
                  user: str) -> list[str]:
    """`count` places among those the patterns match that `user` holds (or was allowed to use) or
    may take: those it holds first, then idle ones, each in name order. A RunnerError naming the
    places otherwise."""
    matched: list[str] = []
    for pattern in patterns:
        names = matching_places(places, pattern)
        if not names:
            known = ", ".join(sorted(places)) or "none"
            raise RunnerError(f"no labgrid place matches {pattern!r} (places: {known})")
        matched += [n for n in names if n not in matched]
    ours = [n for n in matched if places[n].acquired == user
            or (places[n].acquired and user in places[n].allowed)]
    idle = [n for n in matched if places[n].acquired is None]
    usable = (ours + idle)[:count]
    if len(usable) == count:
        return usable
    held = "; ".join(f"place {n} is acquired by {places[n].acquired}"
                     for n in matched if n not in ours + idle)
    want = "a place" if count == 1 else f"{count} places (--jobs {count})"
    raise RunnerError(f"{want} needed, {len(usable)} free among {', '.join(matched)}: {held}")


def place_target(name: str, resources: dict[str, list[dict]]) -> Place | None:
    """The serial URL and GDB server of an acquired place; None while its exporter has not yet
    published its serial port; a RunnerError for a place mcudeploy cannot use."""
    ports, gdbs = resources.get(_SERIAL, []), resources.get(GDB_SERVER, [])
    offers = ", ".join(sorted(resources)) or "nothing"
    if len(ports) != 1 or len(gdbs) != 1:
        raise RunnerError(f"place {name} offers {offers}: mcudeploy needs one serial port "
                          f"(RawSerialPort or USBSerialPort on its exporter) and one {GDB_SERVER} entry")
    port, gdb = ports[0], gdbs[0]
    if port["params"].get("extra", {}).get("proxy_required"):
        raise RunnerError(f"place {name}: its exporter is isolated (reached only through an SSH "
                          "proxy), which mcudeploy does not support")
    params = port["params"]
    broken = params.get("extra", {}).get("broken")
    if broken:
        raise RunnerError(f"place {name}: its exporter reports its serial port broken ({broken})")
    if not port["avail"] or not params.get("port"):
        return None
    scheme = "socket://{}:{}" if params.get("protocol") == "raw" else "rfc2217://{}:{}?ign_set_control"
    server = GdbServer(f"{gdb['params']['host']}:{gdb['params']['port']}",
                       gdb["params"].get("reset") or GdbServer.reset)
    return Place(name, scheme.format(params["host"], params["port"]), server)


@contextmanager
def acquired_places(coordinator: str | None, patterns: tuple[str, ...], count: int,
                    step: Callable[[str], None] = lambda _: None) -> Iterator[list[Place]]:
    """`count` places matching `patterns`, acquired for the block unless the user already holds
    them (then they stay held), and released after it, whatever happens in it."""
    lab = Lab(coordinator_address(coordinator))
    taken: list[str] = []
    try:
        names = choose_places(lab.places(), patterns, count, lab.user)
        for name in names:
            if lab.places()[name].acquired is None:
                lab.acquire(name)
                taken.append(name)
        step(f"using labgrid place{'s' if len(names) > 1 else ''} {', '.join(names)} "
             f"(coordinator {lab.address})")
        yield [_published(lab, name) for name in names]
    except BaseException:
        with contextlib.suppress(RunnerError):  # the error that got us here is the one to tell
            _release(lab, taken)
        raise
    else:
        _release(lab, taken)
    finally:
        lab.close()


def _release(lab: Lab, names: list[str]) -> None:
    """Release every place of `names`, then raise the first failure, if any."""
    failures = []
    for name in names:
        try:
            lab.release(name)
        except RunnerError as exc:
            failures.append(exc)
    if failures:
        raise failures[0]


def _published(lab: Lab, name: str) -> Place:
    """The place once its exporter publishes its serial port (it starts ser2net on acquisition)."""
    deadline = time.monotonic() + _PUBLISH_SECONDS
    while (place := place_target(name, lab.resources(name))) is None:
        if time.monotonic() > deadline:
            raise RunnerError(f"place {name}: its exporter did not serve its serial port within "
                              f"{_PUBLISH_SECONDS:.0f} s of the place being acquired")
        time.sleep(0.1)
    return place


def flash_place(place: Place, elf: Path, board: Board) -> None:
    """Load `elf`, built for `board`, into `place` through its GDB server and let it run; a
    RunnerError naming the place if it does not answer or the load fails."""
    try:
        load_elf(elf, place.gdb)
    except GdbServerSilent as exc:
        raise RunnerError(f"place {place.name} does not answer: {exc}") from None
    except RunnerError as exc:
        raise RunnerError(f"place {place.name}: flashing {elf.name} (board {board.name}) failed: "
                          f"{exc}") from None


class LabgridRunner(Runner):
    """Loads `elf` into an acquired place through its GDB server, then opens the place's serial
    port at the board's baud rate. Errors name the place."""

    def __init__(self, board: Board, elf: Path, place: Place) -> None:
        self.board = board
        self.elf = Path(elf)
        self.place = place

    def start(self) -> serial.SerialBase:
        flash_place(self.place, self.elf, self.board)
        try:
            return open_port(self.place.serial_url, self.board.baudrate)
        except RunnerError as exc:
            raise RunnerError(f"place {self.place.name} does not answer: {exc}") from None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        super().__exit__(exc_type, exc, tb)
        if type(exc) in (LinkError, DeviceHang, DeviceFault):
            raise type(exc)(f"place {self.place.name}: {exc}") from exc

    def stop(self) -> None:
        """Nothing to stop: the place's board keeps running (the base class closes the port, the
        run releases the place)."""

    def exit_status(self, timeout: float = 5.0) -> int:
        """0: a remote board has no exit status to read; its answer to EXIT is all it tells."""
        del timeout
        return 0
