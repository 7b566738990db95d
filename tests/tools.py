"""Host tools a test needs that mcudeploy itself does not (Debian packages scripts/setup.sh installs)."""

from __future__ import annotations

import os
import shutil

import pytest


def required_tool(name: str, package: str) -> str:
    """The tool's path. Missing, the test is skipped saying why, and under CI (env CI set) it fails."""
    found = shutil.which(name)
    if found is None:
        message = f"{name} is missing: apt-get install {package} (scripts/setup.sh installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found
