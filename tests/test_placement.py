"""Placement by size: the weights and the arena go to the first of the regions the board lists
for them that holds them; the build links them there and the firmware runs bit-exact; a model
no listed placement holds is refused before anything is built, naming the last placement tried."""

from __future__ import annotations

import json
import re
from pathlib import Path

from elftools.elf.elffile import ELFFile

from mcudeploy.cli import main
from mcudeploy.resources import boards_dir

ROOT = Path(__file__).resolve().parent.parent
BUNDLED = ROOT / "models" / "tiny_cnn.tflite"  # weights 2,272 B (arrays 16-byte aligned), arena 1,440 B
SRAM, DDR = (0x01000000, 0x01200000), (0x60000000, 0x70000000)


def _board(tmp_path: Path, lengths: dict[str, int], weights: str, arena: str) -> Path:
    """mps3-an547 with regions shrunk, a stack of at most 2 KiB and the given placement lists."""
    text = (boards_dir() / "mps3-an547.toml").read_text().replace("stack_bytes = 16384", "stack_bytes = 2048")
    for region, length in lengths.items():
        at = text.index("length = ", text.index(f'name = "{region}"'))
        text = text[:at] + f"length = {length:#x}" + text[text.index("\n", at):]
    text = re.sub(r"\nweights = .*\n", f"\nweights = {weights}\n", text)
    text = re.sub(r"\narena = .*\n", f"\narena = {arena}\n", text)
    path = tmp_path / "placed-an547.toml"
    path.write_text(text.replace('name = "mps3-an547"', 'name = "placed-an547"'))
    return path


def _section(elf_path: Path, name: str) -> int:
    with open(elf_path, "rb") as f:
        return ELFFile(f).get_section_by_name(name)["sh_addr"]


def test_arena_and_weights_go_to_the_first_region_that_holds_them(tmp_path: Path) -> None:
    # DTCM keeps the runtime's data and stack (estimates: 4,132 + 2,048 B) but not the arena as
    # well; SRAM is too small for the weights: the arena goes to SRAM, the weights to DDR.
    board = _board(tmp_path, {"DTCM": 0x1C00, "SRAM": 0x800}, '["SRAM", "DDR"]', '["DTCM", "SRAM", "DDR"]')
    out = tmp_path / "out"
    assert main(["run", str(BUNDLED), "--board", str(board), "--out", str(out), "--vectors", "4", "-q"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert (report["verdict"], report["bit_exact_vectors"], report["vectors"]) == ("pass", 4, 4)
    assert report["oracles"] == ["host-reference", "tflm"]
    manifest = json.loads((out / "model" / "manifest.json").read_text())
    assert manifest["placement"] == {"arena": "SRAM", "weights": "DDR"}
    elf = out / "build" / "firmware.elf"
    assert SRAM[0] <= _section(elf, ".arena") < SRAM[1]
    assert DDR[0] <= _section(elf, ".weights") < DDR[1]
    assert _section(elf, ".data") >= 0x20000000


def test_the_preferred_regions_when_they_hold_the_model(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["build", str(BUNDLED), "--out", str(out), "-q"]) == 0
    manifest = json.loads((out / "model" / "manifest.json").read_text())
    assert manifest["placement"] == {"arena": "DTCM", "weights": "SRAM"}
    assert 0x20000000 <= _section(out / "build" / "firmware.elf", ".arena") < 0x20080000


def test_no_placement_holds_the_model(tmp_path: Path, capsys) -> None:
    board = _board(tmp_path, {"DTCM": 0x1C00, "SRAM": 0x800, "DDR": 0x800}, '["SRAM", "DDR"]',
                   '["DTCM", "SRAM", "DDR"]')
    out = tmp_path / "out"
    assert main(["build", str(BUNDLED), "--board", str(board), "--out", str(out)]) == 2
    text = " ".join(capsys.readouterr().err.split())
    found = re.search(r"error: the model does not fit board placed-an547: in none of the 6 placements it "
                      r"allows; with the arena in DDR and the weights in DDR, region DDR holds 2,048 bytes "
                      r"but needs ([\d,]+) \(weights ([\d,]+) \+ arena 1,440\): ([\d,]+) bytes over", text)
    assert found is not None, text
    needs, weights, over = (int(g.replace(",", "")) for g in found.groups())
    assert needs == weights + 1440 and over == needs - 2048 and weights >= 2160  # the bundled model's
    assert not out.exists() and "Traceback" not in text
