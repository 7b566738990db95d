"""The firmware image as the board file places it: vectors, weights, stack and the section sizes,
and the vector table's entry for the UART's receive interrupt. Uses tests/firmware/echo_model."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile
from runtime_firmware import BOARD, symbol_range

from mcudeploy.build import firmware_sizes

pytestmark = pytest.mark.device


def test_image_is_placed_as_the_board_says(echo_elf: Path) -> None:
    with open(echo_elf, "rb") as f:
        elf = ELFFile(f)
        symbols = elf.get_section_by_name(".symtab")
        assert symbols.get_symbol_by_name("mcd_vectors")[0]["st_value"] == 0x00000000
        assert elf.get_section_by_name(".weights")["sh_addr"] == 0x01000000
        assert symbols.get_symbol_by_name("__stack_top__")[0]["st_value"] == 0x20080000
    sizes = firmware_sizes(echo_elf)
    assert (sizes["weights"], sizes["data"], sizes["arena"], sizes["stack"]) == (16, 4, 900, 16384)
    assert 0 < sizes["code"] < 8192


def test_vector_table_reaches_the_rx_irq(echo_elf: Path) -> None:
    assert BOARD.uart.rx_irq == 33
    vectors = symbol_range(echo_elf, "mcd_vectors")
    assert len(vectors) == (16 + 33 + 1) * 4
    with open(echo_elf, "rb") as f:
        elf = ELFFile(f)
        (handler,) = elf.get_section_by_name(".symtab").get_symbol_by_name("mcd_uart_rx_irq")
        section = elf.get_section_by_name(".vectors")
        table = section.data()[vectors.start - section["sh_addr"]:][:len(vectors)]
    words = struct.unpack(f"<{len(vectors) // 4}I", table)
    assert words[16 + 33] == handler["st_value"]


