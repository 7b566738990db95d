"""Board files: every shipped board validates and builds; every mistake in a board file is one
line naming the file, the line and the field."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from mcudeploy.boards import available_boards, load_board
from mcudeploy.build import board_defines
from mcudeploy.cli import main
from mcudeploy.errors import BoardError

ROOT = Path(__file__).resolve().parent.parent
BUNDLED = ROOT / "models" / "tiny_cnn.tflite"
AN547 = (ROOT / "boards" / "mps3-an547.toml").read_text()
L4R5 = (ROOT / "boards" / "nucleo-l4r5zi.toml").read_text()


def test_shipped_boards() -> None:
    boards = {name: load_board(name) for name in available_boards()}
    assert set(boards) >= {"mps2-an385", "mps2-an386", "mps2-an500", "mps2-an505", "mps3-an547",
                           "nucleo-l4r5zi", "nucleo-f767zi"}
    summary = {name: (b.cpu, b.cpu_class, tuple(b.runners)) for name, b in boards.items()}
    assert summary["mps2-an385"] == ("cortex-m3", "plain", ("qemu",))
    assert summary["mps2-an386"] == ("cortex-m4", "dsp", ("qemu",))
    assert summary["mps2-an500"] == ("cortex-m7", "dsp", ("qemu",))
    assert summary["mps2-an505"] == ("cortex-m33", "dsp", ("qemu",))
    assert summary["mps3-an547"] == ("cortex-m55", "mve", ("qemu", "fvp", "labgrid"))
    assert summary["nucleo-l4r5zi"] == ("cortex-m4", "dsp", ("serial", "labgrid"))
    assert summary["nucleo-f767zi"] == ("cortex-m7", "dsp", ("serial", "labgrid"))
    for name in ("nucleo-l4r5zi", "nucleo-f767zi"):
        probe = boards[name].probe
        assert probe is not None and (probe.usb_vid, probe.usb_pid) == (0x0483, 0x374B)
        assert not boards[name].semihosting  # a BKPT with no debugger attached is a HardFault


def test_stm32_uart_defines() -> None:
    assert board_defines(load_board("nucleo-l4r5zi")) == {
        "MCD_UART_BASE": "0x40008000u", "MCD_SEMIHOSTING": "0", "MCD_HAS_FPU": "1",
        "MCD_SYSTICK_HZ": "4000000u", "MCD_STACK_GUARD_BYTES": "32u", "MCD_UART_STM32": "1",
        "MCD_UART_BRR": "0x22B9u",  # 256 * 4 MHz / 115200 = 8888.9
        "MCD_UART_ENABLES": "0x40021058u,28u,0x40007004u,9u,0x4002104Cu,6u,0x4002105Cu,0u",
        "MCD_UART_GPIO": "0x48001800u", "MCD_UART_TX_PIN": "7u", "MCD_UART_RX_PIN": "8u",
        "MCD_UART_AF": "8u", "MCD_UART_RX_IRQ": "70",
    }
    f767 = board_defines(load_board("nucleo-f767zi"))
    assert f767["MCD_UART_BRR"] == "0x8Bu"  # 16 MHz / 115200 = 138.9
    assert f767["MCD_UART_RX_IRQ"] == "39"
    assert board_defines(load_board("mps2-an385"))["MCD_UART_CMSDK"] == "1"


def test_rx_irq_is_optional_and_bounded(tmp_path: Path) -> None:
    """Without uart.rx_irq the device polls its UART (no define); a line past v8-M's 480 is refused."""
    text = AN547.replace("rx_irq = 33", "rx_irq = 480")
    assert board_error(tmp_path, text) == (
        f"FILE:{line_of(text, 'rx_irq')}: field 'uart.rx_irq': Input should be less than 480")
    path = tmp_path / "mps3-an547.toml"
    path.write_text(re.sub(r"rx_irq = 33 .*\n", "", AN547))
    board = load_board(path)
    assert board.uart.rx_irq is None
    assert "MCD_UART_RX_IRQ" not in board_defines(board)
    assert board_defines(load_board("mps3-an547"))["MCD_UART_RX_IRQ"] == "33"


@pytest.mark.parametrize(("name", "flash_end", "rx_irq"), [("nucleo-l4r5zi", 0x08200000, 70),
                                                            ("nucleo-f767zi", 0x08200000, 39)])
def test_real_boards_build_the_bundled_model(name: str, flash_end: int, rx_irq: int, tmp_path: Path,
                                             capsys) -> None:
    """Compile-tested only: these boards cannot run here (no probe, and QEMU models neither).
    The vector table reaches the UART's interrupt (RM0432: LPUART1 is 70; RM0410: USART3 is 39)."""
    out = tmp_path / "out"
    assert main(["build", str(BUNDLED), "--board", name, "--out", str(out), "-q"]) == 0
    assert f"for {name}" in capsys.readouterr().out
    with open(out / "build" / "firmware.elf", "rb") as f:
        elf = ELFFile(f)
        symbols = elf.get_section_by_name(".symtab")
        (vectors,) = symbols.get_symbol_by_name("mcd_vectors")
        assert (vectors["st_value"], vectors["st_size"]) == (0x08000000, 4 * (16 + rx_irq + 1))
        assert symbols.get_symbol_by_name("mcd_uart_init")  # the STM32 driver, not CMSDK's
        (handler,) = symbols.get_symbol_by_name("mcd_uart_rx_irq")
        table = elf.get_section_by_name(".vectors").data()
        assert int.from_bytes(table[4 * (16 + rx_irq):][:4], "little") == handler["st_value"]
        weights = elf.get_section_by_name(".weights")
        assert 0x08000000 <= weights["sh_addr"] < flash_end
        data = elf.get_section_by_name(".data")
        assert data["sh_addr"] >= 0x20000000 and data["sh_addr"] != data["sh_offset"]


def board_error(tmp_path: Path, text: str, name: str = "mps3-an547") -> str:
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    with pytest.raises(BoardError) as exc:
        load_board(path)
    return str(exc.value).replace(str(path), "FILE")


def line_of(text: str, pattern: str, nth: int = 0) -> int:
    lines = [i for i, s in enumerate(text.splitlines(), 1) if re.match(pattern, s)]
    return lines[nth]


def test_unknown_field_suggests_the_known_one(tmp_path: Path) -> None:
    text = AN547.replace("stack_bytes", "stack_size")
    assert board_error(tmp_path, text) == (
        f"FILE:{line_of(text, 'stack_size')}: field 'placement.stack_size': unknown field "
        "(did you mean 'stack_bytes'?)")


def test_unknown_field_in_the_nth_memory_region(tmp_path: Path) -> None:
    text = AN547.replace("length = 0x00200000", "lenght = 0x00200000")
    assert board_error(tmp_path, text) == (
        f"FILE:{line_of(text, 'lenght')}: field 'memory[2].lenght': unknown field "
        "(did you mean 'length'?)")


def test_missing_field_points_at_its_table(tmp_path: Path) -> None:
    text = AN547.replace("bauddiv = 16\n", "")
    line = line_of(text, r"\[uart\]")
    assert board_error(tmp_path, text) == f"FILE:{line}: field 'uart.bauddiv': missing field"
    text = AN547.replace("instructions_per_tick = 31.25\n", "")
    line = line_of(text, r"\[qemu\]")
    assert board_error(tmp_path, text) == (
        f"FILE:{line}: field 'qemu.instructions_per_tick': missing field")


def test_missing_top_level_field(tmp_path: Path) -> None:
    text = AN547.replace("clock_hz = 32_000_000\n", "")
    assert board_error(tmp_path, text) == "FILE:1: field 'clock_hz': missing field"


def test_wrong_type(tmp_path: Path) -> None:
    text = AN547.replace("clock_hz = 32_000_000", 'clock_hz = "32 MHz"')
    assert board_error(tmp_path, text) == (
        f"FILE:{line_of(text, 'clock_hz')}: field 'clock_hz': Input should be a valid integer")
    text = AN547.replace("fpu = true", "fpu = 1")
    assert board_error(tmp_path, text) == (
        f"FILE:{line_of(text, 'fpu')}: field 'fpu': Input should be a valid boolean")


def test_overlapping_memory_regions(tmp_path: Path) -> None:
    text = AN547.replace("origin = 0x01000000", "origin = 0x00070000")
    assert board_error(tmp_path, text) == (
        f"FILE:{line_of(text, 'origin = 0x00070000')}: field 'memory[2].origin': region SRAM at "
        "0x00070000 overlaps region ITCM (0x00000000..0x0007FFFF)")


def test_placement_in_an_unknown_region(tmp_path: Path) -> None:
    text = AN547.replace('data = "DTCM"', 'data = "TCM"')
    assert board_error(tmp_path, text) == (
        f"FILE:{line_of(text, 'data')}: field 'placement.data': region 'TCM' is not in memory "
        "(regions: DDR, DTCM, ITCM, SRAM)")


def test_placement_choices_name_known_regions_once(tmp_path: Path) -> None:
    # The weights and the arena may list regions, in order of preference (mcudeploy.codegen.fit).
    assert load_board("mps3-an547").placement.choices("arena") == ["DTCM", "SRAM"]
    text = AN547.replace('arena = ["DTCM", "SRAM"]', 'arena = ["DTCM", "TCM", "DDR"]')
    assert board_error(tmp_path, text) == (
        f"FILE:{line_of(text, 'arena')}: field 'placement.arena[1]': region 'TCM' is not in memory "
        "(regions: DDR, DTCM, ITCM, SRAM)")
    text = AN547.replace('weights = "SRAM"', 'weights = ["SRAM", "DDR", "SRAM"]')
    assert board_error(tmp_path, text) == (
        f"FILE:{line_of(text, 'weights')}: field 'placement.weights[2]': region 'SRAM' is listed twice")
    text = AN547.replace('weights = "SRAM"', "weights = []")
    assert board_error(tmp_path, text) == (
        f"FILE:{line_of(text, 'weights')}: field 'placement.weights': lists no region")


def test_duplicate_region_name(tmp_path: Path) -> None:
    text = AN547.replace('name = "DDR"', 'name = "SRAM"')
    line = line_of(text, 'name = "SRAM"', 1)
    assert board_error(tmp_path, text) == (
        f"FILE:{line}: field 'memory[3].name': a second region named 'SRAM'")


@pytest.mark.parametrize(
    ("old", "new", "field", "message"),
    [
        ('cpu = "cortex-m55"', 'cpu = "cortex-m3"', "fpu", "cortex-m3 has no FPU; set fpu = false"),
        ('cpu = "cortex-m55"', 'cpu = "cortex-m7"', "mve", "mve = 'float' but cortex-m7 has no MVE"),
        ("fpu = true", "fpu = false", "mve",
         "cortex-m55: mve = 'float' needs the FPU; set fpu = true or mve = 'int'"),
    ],
    ids=["fpu", "mve", "mve fpu"],
)
def test_impossible_cpu_features(tmp_path: Path, old: str, new: str, field: str,
                                 message: str) -> None:
    text = AN547.replace(old, new)
    assert board_error(tmp_path, text) == (
        f"FILE:{line_of(text, f'{field} =')}: field '{field}': {message}")


def test_runner_without_its_table(tmp_path: Path) -> None:
    start = AN547.index("[fvp]")
    text = AN547[:start]
    assert board_error(tmp_path, text) == (
        f"FILE:{line_of(text, 'runners')}: field 'runners': runners lists 'fvp' but there is no "
        "[fvp] table")


def test_unknown_uart_kind(tmp_path: Path) -> None:
    text = AN547.replace('kind = "cmsdk"', 'kind = "pl011"')
    assert board_error(tmp_path, text) == (
        f"FILE:{line_of(text, 'kind')}: field 'uart.kind': must be one of 'cmsdk', 'stm32-usart', "
        "'stm32-lpuart'")


def test_stm32_uart_errors(tmp_path: Path) -> None:
    text = L4R5.replace("baud = 115200", "baud = 4_000_000")
    assert board_error(tmp_path, text, "nucleo-l4r5zi") == (
        f"FILE:{line_of(text, 'baud =')}: field 'uart.baud': 4000000 baud from a 4000000 Hz clock "
        "needs BRR 256, outside stm32-lpuart's 768..1048575")
    text = L4R5.replace("bit = 9,", "bit = 32,")
    assert board_error(tmp_path, text, "nucleo-l4r5zi") == (
        f"FILE:{line_of(text, 'enable =')}: field 'uart.enable[1].bit': Input should be less than "
        "or equal to 31")
    text = L4R5.replace("baud = 115200", "bauddiv = 16")
    assert board_error(tmp_path, text, "nucleo-l4r5zi") == (
        f"FILE:{line_of(text, 'bauddiv')}: field 'uart.bauddiv': unknown field (did you mean 'baud'?)")


def test_name_must_match_the_file(tmp_path: Path) -> None:
    path = tmp_path / "my-board.toml"
    path.write_text(AN547)
    with pytest.raises(BoardError, match=rf"my-board\.toml:{line_of(AN547, 'name')}: field 'name' "
                                         r"is 'mps3-an547' but the file is my-board\.toml"):
        load_board(path)


def test_not_toml(tmp_path: Path) -> None:
    assert board_error(tmp_path, AN547 + "\n[uart\n").startswith("FILE: not valid TOML")


def test_boards_command_lists_every_board_with_its_runners(capsys) -> None:
    assert main(["boards"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(available_boards())
    by_name = {line.split()[0]: line for line in lines}
    assert "cortex-m3  plain  25 MHz" in by_name["mps2-an385"]
    assert "runners: qemu (mps3-an547); fvp (FVP_Corstone_SSE-300_Ethos-U55)" in by_name["mps3-an547"]
    assert ("uart: stm32-lpuart 0x40008000, 115200 baud  runners: serial (ST-LINK/V2-1 0483:374b, "
            "pyOCD stm32l4r5zitx)") in by_name["nucleo-l4r5zi"]
    assert "memory: FLASH 2M, SRAM 640K" in by_name["nucleo-l4r5zi"]


def test_a_region_past_4_gib_is_refused(tmp_path: Path) -> None:
    ddr = "origin = 0x60000000\nlength = 0x10000000"
    text = AN547.replace(ddr, "origin = 0xFFFFF000\nlength = 0x10000000")
    assert board_error(tmp_path, text) == (
        f"FILE:{line_of(text, 'length = 0x10000000')}: field 'memory[3].length': region DDR at 0xFFFFF000 "
        "with length 0x10000000 ends at 0x10FFFF000, past the 32-bit address space (0xFFFFFFFF)")
    path = tmp_path / "mps3-an547.toml"
    path.write_text(AN547.replace(ddr, "origin = 0xF0000000\nlength = 0x10000000"))
    assert load_board(path).region("DDR").end == 2**32  # up to the last byte is fine


@pytest.mark.parametrize(
    ("base", "message"),
    [
        ("0", "0x00000000 is in the first 4 KiB, where the vector table starts; no peripheral sits there "
              "(GCC rejects an access below 0x1000 as a null-pointer dereference)"),
        ("0xFFC", "0x00000FFC is in the first 4 KiB, where the vector table starts; no peripheral sits "
                  "there (GCC rejects an access below 0x1000 as a null-pointer dereference)"),
        ("0x49303002", "0x49303002 is not 4-byte aligned: the registers are 32-bit words"),
        ("0xE000E000", "0xE000E000 is in the Private Peripheral Bus (0xE0000000..0xE00FFFFF), which holds "
                       "the core's own registers (NVIC, SysTick, SCB)"),
        ("0x20001000", "0x20001000 is inside memory region DTCM (0x20000000..0x2007FFFF), not a peripheral"),
    ],
    ids=["zero", "first 4 KiB", "unaligned", "core's own", "in RAM"],
)
def test_impossible_uart_base(base: str, message: str, tmp_path: Path) -> None:
    """A UART at 0 used to surface only as GCC's -Warray-bounds error in runtime.h."""
    text = AN547.replace("base = 0x49303000", f"base = {base}")
    assert board_error(tmp_path, text) == f"FILE:{line_of(text, 'base =')}: field 'uart.base': {message}"


def test_impossible_stm32_register_addresses(tmp_path: Path) -> None:
    text = L4R5.replace("gpio = 0x48001800", "gpio = 0x08001800")
    assert board_error(tmp_path, text, "nucleo-l4r5zi") == (
        f"FILE:{line_of(text, 'gpio')}: field 'uart.gpio': 0x08001800 is inside memory region FLASH "
        "(0x08000000..0x081FFFFF), not a peripheral")
    text = L4R5.replace("reg = 0x40007004", "reg = 0x40007006")
    assert board_error(tmp_path, text, "nucleo-l4r5zi") == (
        f"FILE:{line_of(text, 'enable =')}: field 'uart.enable[1].reg': 0x40007006 is not 4-byte aligned: "
        "the registers are 32-bit words")


def test_a_stack_larger_than_its_region_is_refused(tmp_path: Path) -> None:
    text = AN547.replace("stack_bytes = 16384", "stack_bytes = 0x100000")
    assert board_error(tmp_path, text) == (
        f"FILE:{line_of(text, 'stack_bytes')}: field 'placement.stack_bytes': 1048576 bytes do not fit "
        "region DTCM (524288 bytes)")


def test_a_stack_maximum_that_is_not_a_multiple_of_8_is_refused(tmp_path: Path) -> None:
    text = AN547.replace("stack_bytes = 16384", "stack_bytes = 2052")
    assert board_error(tmp_path, text) == (
        f"FILE:{line_of(text, 'stack_bytes')}: field 'placement.stack_bytes': Input should be a "
        "multiple of 8")
