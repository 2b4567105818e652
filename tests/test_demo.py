"""`make demo` — the README's command — plays the whole story and says so."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from harness import ON_CI

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.timeout(600)
def test_make_demo_runs_every_step() -> None:
    make = shutil.which("make")
    assert make, "make is missing: .ci/run installs it"
    result = subprocess.run([make, "--no-print-directory", "demo"], cwd=ROOT,
                            capture_output=True, text=True, timeout=590, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "✗" not in result.stdout
    for step in ("1. The service starts", "2. The printer is switched on", "firmware pushed",
                 "3. A client prints", "4. What the service reports", "5. The printer runs "
                 "out of paper", "6. The printer is switched off", "7. The log", "8. SIGTERM",
                 "9. Discovery", "all steps worked"):
        assert step in result.stdout
    # The out-of-paper act: the stall in status and the log, then the job completes.
    act = result.stdout.split("5. The printer runs out of paper")[1].split("6. The printer")[0]
    assert "STALLED since" in act and "not taking data" in act
    assert "printer_stalled" in act and "printer_resumed" in act
    assert "✓ the job went on and completed" in act
    # The machine's every state, serving included: status is shown while the job runs.
    rows = [line.split()[:2] for line in result.stdout.splitlines()
            if line.strip().startswith("laserjet ")]
    assert ["laserjet", "serving"] in rows and ["laserjet", "ready"] in rows, rows
    assert "✓ laserjet is serving while its job runs" in result.stdout
    assert result.stdout.index("serving while its job runs") < result.stdout.index(
        "bytes arrived at the printer")
    # As root with avahi installed (CI), the discovery act runs; otherwise it says why not.
    if ON_CI or "skipped" not in result.stdout:
        assert "✓ announced" in result.stdout and "✓ switched off: withdrawn" in result.stdout
    else:
        assert "  - skipped: " in result.stdout
