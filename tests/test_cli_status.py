"""`supervisorctl status`: the table, the JSON of SPEC §6, and exit 3 without a service."""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from harness import ServiceThread, as_nobody, free_port

from supervisor.ctl.cli import render_status
from supervisor.ctl.client import ServiceUnreachable, request
from supervisor.lab.virtual import VirtualPrinter

SPEC_KEYS = {"name", "state", "product", "serial", "device", "port", "bidirectional",
             "firmware", "jobs", "bytes", "queued", "error", "since", "mdns", "error_since",
             "job", "stalled_since", "stall_reason"}


def ctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "supervisor", *args], capture_output=True,
                          text=True, timeout=30, check=False)


def test_status_json_and_table(tmp_path: Path, printer: VirtualPrinter,
                               start_service: Callable[..., ServiceThread]) -> None:
    port, other = free_port(), free_port()
    start_service([{"name": "here", "device": str(printer.path), "port": port},
                   {"name": "later", "match": "3f0/4117/*", "port": other}])
    sock = str(tmp_path / "control.sock")
    result = ctl("--socket", sock, "status", "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert set(document["daemon"]) == {"version", "pid", "event_source", "uptime_s", "mdns",
                                        "http", "metrics_file", "error"}
    assert document["daemon"]["mdns"] == "off"
    assert [set(p) for p in document["printers"]] == [SPEC_KEYS, SPEC_KEYS]
    here, later = document["printers"]
    assert (here["state"], here["port"], here["device"]) == ("ready", port, str(printer.path))
    assert (later["state"], later["product"], later["device"]) == ("absent", None, None)
    assert here["since"].endswith("Z") and here["error"] is None
    assert (here["job"], here["stalled_since"], here["stall_reason"]) == (None, None, None)
    table = ctl("--socket", sock, "status")
    assert table.returncode == 0
    lines = table.stdout.splitlines()
    assert lines[0].split()[:4] == ["NAME", "STATE", "PORT", "DEVICE"]
    assert lines[1].split()[:3] == ["here", "ready", str(port)]
    assert lines[0].split()[-2:] == ["MDNS", "ERROR"]


def test_status_without_a_service_exits_3(tmp_path: Path) -> None:
    result = ctl("--socket", str(tmp_path / "none.sock"), "status")
    assert result.returncode == 3
    assert "not running" in result.stderr


def test_the_control_socket_is_0660_and_says_when_it_is_not_accessible(
        start_service: Callable[..., ServiceThread]) -> None:
    run_dir = Path(tempfile.mkdtemp(prefix="printer-supervisor-run-"))  # traversable by all
    run_dir.chmod(0o755)
    sock = run_dir / "control.sock"
    try:
        start_service([], control_socket=str(sock))
        assert stat.S_IMODE(sock.stat().st_mode) == 0o660
        outsider = as_nobody(lambda: _unreachable(str(sock)))
        assert outsider.startswith("not allowed to use") and "not running" not in outsider
        member = as_nobody(lambda: _unreachable(str(sock)), groups=[sock.stat().st_gid])
        assert member == "connected"
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


def _unreachable(path: str) -> str:
    try:
        request(path, {"v": 1, "cmd": "status"})
    except ServiceUnreachable as exc:
        return str(exc)
    return "connected"




def test_a_service_that_does_not_accept_is_reported_not_crashed(tmp_path: Path) -> None:
    path = str(tmp_path / "stuck.sock")
    stuck = socket.socket(socket.AF_UNIX)
    stuck.bind(path)
    stuck.listen(0)  # never accepts: the backlog fills
    fillers = []
    for _ in range(4):
        filler = socket.socket(socket.AF_UNIX)
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            filler.connect(path)
        fillers.append(filler)
    result = ctl("--socket", path, "status")
    assert result.returncode == 3, result.stderr
    assert "printer-supervisor" in result.stderr and "Traceback" not in result.stderr
    for sock in (stuck, *fillers):
        sock.close()


def test_the_table_escapes_what_is_not_printable() -> None:
    # Device strings are cleaned where they enter; the table does not rely on it: whatever a
    # field holds (an error text, a name from elsewhere) shows escaped on its own row.
    hostile = {"name": "evil", "state": "ready", "port": 9100, "device": "/dev/usb/lp0\n",
               "product": "3f0/4117/100", "jobs": 0, "since": "2026-11-23T12:00:00Z",
               "mdns": "Evil\x1b[2J\nCorp\u2028Jet\x85 @ host", "error": "a\tb\r\x00\x9b31m"}
    document = {"daemon": {"error": "bad\nthing\x1b]0;title\x07"},
                "printers": [hostile, {**hostile, "name": "other"}]}
    lines = render_status(document).split("\n")
    assert len(lines) == 1 + 2 + 1  # header, a row per printer, the service error
    assert [line.split()[0] for line in lines[1:3]] == ["evil", "other"]
    table = "\n".join(lines)
    assert all(c == "\n" or c.isprintable() for c in table), repr(table)
    assert r"Evil\x1b[2J\nCorp\u2028Jet\x85 @ host" in lines[1]
    assert lines[1].endswith(r"a\tb\r\x00\x9b31m")
    assert lines[3] == r"service error: bad\nthing\x1b]0;title\x07"


def test_a_running_job_and_a_stall_are_told_under_the_printers_row() -> None:
    row = {"name": "laserjet", "state": "serving", "port": 9101, "device": "/dev/usb/lp0",
           "product": "3f0/4117/100", "jobs": 4, "since": "2026-12-01T12:00:00Z", "mdns": None,
           "error": None}
    job = {"client": "192.168.1.20:51234", "since": "2026-12-01T12:00:00Z",
           "bytes_in": 3 << 20, "bytes_written": 1536 << 10}
    document = {"daemon": {}, "printers": [
        {**row, "job": {**job, "client": "evil\x1b[2J:1"}, "stalled_since": "2026-12-01T12:00:07Z",
         "stall_reason": "out of paper"},
        {**row, "name": "other", "job": job, "stalled_since": None, "stall_reason": None},
        {**row, "name": "idle", "state": "ready", "job": None, "stalled_since": None,
         "stall_reason": None}]}
    lines = render_status(document).split("\n")
    assert [line.split()[0] for line in lines] == [
        "NAME", "laserjet", "job", "STALLED", "other", "job", "idle"]
    assert lines[2] == (r"  job from evil\x1b[2J:1 since 2026-12-01T12:00:00Z: 3.0 MiB received, "
                        "1.5 MiB written to the printer")
    assert lines[3].startswith("  STALLED since 2026-12-01T12:00:07Z: out of paper; ")
    assert lines[5] == ("  job from 192.168.1.20:51234 since 2026-12-01T12:00:00Z: 3.0 MiB "
                        "received, 1.5 MiB written to the printer")
