"""`supervisorctl status`: the table, the JSON of SPEC §6, and exit 3 without a service."""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from harness import ServiceThread

from supervisor.client import ServiceUnreachable, request
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


def test_status_says_when_the_socket_is_not_accessible(
        tmp_path: Path, start_service: Callable[..., ServiceThread]) -> None:
    start_service([])
    tmp_path.chmod(0o755)  # the directory may be entered; the socket itself is 0660 root
    message = as_nobody(lambda: _unreachable(str(tmp_path / "control.sock")))
    assert message.startswith("not allowed to use") and "not running" not in message


def _unreachable(path: str) -> str:
    try:
        request(path, {"v": 1, "cmd": "status"})
    except ServiceUnreachable as exc:
        return str(exc)
    return "connected"


def as_nobody(work: Callable[[], str]) -> str:
    """Run `work` in a forked child that has become the unprivileged user nobody."""
    nobody = pwd.getpwnam("nobody")
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: drop root, do the work, report, leave at once
        try:
            os.setgroups([])
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
            os.write(write_end, work().encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as result:
        answer = result.read().decode()
    os.waitpid(pid, 0)
    return answer


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
