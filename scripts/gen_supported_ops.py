"""Regenerate docs/SUPPORTED_OPS.md from the frontends' tables and mcudeploy/support.py.

    python scripts/gen_supported_ops.py
"""

from __future__ import annotations

from pathlib import Path

from mcudeploy.frontends.tflite import CONVERTERS
from mcudeploy.support import supported_ops_markdown

TARGET = Path(__file__).resolve().parent.parent / "docs" / "SUPPORTED_OPS.md"


def render() -> str:
    tables = {"int8 TFLite": {name: (c.attrs, c.convert) for name, c in CONVERTERS.items()}}
    return supported_ops_markdown(tables) + "\n"


if __name__ == "__main__":
    TARGET.write_text(render(), encoding="utf-8")
    print(f"wrote {TARGET}")
