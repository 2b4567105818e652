"""`supervisorctl demo` plays the whole story and says so."""

from __future__ import annotations

import subprocess
import sys


def test_demo_runs_every_step() -> None:
    result = subprocess.run([sys.executable, "-m", "supervisor", "demo"], capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "✗" not in result.stdout
    for step in ("1. The service starts", "2. The printer is switched on", "firmware pushed",
                 "3. A client prints", "4. What the service reports", "5. The printer is "
                 "switched off", "6. The log", "7. SIGTERM", "all steps worked"):
        assert step in result.stdout
