"""The labgrid runner against a real labgrid farm on this machine: a coordinator and exporters on
127.0.0.1, whose places are QEMUs started without firmware (`-S -gdb ... -serial pty`), served by
labgrid's exporter through ser2net (kept to loopback by a wrapper the exporter finds on its PATH),
flashed by mcudeploy through QEMU's GDB server."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mcudeploy.cli import main
from mcudeploy.device.runners.base import free_port, reap
from mcudeploy.device.runners.labgrid import PlaceState, choose_places, matching_places
from mcudeploy.errors import RunnerError

ROOT = Path(__file__).resolve().parent.parent
BUNDLED = ROOT / "models" / "tiny_cnn.tflite"
BIN = Path(sys.executable).parent
SPEED = 2_000_000  # mps3-an547's UART: 32 MHz / BAUDDIV 16
LOOPBACK = ("127.0.0.1", "[::ffff:127.0.0.1]")

# ser2net with every TCP accepter bound to 127.0.0.1: labgrid's exporter starts it as
# `telnet(rfc2217,mode=server),tcp,PORT`, which listens on every interface.
SER2NET_ON_LOOPBACK = """\
import os, re, sys
args = [re.sub(r"\\),tcp,(\\d+)$", r"),tcp,127.0.0.1,\\1", a) for a in sys.argv[1:]]
os.execv({ser2net!r}, [{ser2net!r}, *args])
"""


def _require_tools() -> None:
    missing = [tool for tool in ("ser2net", "gdb-multiarch", "qemu-system-arm") if not _which(tool)]
    try:
        import labgrid  # noqa: F401
        import pygdbmi  # noqa: F401
    except ImportError as exc:
        missing.append(f"python package {exc.name}")
    if missing:
        message = f"missing {', '.join(missing)} (scripts/setup.sh installs them)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def _which(tool: str) -> str | None:
    return shutil.which(tool) or shutil.which(tool, path="/usr/sbin")


def _stop_group(process: subprocess.Popen) -> None:
    """SIGTERM to the process group we started `process` in (it and the children it started, such
    as the exporter's ser2net), SIGKILL after a grace period, then reap."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # a child left behind in the group


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


def _descendants(pid: int) -> list[int]:
    found = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in children:
            found += _descendants(int(child))
    return found


def _listening(pids: set[int]) -> list[tuple[str, str]]:
    """(local address, process) of every TCP socket in LISTEN held by one of `pids`."""
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
    found = []
    for line in out.splitlines():
        fields = line.split()
        users = re.findall(r'\("([^"]+)",pid=(\d+)', line)
        if any(int(pid) in pids for _, pid in users):
            found.append((fields[3], users[0][0]))
    return found


def _ask(coordinator: str, work: Callable[[Any], Awaitable[Any]], user: str | None = None) -> Any:
    """`await work(session)` on a labgrid client session made for the purpose, as `user` (default:
    this user), the way labgrid-client does it (it takes 1.7 s to start)."""
    from labgrid.remote.client import ClientSession

    async def ask() -> Any:
        session = ClientSession(coordinator, asyncio.get_running_loop())
        await session.start()
        try:
            return await work(session)
        finally:
            await session.stop()
            await session.close()

    saved = os.environ.get("LG_USERNAME")
    if user is not None:
        os.environ["LG_USERNAME"] = user
    try:
        return asyncio.run(ask())
    finally:
        if user is not None:
            os.environ.pop("LG_USERNAME")
        if saved is not None:
            os.environ["LG_USERNAME"] = saved


def _request(coordinator: str, method: str, user: str | None = None, **fields: str) -> None:
    """One request to the coordinator (AddPlace, AcquirePlace, ...), as `labgrid-client` sends it."""
    from labgrid.remote.generated import labgrid_coordinator_pb2 as pb2

    async def send(session: Any) -> None:
        await getattr(session.stub, method)(getattr(pb2, f"{method}Request")(**fields))
        await session.sync_with_coordinator()

    _ask(coordinator, send, user)


async def _read_resources(session: Any) -> dict:
    return {exporter: {group: {name: entry for name, entry in resources.items() if "cls" in entry.data}
                       for group, resources in groups.items()}
            for exporter, groups in session.resources.items()}


async def _read_acquired(session: Any) -> dict[str, str | None]:
    return {name: place.acquired for name, place in session.places.items()}


def _resources(coordinator: str) -> dict:
    """What the coordinator knows: {exporter: {group: {resource name: entry}}}."""
    return _ask(coordinator, _read_resources)


def _acquired(coordinator: str) -> dict[str, str | None]:
    """Who holds each place."""
    return _ask(coordinator, _read_acquired)


PLACES = ("qemu-a", "qemu-b", "qemu-x")


@pytest.fixture(scope="module")
def coordinator(tmp_path_factory) -> Iterator[str]:
    """A labgrid coordinator on 127.0.0.1 with places qemu-a, qemu-b and qemu-x, each matching the
    exporter group of its name."""
    _require_tools()
    work = tmp_path_factory.mktemp("coordinator")
    address = f"127.0.0.1:{free_port()}"
    with open(work / "coordinator.log", "wb") as log:
        process = subprocess.Popen([str(BIN / "labgrid-coordinator"), "--listen", address], cwd=work,
                                   stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while "Coordinator ready" not in (text := (work / "coordinator.log").read_text()):
            assert process.poll() is None and time.monotonic() < deadline, text
            time.sleep(0.05)
        for place in PLACES:
            _request(address, "AddPlace", name=place)
            _request(address, "AddPlaceMatch", placename=place, pattern=f"*/{place}/*")
        yield address
    finally:
        _stop_group(process)
    assert not _alive(process.pid)


class Lab:
    """Places served by one exporter: a firmware-less QEMU per place."""

    def __init__(self, coordinator: str, work: Path) -> None:
        self.coordinator = coordinator
        self.work = work
        self.qemus: dict[str, subprocess.Popen] = {}
        self.gdb_ports: dict[str, int] = {}
        self.exporter: subprocess.Popen | None = None
        self.pids: set[int] = set()
        self.name = f"exporter-{work.parent.name}"  # one per test: a fresh set of resources

    def start(self, machines: dict[str, str], ports: dict[str, str] | None = None) -> None:
        """One QEMU per place (place name: QEMU machine), then the exporter serving them all;
        `ports` gives a place another place's serial port (a miswired place)."""
        ttys, groups = {}, {}
        for place, machine in machines.items():
            gdb = self.gdb_ports[place] = free_port()
            log = self.work / f"{place}.qemu.log"
            with open(log, "wb") as out:
                qemu = self.qemus[place] = subprocess.Popen(
                    ["qemu-system-arm", "-M", machine, "-display", "none", "-monitor", "none", "-S",
                     "-gdb", f"tcp:127.0.0.1:{gdb}", "-serial", "pty", "-semihosting"],
                    stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True)
            self.pids.add(qemu.pid)
            deadline = time.monotonic() + 10
            while not (tty := re.search(r"redirected to (/dev/pts/\d+)", log.read_text())):
                assert qemu.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.01)
            ttys[place] = tty.group(1)
        for place in machines:
            tty = ttys[(ports or {}).get(place, place)]
            groups[place] = (f"{place}:\n  RawSerialPort:\n    port: {tty}\n    speed: {SPEED}\n"
                             f"  GDBServer:\n    host: 127.0.0.1\n    port: {self.gdb_ports[place]}\n")
        (self.work / "exporter.yaml").write_text("".join(groups.values()))
        wrapper = self.work / "bin" / "ser2net"
        wrapper.parent.mkdir(exist_ok=True)
        wrapper.write_text(f"#!{sys.executable}\n" + SER2NET_ON_LOOPBACK.format(ser2net=_which("ser2net")))
        wrapper.chmod(0o755)
        name = self.name
        env = {**os.environ, "PATH": f"{wrapper.parent}:{os.environ['PATH']}"}
        with open(self.work / "exporter.log", "wb") as log:
            self.exporter = subprocess.Popen(
                [str(BIN / "labgrid-exporter"), "-c", self.coordinator, "--hostname", "127.0.0.1",
                 "-n", name, str(self.work / "exporter.yaml")],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env, start_new_session=True)
        self.pids.add(self.exporter.pid)
        deadline = time.monotonic() + 20
        while set(_resources(self.coordinator).get(name, {})) != set(machines):
            assert self.exporter.poll() is None and time.monotonic() < deadline, \
                (self.work / "exporter.log").read_text()
            time.sleep(0.1)

    def all_pids(self) -> set[int]:
        return {pid for started in self.pids for pid in _descendants(started)}

    def stop(self) -> None:
        started = self.all_pids()
        if self.exporter is not None:
            _stop_group(self.exporter)
        for qemu in self.qemus.values():
            reap(qemu)
        stray = [pid for pid in started if _alive(pid)]
        assert not stray, f"processes left running: {stray}"


@pytest.fixture
def lab(coordinator: str, tmp_path: Path) -> Iterator[Lab]:
    (tmp_path / "lab").mkdir()
    started = Lab(coordinator, tmp_path / "lab")
    try:
        yield started
    finally:
        started.stop()


def _run(args: list[str], capsys) -> tuple[int, str]:
    status = main(args)
    captured = capsys.readouterr()
    return status, " ".join((captured.err + captured.out).split())


def _run_on_places(out: Path, coordinator: str, *args: str) -> list[str]:
    return ["run", str(BUNDLED), "--runner", "labgrid", "--coordinator", coordinator, "--out", str(out),
            "-q", *args]


@pytest.mark.device
def test_two_places_at_once_bit_exact(lab: Lab, tmp_path: Path, capsys) -> None:
    lab.start({"qemu-a": "mps3-an547", "qemu-b": "mps3-an547"})
    out = tmp_path / "out"
    status, text = _run(_run_on_places(out, lab.coordinator, "--place", "qemu-", "--place", "qemu-b",
                                       "--jobs", "2", "--vectors", "24"), capsys)
    report = json.loads((out / "report.json").read_text())
    assert status == 0, text
    assert (report["runner"], report["verdict"], report["bit_exact_vectors"]) == ("labgrid", "pass", 24)
    assert report["oracles"] == ["host-reference", "tflm"] and report["link"]["jobs"] == 2
    # both places ran (their QEMUs ended at the run's EXIT with status 0), and both were released
    assert [lab.qemus[p].wait(5) for p in ("qemu-a", "qemu-b")] == [0, 0]
    assert _acquired(lab.coordinator) == dict.fromkeys(PLACES)
    assert not _running("gdb-multiarch")  # the loads' gdbs ended


def _running(name: str) -> list[int]:
    """Our child processes still running `name`."""
    return [pid for pid in _descendants(os.getpid())[1:] if _alive(pid)
            and Path(f"/proc/{pid}/comm").read_text().strip() == name[:15]]


@pytest.mark.device
def test_a_place_held_by_another_user(lab: Lab, tmp_path: Path, capsys) -> None:
    lab.start({"qemu-a": "mps3-an547"})
    _request(lab.coordinator, "AcquirePlace", user="alice", placename="qemu-a")
    try:
        # alice's acquisition started ser2net on the exporter: on loopback only, as is everything
        # else this test started
        deadline = time.monotonic() + 10
        while not any(proc == "ser2net" for _, proc in _listening(lab.all_pids())):
            assert time.monotonic() < deadline, (lab.work / "exporter.log").read_text()
            time.sleep(0.1)
        coordinator_pid = {int(p) for p in re.findall(r"pid=(\d+)", subprocess.run(
            ["ss", "-ltnpH", f"sport = :{lab.coordinator.rsplit(':', 1)[1]}"], capture_output=True,
            text=True).stdout)}
        sockets = _listening(lab.all_pids() | coordinator_pid)
        assert {proc for _, proc in sockets} >= {"ser2net", "qemu-system-arm"}, sockets
        assert all(address.rsplit(":", 1)[0] in LOOPBACK for address, _ in sockets), sockets
        out = tmp_path / "out"
        status, text = _run(_run_on_places(out, lab.coordinator, "--place", "qemu-a"), capsys)
        report = json.loads((out / "report.json").read_text())
        assert status == 3 and report["verdict"] == "error", text
        assert re.fullmatch(r"a place needed, 0 free among qemu-a: place qemu-a is acquired by [^/]+/alice",
                            report["error"]), report["error"]
        assert _acquired(lab.coordinator)["qemu-a"].endswith("/alice")  # still alice's
    finally:
        _request(lab.coordinator, "ReleasePlace", user="alice", placename="qemu-a")


@pytest.mark.device
def test_a_dead_place(lab: Lab, tmp_path: Path, capsys) -> None:
    lab.start({"qemu-a": "mps3-an547"})
    reap(lab.qemus["qemu-a"])  # the board is gone; its exporter still offers its port
    out = tmp_path / "out"
    status, text = _run(_run_on_places(out, lab.coordinator, "--place", "qemu-a"), capsys)
    report = json.loads((out / "report.json").read_text())
    assert status == 3 and report["verdict"] == "error", text
    server = f"127.0.0.1:{lab.gdb_ports['qemu-a']}"
    assert report["error"] == (f"place qemu-a does not answer: GDB server {server} does not answer: "
                               f"-target-select: {server}: Connection refused.")
    assert _acquired(lab.coordinator)["qemu-a"] is None  # released


@pytest.mark.device
def test_a_port_that_does_not_answer(lab: Lab, tmp_path: Path, capsys) -> None:
    # qemu-a's serial port is qemu-b's, whose QEMU nobody flashes: it stays halted, silent
    lab.start({"qemu-a": "mps3-an547", "qemu-b": "mps3-an547"}, ports={"qemu-a": "qemu-b"})
    out = tmp_path / "out"
    status, text = _run(_run_on_places(out, lab.coordinator, "--place", "qemu-a", "--timeout", "2"),
                        capsys)
    report = json.loads((out / "report.json").read_text())
    assert status == 3 and report["verdict"] == "error", text
    assert re.fullmatch(r"place qemu-a: no answer to HELLO .*", report["error"]), report["error"]
    assert _acquired(lab.coordinator)["qemu-a"] is None


@pytest.mark.device
def test_a_failed_flash(lab: Lab, tmp_path: Path, capsys) -> None:
    lab.start({"qemu-x": "mps2-an500"})  # a Cortex-M7 board: no SRAM at 0x01000000 for the weights
    out = tmp_path / "out"
    status, text = _run(_run_on_places(out, lab.coordinator, "--place", "qemu-x"), capsys)
    report = json.loads((out / "report.json").read_text())
    assert status == 3 and report["verdict"] == "error", text
    assert re.fullmatch(r"place qemu-x: flashing firmware.elf \(board mps3-an547\) failed: the \d+ bytes "
                        r"loaded at 0x01000000 read back differently from 0x010000[0-9A-F]{2} on: the target "
                        r"has no writable memory there", report["error"]), report["error"]
    assert _acquired(lab.coordinator)["qemu-x"] is None


@pytest.mark.device
def test_flash_a_held_place_then_run_through_its_rfc2217_url(lab: Lab, tmp_path: Path, capsys) -> None:
    """`mcudeploy flash --runner labgrid` on a place the user holds (it stays held), then the serial
    runner with the port the exporter serves, as a pyserial URL."""
    lab.start({"qemu-b": "mps3-an547"})
    _request(lab.coordinator, "AcquirePlace", placename="qemu-b")
    try:
        status, text = _run(["flash", str(BUNDLED), "--board", "mps3-an547", "--runner", "labgrid",
                             "--place", "qemu-b", "--coordinator", lab.coordinator,
                             "--out", str(tmp_path / "flashed"), "-q"], capsys)
        assert status == 0, text
        assert "to mps3-an547 through labgrid place qemu-b; it is running" in text
        assert _acquired(lab.coordinator)["qemu-b"] is not None  # still ours
        [port] = [entry.params["port"] for entry in _resources(lab.coordinator)[lab.name]["qemu-b"].values()
                  if entry.cls == "NetworkSerialPort"]
        board = tmp_path / "boards" / "mps3-an547.toml"
        board.parent.mkdir()
        board.write_text((ROOT / "boards" / "mps3-an547.toml").read_text().replace(
            'runners = ["qemu", "fvp", "labgrid"]', 'runners = ["serial"]'))
        out = tmp_path / "out"
        status, text = _run(["run", str(BUNDLED), "--board", str(board), "--runner", "serial", "--port",
                             f"rfc2217://127.0.0.1:{port}?ign_set_control", "--vectors", "6",
                             "--out", str(out), "-q"], capsys)
        report = json.loads((out / "report.json").read_text())
        assert status == 0, text
        assert (report["runner"], report["verdict"], report["bit_exact_vectors"]) == ("serial", "pass", 6)
    finally:
        _request(lab.coordinator, "ReleasePlace", placename="qemu-b")


def test_option_errors(capsys) -> None:
    status, text = _run(["run", str(BUNDLED), "--runner", "labgrid"], capsys)
    assert status == 2 and "error: --runner labgrid needs a place: --place NAME" in text
    status, text = _run(["run", str(BUNDLED), "--place", "qemu-a"], capsys)
    assert status == 2 and "error: --place is for --runner labgrid" in text
    status, text = _run(["flash", str(BUNDLED), "--board", "mps2-an385", "--runner", "labgrid",
                         "--place", "a"], capsys)
    assert status == 2 and "board mps2-an385 cannot use runner 'labgrid' (its runners: qemu)" in text


def test_unreachable_coordinator(tmp_path: Path, capsys) -> None:
    _require_tools()
    out = tmp_path / "out"
    address = f"127.0.0.1:{free_port()}"
    status, text = _run(_run_on_places(out, address, "--place", "qemu-a"), capsys)
    report = json.loads((out / "report.json").read_text())
    assert status == 3 and report["verdict"] == "error", text
    assert report["error"].startswith(f"cannot reach the labgrid coordinator at {address}: coordinator is "
                                      "unavailable: failed to connect to all addresses")
    assert report["error"].endswith("Connection refused") and not text.count("ERROR:root")


def test_place_patterns() -> None:
    places = {"qemu-a": PlaceState("h/me", frozenset({"h/me"})),
              "qemu-b": PlaceState(aliases=frozenset({"lab:m55"})),
              "qemu-c": PlaceState("h/bob", frozenset({"h/bob"})),
              "qemu-d": PlaceState("h/bob", frozenset({"h/bob", "h/me"})),  # bob allowed me
              "qemu": PlaceState()}
    assert matching_places(places, "qemu") == ["qemu"]  # a name is that place
    assert matching_places(places, "qemu-") == ["qemu-a", "qemu-b", "qemu-c", "qemu-d"]
    assert matching_places(places, "m55") == ["qemu-b"]  # an alias
    assert choose_places(places, ("qemu-",), 2, "h/me") == ["qemu-a", "qemu-d"]  # ours first
    assert choose_places(places, ("qemu-",), 3, "h/me") == ["qemu-a", "qemu-d", "qemu-b"]
    assert choose_places(places, ("qemu-c", "qemu-b"), 1, "h/me") == ["qemu-b"]
    with pytest.raises(RunnerError, match=r"^4 places \(--jobs 4\) needed, 3 free among qemu-a, qemu-b, "
                                          r"qemu-c, qemu-d: place qemu-c is acquired by h/bob$"):
        choose_places(places, ("qemu-",), 4, "h/me")
    with pytest.raises(RunnerError, match=r"^no labgrid place matches 'rpi' \(places: qemu, qemu-a, qemu-b, "
                                          r"qemu-c, qemu-d\)$"):
        choose_places(places, ("rpi",), 1, "h/me")

