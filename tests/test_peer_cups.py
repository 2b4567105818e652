"""CUPS's own socket backend (the client most users have) prints through the service."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from harness import ServiceThread, free_port, require_peer

from supervisor.lab.virtual import VirtualPrinter

SOCKET_BACKEND = "/usr/lib/cups/backend/socket"
CUPS_WAITEOF_S = 90  # what the backend would wait for our close if we never closed


@pytest.mark.parametrize("waiteof", [True, False], ids=["waiteof", "no-waiteof"])
def test_cups_socket_backend_prints_byte_exact_and_is_released_promptly(
        waiteof: bool, tmp_path: Path, printer: VirtualPrinter,
        start_service: Callable[..., ServiceThread]) -> None:
    backend = require_peer(SOCKET_BACKEND, "cups")
    port = free_port()
    service = start_service([{"name": "lp", "device": str(printer.path), "port": port,
                              "bidirectional": True}])
    service.log.wait_for("listener_started")
    job = tmp_path / "job.prn"
    job.write_bytes(os.urandom(3 << 20))
    # The backend insists on a "/" before its options.
    uri = f"socket://127.0.0.1:{port}/?snmp=false" + ("" if waiteof else "&waiteof=false")
    started = time.monotonic()
    result = subprocess.run([backend, "1", "user", "title", "1", "", str(job)],
                            env={**os.environ, "DEVICE_URI": uri}, capture_output=True, check=False,
                            timeout=CUPS_WAITEOF_S / 2)
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-2000:]
    assert printer.wait_for_bytes(job.stat().st_size) == job.read_bytes()
    finished = service.log.wait_for("job_finished")
    assert finished["bytes_in"] == job.stat().st_size
    # Not a timing test: only that the backend was not left to its 90 s wait for our close.
    assert elapsed < CUPS_WAITEOF_S / 3, f"the backend waited {elapsed:.1f} s for our close"
