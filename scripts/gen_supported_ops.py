"""Regenerate docs/SUPPORTED_OPS.md from the frontends' tables and mcudeploy/support.py.

    python scripts/gen_supported_ops.py
"""

from __future__ import annotations

from pathlib import Path

from mcudeploy.frontends.onnx import HANDLERS
from mcudeploy.frontends.tflite import CONVERTERS
from mcudeploy.support import supported_ops_markdown

TARGET = Path(__file__).resolve().parent.parent / "docs" / "SUPPORTED_OPS.md"


def render() -> str:
    return supported_ops_markdown(
        {name: c.attrs for name, c in CONVERTERS.items()},
        {name: (h.becomes, h.rules) for name, h in HANDLERS.items()},
    )


if __name__ == "__main__":
    TARGET.write_text(render(), encoding="utf-8")
    print(f"wrote {TARGET}")
