"""The stack: sized at build time from the call graph of the firmware's code (mcudeploy/stack.py),
measured on the device (painted at reset, scanned by the STACK request) and checked against that
bound. Uses tests/firmware/echo_model and fault_model on QEMU (mps3-an547); the guard against an
overflow is tested through `mcudeploy run` in test_faults.py."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile
from modelgen import GraphBuilder
from runtime_firmware import BOARD, SIZE, device, echo
from test_mcd_kernels import forced_tuning

from mcudeploy.boards import load_board
from mcudeploy.build import firmware_sizes, stack_plan
from mcudeploy.cli import main
from mcudeploy.device.protocol import INPUT, OUTPUT
from mcudeploy.manifest import code_path
from mcudeploy.memory import ram_figures
from mcudeploy.stack import (
    GUARD_BYTES,
    CallGraph,
    StackBeyondBound,
    check_within_bound,
    code_addresses,
    exception_frame,
    folded_functions,
)

pytestmark = pytest.mark.device


def test_the_stack_is_the_call_graph_bound_and_room_for_two_exception_frames(echo_elf: Path) -> None:
    plan = stack_plan(echo_elf)
    assert plan.bound is not None and plan.note == ""
    assert plan.path[:3] == ("Reset_Handler", "main", "mcd_serve")
    # The M55's frames are extended (FPU and MVE state): 104 bytes and 4 of alignment each.
    assert exception_frame(BOARD) == 108 and plan.fault == 108 and plan.interrupt >= 108
    assert plan.bound == plan.thread + plan.interrupt
    assert plan.bytes == -(-(plan.bound + plan.fault) // 8) * 8 == firmware_sizes(echo_elf)["stack"]
    assert plan.fault > GUARD_BYTES  # the guard lies in room nothing but a fault's frame reaches
    assert exception_frame(load_board("mps2-an385")) == 36  # no FPU: the basic frame


def test_the_device_measures_its_stack_within_the_bound(echo_elf: Path) -> None:
    plan = stack_plan(echo_elf)
    with device(echo_elf) as (_, link):
        link.hello()
        after_hello = link.stack()
        for seed in range(3):
            data = random.Random(seed).randbytes(SIZE)
            link.write(INPUT, 0, data)
            link.invoke()
            assert link.read(OUTPUT, 0, SIZE) == echo(data)[1]
        after_invokes = link.stack()
    assert after_hello.size == after_invokes.size == plan.bytes
    # Start-up and the protocol, then the layers too: the mark only rises, and stays in the bound.
    assert 0 < after_hello.used <= after_invokes.used <= plan.bound
    check_within_bound(plan, after_invokes.used)
    used, low = after_invokes.used, after_invokes.used - 8
    with pytest.raises(StackBeyondBound, match=f"the device's stack high-water mark is {used:,} B, above the "
                                               f"{low:,} B bound its stack was sized from"):
        check_within_bound(replace(plan, bound=low), used)


def test_indirect_calls_reach_the_functions_whose_address_the_image_takes(echo_elf: Path) -> None:
    addresses = code_addresses(echo_elf)
    assert addresses is not None
    handlers, taken = addresses
    assert handlers[:2] == ["Reset_Handler", "mcd_fault_entry"]
    assert {"SysTick_Handler", "mcd_uart_rx_irq"} <= set(handlers)
    # The model's layer table and the byte sink the COBS encoder is handed; no other function.
    assert taken == {"add_step", "reverse", "mcd_uart_putc"}
    graph = CallGraph.read(sorted((echo_elf.parent / "callgraph").glob("*.ci")) +
                           sorted((echo_elf.parent / "obj").rglob("*.ci")))
    # The runtime runs each layer through the model's mcd_model_layer, which calls the layer table.
    assert "mcd_model_layer" in graph.calls["mcd_invoke"]
    assert "__indirect_call" in graph.calls["mcd_model_layer"]


def _symbol(elf: Path, name: str) -> int:
    with open(elf, "rb") as f:
        return ELFFile(f).get_section_by_name(".symtab").get_symbol_by_name(name)[0]["st_value"]


def _section_end(elf: Path, name: str) -> int:
    with open(elf, "rb") as f:
        section = ELFFile(f).get_section_by_name(name)
        return section["sh_addr"] + section["sh_size"]


def test_the_fault_handlers_stack_is_the_top_of_the_arena(echo_elf: Path, fault_elf: Path) -> None:
    """Its size is the handler's call-graph depth and one more exception frame; an arena smaller than
    that (fault_model has none) grows to it, and the growth is static RAM, counted once."""
    graph = CallGraph.read(sorted((echo_elf.parent / "callgraph").glob("*.ci")) +
                           sorted((echo_elf.parent / "obj").rglob("*.ci")))
    report = graph.functions["mcd_fault_report"].frame
    plan = stack_plan(echo_elf)
    assert report is not None and report + exception_frame(BOARD) <= plan.fault_stack <= 512
    assert plan.fault_stack % 8 == 0
    echo_sizes = firmware_sizes(echo_elf)
    # 900 B of arena, then 4 to align the fault stack's top to 8 (counted as static RAM)
    assert (echo_sizes["arena"], echo_sizes["fault_stack"]) == (900, 4)
    assert _symbol(echo_elf, "__fault_stack_top__") == _section_end(echo_elf, ".arena")
    assert _symbol(echo_elf, "__fault_stack_top__") % 8 == 0
    fault_plan, fault_sizes = stack_plan(fault_elf), firmware_sizes(fault_elf)
    assert (fault_sizes["arena"], fault_sizes["fault_stack"]) == (0, fault_plan.fault_stack)
    top, start = _symbol(fault_elf, "__fault_stack_top__"), _symbol(fault_elf, "__arena_start__")
    assert top - start == fault_plan.fault_stack
    ram = ram_figures(fault_sizes, 0, None)
    assert ram["static"] == fault_sizes["data"] + fault_sizes["bss"] + fault_plan.fault_stack
    assert ram["total"] == ram["arena"] + ram["stack"] + ram["static"] == fault_sizes["ram"]


def test_recursion_leaves_no_bound_and_the_boards_maximum(fault_elf: Path) -> None:
    plan = stack_plan(fault_elf)
    assert plan.bound is None and plan.bytes == BOARD.placement.stack_bytes == 16384
    assert plan.note == "recurse calls itself (recursion)", plan.note
    with device(fault_elf) as (_, link):
        link.hello()
        use = link.stack()
    assert use.size == 16384 and 0 < use.used < 1024


def test_layers_folded_into_one_body_are_bounded(tmp_path: Path) -> None:
    """Two 1x1 convolutions on 6 channels (generated kernels through im2col) whose inputs have
    different zero points: their kernels' texts differ only in the padding's value, which a 1x1
    window never reads, so mcudeploy writes two kernels (kernel_sharing) and GCC's identical code
    folding keeps one body under both names with one call graph node: each name is bounded by that
    node (before, the stack fell back to the board's 16 KiB)."""
    b = GraphBuilder(seed=4)
    x, y = b.input((1, 4, 4, 6)), b.input((1, 4, 4, 6))
    first, second = b.conv(x, 8, kernel=(1, 1)), b.conv(y, 8, kernel=(1, 1))
    b.tensors[second] = replace(b.tensors[second], quant=b.tensors[first].quant)
    graph, data = b.build([first, second], "folded")
    model = tmp_path / "folded.tflite"
    model.write_bytes(data)
    assert forced_tuning(graph, "mps2-an386", "mcd_dsp", tmp_path / "tuning.json") == 1
    out = tmp_path / "out"
    assert main(["build", str(model), "--board", "mps2-an386", "--tuning", str(tmp_path / "tuning.json"),
                 "--out", str(out), "-q"]) == 0
    assert "The kernel is layer" not in code_path(out / "model").read_text()
    elf = out / "build" / "firmware.elf"
    folded = folded_functions(elf)
    assert folded["l1_conv2d_kernel"] >= {"l0_conv2d_kernel"}
    plan = stack_plan(elf)
    assert plan.bound is not None and plan.bytes < 1024, plan
