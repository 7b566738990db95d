"""The runners: the serial runner for real through a pseudo-terminal that QEMU serves (the same
tty code path as a board's /dev/ttyACM0), the FVP's command line from the board file and its
absence, and flashing through pyOCD up to the point where a real probe is needed."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from nnpack import make_pack
from serial.tools import list_ports
from serial.tools.list_ports_common import ListPortInfo

from mcudeploy.boards import Board, load_board
from mcudeploy.build import build_firmware
from mcudeploy.cli import main
from mcudeploy.device.runners import make_runner
from mcudeploy.device.runners.base import reap
from mcudeploy.device.runners.fvp import FvpRunner
from mcudeploy.device.runners.qemu import QemuRunner
from mcudeploy.device.runners.serial import SerialRunner, find_port
from mcudeploy.errors import BoardError, InputError, RunnerError
from mcudeploy.nnlib import NNLibrary

ROOT = Path(__file__).resolve().parent.parent
BUNDLED = ROOT / "models" / "tiny_cnn.tflite"
AN547 = load_board("mps3-an547")
F767 = load_board("nucleo-f767zi")
FVP_MODEL = "FVP_Corstone_SSE-300_Ethos-U55"


def run_cli(args: list[str], capsys) -> tuple[int, str]:
    status = main(args)
    captured = capsys.readouterr()
    return status, captured.err + captured.out


# ---- serial: a real tty, served by QEMU ----

@contextmanager
def qemu_on_a_pty(board: Board, elf: Path, log: Path) -> Iterator[tuple[subprocess.Popen, str]]:
    """QEMU running `elf` with the board's UART on a new pseudo-terminal (`-serial pty`, command
    line from the board file, with -icount): the process and the tty's path."""
    with open(log, "wb") as out:
        process = subprocess.Popen(QemuRunner(board, elf, icount=True).command("pty"),
                                   stdin=subprocess.DEVNULL, stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + 10
        while not (found := re.search(r"char device redirected to (/dev/pts/\d+)", log.read_text())):
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.01)
        yield process, found.group(1)
    finally:
        reap(process)


def board_with_serial(tmp_path: Path, name: str = "mps2-an386") -> Path:
    """A copy of a QEMU board file that also lists the serial runner."""
    text = (ROOT / "boards" / f"{name}.toml").read_text()
    path = tmp_path / "boards" / f"{name}.toml"
    path.parent.mkdir()
    path.write_text(text.replace('runners = ["qemu"]', 'runners = ["qemu", "serial"]'))
    return path


@pytest.mark.device
def test_serial_runner_verifies_the_bundled_model_through_a_tty(tmp_path: Path, capsys) -> None:
    board_file = board_with_serial(tmp_path)
    flashed = tmp_path / "flashed"
    assert main(["build", str(BUNDLED), "--board", str(board_file), "--out", str(flashed), "-q"]) == 0
    elf = flashed / "build" / "firmware.elf"
    with qemu_on_a_pty(load_board(board_file), elf, tmp_path / "qemu.log") as (qemu, tty):
        out = tmp_path / "out"
        status, text = run_cli(["run", str(BUNDLED), "--board", str(board_file), "--runner", "serial",
                                "--port", tty, "--vectors", "8", "--out", str(out), "-q"], capsys)
        report = json.loads((out / "report.json").read_text())
        assert status == 0, text
        assert (report["runner"], report["verdict"], report["bit_exact_vectors"]) == ("serial", "pass", 8)
        assert report["oracles"] == ["host-reference", "tflm"]
        assert qemu.wait(5) == 0  # the run's EXIT stopped the device


@pytest.mark.device
def test_serial_runner_refuses_a_board_running_another_model(tmp_path: Path, capsys) -> None:
    board_file = board_with_serial(tmp_path)
    echo = build_firmware(load_board(board_file), ROOT / "tests" / "firmware" / "echo_model",
                          tmp_path / "echo", NNLibrary("none", (), ()))
    out = tmp_path / "out"
    with qemu_on_a_pty(load_board(board_file), echo, tmp_path / "qemu.log") as (_, tty):
        status, _ = run_cli(["run", str(BUNDLED), "--board", str(board_file), "--runner", "serial",
                             "--port", tty, "--out", str(out), "-q"], capsys)
    report = json.loads((out / "report.json").read_text())
    assert status == 3 and report["verdict"] == "error"
    assert report["error"].startswith("the device runs model 6563686f6d646c31, not the one just built")


def _port(device: str, vid: int | None = None, pid: int | None = None) -> ListPortInfo:
    info = ListPortInfo(device)
    info.vid, info.pid = vid, pid
    return info


def test_serial_port_is_found_by_the_probes_usb_ids() -> None:
    ports = [_port("/dev/ttyS0"), _port("/dev/ttyACM3", 0x0483, 0x374B),
             _port("/dev/ttyUSB0", 0x0403, 0x6001)]
    assert find_port(F767, ports) == "/dev/ttyACM3"
    with pytest.raises(RunnerError, match=r"several ST-LINK/V2-1 ports \(USB 0483:374b\): /dev/ttyACM0, "
                                          r"/dev/ttyACM3; choose one with --port"):
        find_port(F767, [*ports, _port("/dev/ttyACM0", 0x0483, 0x374B)])
    with pytest.raises(RunnerError, match=r"no serial port of a ST-LINK/V2-1 \(USB 0483:374b\) for board "
                                          r"nucleo-f767zi \(ports: /dev/ttyS0\); connect the board or "
                                          r"pass --port"):
        find_port(F767, ports[:1])
    with pytest.raises(RunnerError, match="board mps3-an547 has no \\[probe\\] table"):
        find_port(AN547, ports)


def test_serial_runner_without_a_board_attached(tmp_path: Path) -> None:
    if any((p.vid, p.pid) == (0x0483, 0x374B) for p in list_ports.comports()):
        pytest.skip("an ST-LINK/V2-1 is attached to this machine")
    with pytest.raises(RunnerError, match=r"no serial port of a ST-LINK/V2-1 \(USB 0483:374b\)"), \
            SerialRunner(F767):
        pass
    with pytest.raises(RunnerError, match=f"cannot open serial port {tmp_path}/ttyNONE: "), \
            SerialRunner(F767, str(tmp_path / "ttyNONE")):
        pass


def test_runner_must_be_one_the_board_lists(tmp_path: Path, capsys) -> None:
    with pytest.raises(BoardError, match=r"board mps3-an547 cannot use runner 'serial' "
                                         r"\(its runners: qemu, fvp, labgrid\)"):
        make_runner("serial", AN547, tmp_path / "fw.elf")
    status, text = run_cli(["run", str(BUNDLED), "--port", "/dev/ttyACM0"], capsys)
    assert status == 2 and "--port is for --runner serial" in text


def test_missing_qemu_is_a_runner_error(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RunnerError, match=r"qemu-system-arm is not on PATH; install it \(Debian: "
                                          r"apt-get install qemu-system-arm\)"), \
            QemuRunner(AN547, tmp_path / "fw.elf"):
        pass


# ---- fvp ----

def test_fvp_command_comes_from_the_board_file() -> None:
    runner = FvpRunner(AN547, Path("/out/firmware.elf"))
    assert runner.command("/opt/fvp/" + FVP_MODEL, 5123) == [
        "/opt/fvp/" + FVP_MODEL, "-a", "/out/firmware.elf",
        "-C", "mps3_board.telnetterminal0.start_telnet=0",
        "-C", "mps3_board.telnetterminal0.mode=raw",
        "-C", "mps3_board.telnetterminal0.start_port=5123",
        "-C", "cpu0.semihosting-enable=1",
        "-C", "mps3_board.visualisation.disable-visualisation=1",
        "-C", "mps3_board.telnetterminal1.start_telnet=0",
        "-C", "mps3_board.telnetterminal2.start_telnet=0",
        "-C", "mps3_board.telnetterminal5.start_telnet=0",
    ]


def test_missing_fvp_is_a_clear_error(tmp_path: Path, capsys) -> None:
    if shutil.which(FVP_MODEL):
        pytest.skip(f"{FVP_MODEL} is installed on this machine")
    out = tmp_path / "out"
    status, _ = run_cli(["run", str(BUNDLED), "--runner", "fvp", "--out", str(out), "-q"], capsys)
    report = json.loads((out / "report.json").read_text())
    assert status == 3 and report["verdict"] == "error"
    assert report["error"] == (f"{FVP_MODEL} is not on PATH; install Arm's Corstone FVP (a free "
                               "download from Arm) and add its models directory to PATH, or pass --fvp PATH")
    with pytest.raises(InputError, match=f"--fvp {tmp_path}/FVP: not an executable file"), \
            FvpRunner(AN547, tmp_path / "fw.elf", executable=tmp_path / "FVP"):
        pass


# A stand-in for the FVP executable, which cannot be installed here: it takes the FVP's options,
# serves the UART's raw terminal from QEMU's model of the same machine (the Corstone-300 memory
# map and UART of the AN547), announces the port as the FVP does, and exits with QEMU's status.
FVP_STAND_IN = """\
import subprocess, sys
args = sys.argv[1:]
elf = args[args.index("-a") + 1]
settings = dict(args[i + 1].split("=", 1) for i, a in enumerate(args) if a == "-C")
term = "mps3_board.telnetterminal0"
assert settings[term + ".mode"] == "raw" and settings[term + ".start_telnet"] == "0", settings
assert settings["cpu0.semihosting-enable"] == "1", settings
port = int(settings[term + ".start_port"]) + 1  # as the FVP does when its port is taken
qemu = subprocess.Popen(["qemu-system-arm", "-M", "mps3-an547", "-display", "none", "-monitor", "none",
                         "-serial", f"tcp:127.0.0.1:{port},server=on,wait=on,nodelay=on",
                         "-semihosting", "-kernel", elf])
print(f"telnetterminal0: Listening for serial connection on port {port}", flush=True)
sys.exit(qemu.wait())
"""


@pytest.mark.device
def test_fvp_runner_reaches_the_announced_port(tmp_path: Path, capsys) -> None:
    fvp = tmp_path / FVP_MODEL
    fvp.write_text(f"#!{sys.executable}\n{FVP_STAND_IN}")
    fvp.chmod(0o755)
    out = tmp_path / "out"
    status, text = run_cli(["run", str(BUNDLED), "--runner", "fvp", "--fvp", str(fvp),
                            "--vectors", "5", "--out", str(out), "-q"], capsys)
    report = json.loads((out / "report.json").read_text())
    assert status == 0, text
    assert (report["runner"], report["verdict"], report["bit_exact_vectors"]) == ("fvp", "pass", 5)


# ---- flash (pyOCD) ----

def _probes() -> list:
    from pyocd.core.helpers import ConnectHelper
    return ConnectHelper.get_all_connected_probes(blocking=False, print_wait_message=False)


def test_flash_refuses_a_board_without_a_probe(tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    status, text = run_cli(["flash", str(BUNDLED), "--board", "mps2-an385", "--out", str(out)], capsys)
    assert status == 2
    assert "board mps2-an385 has no [probe] table: it cannot be flashed (its runners: qemu)" in text
    assert not out.exists()


def test_flash_builds_then_needs_a_probe(tmp_path: Path, capsys) -> None:
    if _probes():
        pytest.skip("a debug probe is attached to this machine")
    out = tmp_path / "out"
    status, text = run_cli(["flash", str(BUNDLED), "--board", "nucleo-f767zi", "--out", str(out), "-q"],
                           capsys)
    assert status == 3
    assert ("no debug probe found for board nucleo-f767zi (a ST-LINK/V2-1 on USB); connect the board, "
            "and check its USB permissions (udev rules)") in " ".join(text.split())
    assert (out / "build" / "firmware.elf").is_file()


def test_flash_takes_the_library_and_tuning_options_of_build(tmp_path: Path, capsys) -> None:
    if _probes():
        pytest.skip("a debug probe is attached to this machine")
    pack = make_pack(tmp_path / "pack", "6.0.0", api="6")
    out = tmp_path / "out"
    status, text = run_cli(["flash", str(BUNDLED), "--board", "nucleo-f767zi", "--cmsis-nn", str(pack),
                            "--out", str(out), "-q"], capsys)
    assert status == 3 and "no debug probe found for board nucleo-f767zi" in " ".join(text.split())
    assert json.loads((out / "model" / "manifest.json").read_text())["library"] == "CMSIS-NN 6.0.0"
    status, text = run_cli(["flash", str(BUNDLED), "--board", "nucleo-f767zi", "--tuning",
                            str(tmp_path / "none.json"), "--out", str(tmp_path / "o2"), "-q"], capsys)
    assert status == 2 and f"{tmp_path}/none.json: no such tuning file (--tune creates one)" in text
    status, text = run_cli(["flash", str(BUNDLED), "--board", "nucleo-f767zi", "--tune", "--out",
                            str(tmp_path / "o3"), "-q"], capsys)
    assert status == 2 and "board nucleo-f767zi has no simulator" in " ".join(text.split())


def test_flash_names_the_pack_a_target_needs(tmp_path: Path, capsys) -> None:
    from pyocd.target.pack.pack_target import ManagedPacks
    if any(d.part_number.lower() == "stm32l4r5zitx" for d in ManagedPacks.get_installed_targets()):
        pytest.skip("the STM32L4 pack is installed for pyOCD on this machine")
    status, text = run_cli(["flash", str(BUNDLED), "--board", "nucleo-l4r5zi", "--out",
                            str(tmp_path / "out"), "-q"], capsys)
    assert status == 3
    assert ("pyOCD does not know target 'stm32l4r5zitx' (board nucleo-l4r5zi); install its CMSIS pack "
            "(`pyocd pack install stm32l4r5zitx`) or pass --pack FILE") in " ".join(text.split())
    status, text = run_cli(["flash", str(BUNDLED), "--board", "nucleo-l4r5zi", "--pack",
                            str(tmp_path / "none.pack"), "--out", str(tmp_path / "o2"), "-q"], capsys)
    assert status == 2 and f"--pack {tmp_path}/none.pack: no such file" in text
