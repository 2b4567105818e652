"""The package stays typed (`mypy --strict`) and ruff-clean: `make lint`, run by the suite."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


@pytest.mark.timeout(300)
@pytest.mark.parametrize("command", [
    ["ruff", "check", "supervisor", "tests", "bench"],
    ["mypy", "--strict", "supervisor"],
], ids=["ruff", "mypy"])
def test_lint(command: list[str]) -> None:
    result = subprocess.run([str(BIN / command[0]), *command[1:]], cwd=ROOT, capture_output=True,
                            text=True, timeout=280, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
