"""`supervisorctl status`: the table, the JSON of SPEC §6, and exit 3 without a service."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from harness import ServiceThread

from supervisor.virtual import VirtualPrinter

SPEC_KEYS = {"name", "state", "product", "serial", "device", "port", "bidirectional",
             "firmware", "jobs", "bytes", "queued", "error", "since"}


def ctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "supervisor", *args], capture_output=True,
                          text=True, timeout=30, check=False)


def test_status_json_and_table(tmp_path: Path, printer: VirtualPrinter,
                               start_service: Callable[..., ServiceThread]) -> None:
    start_service([{"name": "here", "device": str(printer.path), "port": 9555},
                   {"name": "later", "match": "3f0/4117/*", "port": 9556}])
    sock = str(tmp_path / "control.sock")
    result = ctl("--socket", sock, "status", "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert set(document["daemon"]) == {"version", "pid", "event_source", "uptime_s"}
    assert [set(p) for p in document["printers"]] == [SPEC_KEYS, SPEC_KEYS]
    here, later = document["printers"]
    assert (here["state"], here["port"], here["device"]) == ("ready", 9555, str(printer.path))
    assert (later["state"], later["product"], later["device"]) == ("absent", None, None)
    assert here["since"].endswith("Z") and here["error"] is None
    table = ctl("--socket", sock, "status")
    assert table.returncode == 0
    lines = table.stdout.splitlines()
    assert lines[0].split()[:4] == ["NAME", "STATE", "PORT", "DEVICE"]
    assert lines[1].split()[:3] == ["here", "ready", "9555"]


def test_status_without_a_service_exits_3(tmp_path: Path) -> None:
    result = ctl("--socket", str(tmp_path / "none.sock"), "status")
    assert result.returncode == 3
    assert "not running" in result.stderr
