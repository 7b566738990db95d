"""Text from a model file is data, never code (issue 14).

Tensor, node, graph and variable names and the model's file name reach the generated C (comments
only: every identifier is mcudeploy's own), the build (paths), the terminal and report.txt (rich)
and report.html. Real models are renamed to hostile names, built and run: no name's text is
compiled, the build passes -Wall -Wextra -Werror, the device is still bit-exact, and every report
shows the names literally.
"""

from __future__ import annotations

import html.parser
import importlib.resources
import io
import json
import re
import subprocess
from dataclasses import replace
from pathlib import Path

import flatbuffers
import numpy as np
import onnx
import pytest
from cases import build_case, build_cases
from onnxgen import OnnxBuilder
from rich.table import Table
from rich.text import Text
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb

from mcudeploy import terminal
from mcudeploy.cli import main
from mcudeploy.codegen.ctext import COMMENT_LIMIT, comment_text
from mcudeploy.frontends.tflite import parse_tflite
from mcudeploy.reference import run_graph
from mcudeploy.report.html import render_html
from mcudeploy.report.text import render_text
from mcudeploy.toolchain import TOOLCHAIN_PREFIX, find_compiler
from mcudeploy.vectors import random_vectors

SYMBOL = "mcd_injected_symbol"
INJECTION = f"pool */ int {SYMBOL} = 42; /* x"  # compiles where a comment stands at file scope
# ...and this where a comment ends an entry of the tensor table (an array initializer), in a
# section the linker keeps, so that it reaches the ELF
TABLE_INJECTION = (f'*/ }}; __attribute__((used, section(".vectors"))) const int {SYMBOL} = 42; '
                   "const mcd_tensor mcd_rest[] = { /*")
MARKUP = "[bold red]x[/] :smile:"
HOSTILE = [
    INJECTION, "*/", "/*", "//\n", "splice\\", "a\r\nb", "??/", "#include <stdio.h>\n#error x",
    "nul\x00byte", "é中😀\u202eevil", "x" * 5000, "int", "9lives", MARKUP, "\x1b[2J\x1b]0;t\x07",
    "<script>alert(1)</script>", "a/b", "a.b", "a_b",
]
ROOT = Path(__file__).resolve().parent.parent


# ---- the one function every comment uses --------------------------------------------------------
def test_comment_text_is_one_inert_line_of_ascii() -> None:
    for name in HOSTILE:
        text = comment_text(name)
        assert all(" " <= c <= "~" for c in text), text
        assert not {"*/", "/*", "??"} & {text[i:i + 2] for i in range(len(text))}, text
        assert not text.endswith("\\")
    assert comment_text("model/conv2d/Conv2D;bias") == "model/conv2d/Conv2D;bias"  # readable
    assert comment_text("a*/b\n\\é") == "a\\x2a/b\\x0a\\x5c\\xe9"
    assert comment_text("x" * 5000) == "x" * COMMENT_LIMIT + "... (5000 characters)"
    assert len({comment_text(n) for n in ("a/b", "a.b", "a_b", "a b")}) == 4


def test_comment_text_compiles_as_a_comment_of_either_kind(tmp_path: Path) -> None:
    """Every hostile name in a block comment and in a line comment, compiled as the firmware is
    (`-std=c11` turns `??/` into a backslash): only the file's own symbol is defined."""
    lines = [f"/* {comment_text(n)} */\n// {comment_text(n)}\n" for n in HOSTILE]
    source = tmp_path / "names.c"
    source.write_text("".join(lines) + "int mcd_only_symbol;\n", encoding="ascii")
    obj = tmp_path / "names.o"
    subprocess.run([find_compiler(), "-std=c11", "-Wall", "-Wextra", "-Werror", "-c", str(source),
                    "-o", str(obj)], check=True, capture_output=True, text=True)
    assert _symbols(obj) == {"mcd_only_symbol"}


# ---- TFLite: tensor names and the file name -------------------------------------------------------
def _renamed(data: bytes, names: dict[str, bytes]) -> bytes:
    """The TFLite file with tensors (of every subgraph) renamed, old name -> new bytes."""
    model = fb.ModelT.InitFromObj(fb.Model.GetRootAs(data, 0))
    for sub in model.subgraphs:
        for t in sub.tensors:
            t.name = names.get(t.name.decode(), t.name)
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _flat(text: str) -> str:
    """Text without its spaces, line breaks and cell borders (a table wraps long names)."""
    return re.sub(r"[\s│]", "", text)


def _symbols(elf: Path) -> set[str]:
    nm = find_compiler().with_name(f"{TOOLCHAIN_PREFIX}nm")
    out = subprocess.run([nm, "--defined-only", str(elf)], check=True, capture_output=True, text=True)
    return {parts[2] for parts in map(str.split, out.stdout.splitlines()) if len(parts) == 3}


def _assert_inert_c(model_dir: Path, elf: Path) -> None:
    """No name compiled: neither in the ELF nor in the model's object (the linker drops what no
    one uses); model.c and model.h are printable ASCII with no trigraph or line splice; every
    layer function is named by mcudeploy."""
    compiled = _symbols(elf) | _symbols(elf.parent / "obj" / "model" / "model.o")
    assert "mcd_model_init" in compiled
    assert SYMBOL not in compiled and "mcd_rest" not in compiled, "a name was compiled as code"
    for name in ("model.c", "model.h"):
        text = (model_dir / name).read_text(encoding="utf-8")
        assert all(" " <= c <= "~" for line in text.splitlines() for c in line), name
        assert "??" not in text and not re.search(r"\\$", text, re.MULTILINE), name
    identifiers = set(re.findall(r"\bstatic int32_t (\w+)\(void\)", (model_dir / "model.c").read_text()))
    assert identifiers and all(re.fullmatch(r"l\d+_[a-z0-9_]+", i) for i in identifiers), identifiers


@pytest.mark.device
def test_tflite_tensor_names_inject_no_code(tmp_path: Path) -> None:
    """The name that compiled as code into the ELF before names were made inert: it closes the
    tensor table of model.c (where only this tensor's name stands)."""
    _, data = build_case("pool_add_fc_softmax")
    path = tmp_path / "injection.tflite"
    path.write_bytes(_renamed(data, {"t1_pool2d": TABLE_INJECTION.encode()}))
    out = tmp_path / "out"
    assert main(["build", str(path), "--out", str(out), "-q"]) == 0
    _assert_inert_c(out / "model", out / "build" / "firmware.elf")


class _Page(html.parser.HTMLParser):
    """The elements and the text of an HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _page(text: str) -> _Page:
    page = _Page()
    page.feed(text)
    return page


@pytest.mark.device
def test_hostile_tflite_names_and_file_name_run_bit_exact_on_qemu(tmp_path: Path, monkeypatch,
                                                                     capsys) -> None:
    """Every tensor of a two-case model (float I/O, an in-place add, constants) renamed, several
    to the same name, one to a resource variable's name, one to invalid UTF-8; the file named
    with shell, SCons and terminal syntax; run from its default output directory out/<name>/."""
    graph, data = build_cases(["pool_add_fc_softmax", "float_io_mean"], name="hostile")
    names = {name: HOSTILE[k % len(HOSTILE)].encode() for k, name in enumerate(graph.tensors)}
    names.update({"t2_add": b"variable:x", "w4": b"\xff\xfe invalid \xc3",
                  "t1_pool2d": TABLE_INJECTION.encode(),
                  "input1": MARKUP.encode(), "t12_dequantize": b"\x1b]0;t\x07 out"})  # float I/O
    shell = "$(touch PWNED) `touch PWNED` ${__import__('os').system('touch PWNED')}"
    stem = f"m {shell} [1] a;b \x1b[2J [bold red]x :smile:"  # a file name holds no /
    path = tmp_path / f"{stem}.tflite"
    path.write_bytes(_renamed(data, names))
    monkeypatch.chdir(tmp_path)
    status = main(["run", str(path), "--vectors", "3", "-q"])
    printed = capsys.readouterr()
    out = tmp_path / "out" / stem
    report = json.loads((out / "report.json").read_text())
    assert status == 0 and report["verdict"] == "pass" and report["vectors"] == 3, printed
    assert not list(tmp_path.rglob("PWNED*"))
    _assert_inert_c(out / "model", out / "build" / "firmware.elf")
    for text in (printed.out, (out / "report.txt").read_text(encoding="utf-8")):
        assert "\x1b" not in text and "😄" not in text
        assert _flat(f"the file's \\x1b]0;t\\x07 out, {MARKUP}:") in _flat(text)  # the float I/O
        assert _flat("[1] a;b \\x1b[2J [bold red]x :smile:") in _flat(text)  # the title
    page = _page((out / "report.html").read_text(encoding="utf-8"))
    assert "script" not in page.tags and stem in "".join(page.text)


# ---- ONNX: node, tensor and graph names --------------------------------------------------------------
def _hostile_onnx(path: Path) -> Path:
    """Two convolutions of one input with asymmetric padding (written to TFLite with a PAD each)
    whose node names collide once cleaned, an add, a flatten and a gemm; every name hostile."""
    b = OnnxBuilder(seed=3)
    x = b.input((1, 3, 6, 6))
    left = b.conv(x, 3, 4, pads=[1, 0, 0, 1])
    right = b.conv(x, 3, 4, pads=[0, 1, 1, 0])
    total = b.node("Add", [left, right])
    out = b.gemm(b.node("Flatten", [b.node("Relu", [total])]), 4 * 5 * 5, 5)
    model = b.model([out])
    tensors = {x: MARKUP + " \x1b[2J <script>", left: "*/ /* // \\", right: "é中😀\u202e\x00",
               total: INJECTION, out: "9 " + INJECTION}
    node_names = ["a/b", "a.b", INJECTION, "int", "9lives", "??/\n#include <stdio.h>\r\n//\\"]
    g = model.graph
    for node, name in zip(g.node, node_names, strict=True):
        node.name = name
        node.input[:] = [tensors.get(n, n) for n in node.input]
        node.output[:] = [tensors.get(n, n) for n in node.output]
    for value in (*g.input, *g.output, *g.value_info):
        value.name = tensors.get(value.name, value.name)
    g.name = INJECTION
    onnx.save(model, str(path))
    return path


@pytest.mark.device
def test_hostile_onnx_names_run_bit_exact_on_qemu(tmp_path: Path, capsys) -> None:
    path = _hostile_onnx(tmp_path / "hostile.onnx")
    calibration = tmp_path / "calibration.npy"
    np.save(calibration, np.random.default_rng(0).normal(0, 1, (16, 1, 3, 6, 6)).astype(np.float32))
    out = tmp_path / "out"
    status = main(["run", str(path), "--calibration", str(calibration), "--out", str(out),
                   "--vectors", "3", "-q"])
    report = json.loads((out / "report.json").read_text())
    assert status == 0 and report["verdict"] == "pass", capsys.readouterr()
    assert report["float_oracle"]
    _assert_inert_c(out / "model", out / "build" / "firmware.elf")
    layers = json.loads((out / "model" / "manifest.json").read_text())["layers"]
    assert any(INJECTION in layer["origin"] for layer in layers)  # the names are kept as data


@pytest.mark.parametrize("name", [b"Gemm_", b"gemm3"], ids=["node name", "tensor name"])
def test_a_name_not_in_utf8_is_refused_in_one_line(name: bytes, tmp_path: Path, capsys) -> None:
    """protobuf hands such a name over as bytes, on which onnx's own helpers raise."""
    b = OnnxBuilder(seed=1)
    out = b.gemm(b.gemm(b.input((1, 4)), 4, 3), 3, 2)
    path = tmp_path / "bad.onnx"
    path.write_bytes(b.model([out]).SerializeToString().replace(name, b"\xff\xfe" + name[2:]))
    np.save(tmp_path / "cal.npy", np.zeros((4, 1, 4), np.float32))
    status = main(["build", str(path), "--calibration", str(tmp_path / "cal.npy"), "--out",
                   str(tmp_path / "out"), "-q"])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1, err
    assert f"{path}: " in err and "is not UTF-8 text" in err
    assert "b'\\xff\\xfe" in err  # the name, shown as bytes


# ---- resource variables ------------------------------------------------------------------------------
def _with_shared_names(data: bytes, names: dict[bytes, bytes]) -> bytes:
    """The model with its VAR_HANDLE shared names (in every subgraph) renamed."""
    model = fb.ModelT.InitFromObj(fb.Model.GetRootAs(data, 0))
    for sub in model.subgraphs:
        for op in sub.operators:
            if isinstance(op.builtinOptions, fb.VarHandleOptionsT):
                op.builtinOptions.sharedName = names[op.builtinOptions.sharedName]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


@pytest.mark.device
def test_hostile_variable_names_stream_bit_exact_on_qemu(tmp_path: Path) -> None:
    source = importlib.resources.files("pymicro_wakeword") / "models" / "hey_jarvis.tflite"
    data = Path(str(source)).read_bytes()
    model = fb.ModelT.InitFromObj(fb.Model.GetRootAs(data, 0))
    shared = sorted({op.builtinOptions.sharedName for op in model.subgraphs[1].operators
                     if isinstance(op.builtinOptions, fb.VarHandleOptionsT)})
    hostile = [INJECTION.encode(), b"\xff invalid", b"*/\n#define x", b"??/", MARKUP.encode(), b"a" * 3000]
    path = tmp_path / "stateful.tflite"
    path.write_bytes(_with_shared_names(data, dict(zip(shared, hostile, strict=False))))
    out = tmp_path / "out"
    status = main(["run", str(path), "--out", str(out), "--vectors", "4", "-q"])
    report = json.loads((out / "report.json").read_text())
    assert status == 0 and report["verdict"] == "pass" and report["vectors"] == 4
    _assert_inert_c(out / "model", out / "build" / "firmware.elf")
    assert f"variable:{INJECTION}" in json.loads((out / "model" / "manifest.json").read_text())["variables"]


# ---- names that collide -----------------------------------------------------------------------------
def test_tensor_names_that_collide_keep_the_graph() -> None:
    """Tensors named alike, like the `#index` name given to a duplicate, or like a resource
    variable compute what the original file computes."""
    graph, data = build_case("pool_add_fc_softmax")
    renamed = parse_tflite(_renamed(data, {"input": b"x#2", "t0_pool2d": b"x", "t1_pool2d": b"x",
                                           "t2_add": b"variable:y", "t4_fully_connected": b"tensor6"}),
                           "renamed.tflite")
    assert len(renamed.tensors) == len(graph.tensors)
    for vector in random_vectors(graph, 3, seed=2):
        want = run_graph(graph, dict(zip(graph.inputs, vector, strict=True)))
        got = run_graph(renamed, dict(zip(renamed.inputs, vector, strict=True)))
        np.testing.assert_array_equal(got[renamed.outputs[0]], want[graph.outputs[0]])


def test_custom_operator_code_in_invalid_utf8_is_refused_in_one_line(tmp_path: Path, capsys) -> None:
    _, data = build_case("conv1x1")
    model = fb.ModelT.InitFromObj(fb.Model.GetRootAs(data, 0))
    code = model.operatorCodes[model.subgraphs[0].operators[0].opcodeIndex]
    code.builtinCode = code.deprecatedBuiltinCode = fb.BuiltinOperator.CUSTOM
    code.customCode = b"\xff[bold red]x[/]:smile:\x1b[2J"
    model.subgraphs[0].tensors[0].name = b"\x1b]0;title\x07" + MARKUP.encode()
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    path = tmp_path / "custom.tflite"
    path.write_bytes(bytes(builder.Output()))
    assert main(["build", str(path), "--out", str(tmp_path / "out"), "-q"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "CUSTOM \ufffd[bold red]x[/]:smile:\\x1b[2J" in err
    assert MARKUP in err and "\x1b" not in err and not (tmp_path / "out").exists()


# ---- the terminal and report.html ----------------------------------------------------------------------
def test_terminal_console_prints_markup_emoji_codes_and_controls_literally() -> None:
    buffer = io.StringIO()
    console = terminal.console(file=buffer, force_terminal=True, width=200)
    table = Table(title=f"run: {MARKUP}")
    table.add_column("name")
    table.add_row(f"{MARKUP} \x1b[1A\r\u202e")
    console.print(table)
    console.print(Text("error:", style="bold red"), f"{MARKUP} \x1b]0;t\x07")
    printed = buffer.getvalue()
    assert printed.count(MARKUP) == 3 and "😄" not in printed
    assert "\\x1b[1A\\r\\u202e" in printed and "\\x1b]0;t\\x07" in printed
    assert re.sub(r"\x1b\[[0-9;]*m", "", printed).count("\x1b") == 0  # only colours reach the terminal


def test_no_console_is_made_but_by_mcudeploy_terminal() -> None:
    made = [p.relative_to(ROOT) for p in (ROOT / "mcudeploy").rglob("*.py")
            if p.name != "terminal.py" and re.search(r"\bConsole\(", p.read_text())]
    assert made == []


def test_reports_show_hostile_names_literally(tmp_path: Path) -> None:
    from test_report import _report  # a real report with a localised mismatch

    report = _report("fail", tmp_path)
    report.model = f"<script>alert(1)</script>{MARKUP}\x1b[2J.onnx"
    report.error = f"node {INJECTION!r}: <img src=x onerror=alert(1)> {MARKUP}"
    loc = report.localisation
    loc.layers = [replace(d, origin=f"node '<b>{MARKUP}</b>' (Conv)") for d in loc.layers]
    page = _page(render_html(report))
    assert {"script", "img", "b"}.isdisjoint(page.tags)
    text = "".join(page.text)
    assert report.model in text and report.error in text and f"<b>{MARKUP}</b>" in text
    plain = render_text(report)
    assert _flat(f"<script>alert(1)</script>{MARKUP}\\x1b[2J") in _flat(plain)
    assert _flat(report.error) in _flat(plain) and "\x1b" not in plain and "😄" not in plain
