"""Differential test: the same jobs through p910nd and through us give the same printed bytes."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from harness import ServiceThread, free_port, port_is_free, require_peer, send_job, wait_until

from supervisor.lab.virtual import PJL_STATUS_QUERY, PJL_STATUS_REPLY, VirtualPrinter

STATUS_JOB = b"\x1b%-12345X" + PJL_STATUS_QUERY + b"\r\n\x1b%-12345X"
JOBS = {
    "empty": b"",
    "one-byte": b"\x0c",
    "10MB-random": os.urandom(10 << 20),
    "status-query": STATUS_JOB,
}


@pytest.fixture
def p910nd(make_printer: Callable[..., VirtualPrinter]) -> Iterator[tuple[int, VirtualPrinter]]:
    """p910nd -b on its own virtual printer: (port, printer)."""
    binary = require_peer("p910nd", "p910nd")
    digit = next((n for n in range(10) if port_is_free(9100 + n)), None)
    if digit is None:
        pytest.fail("ports 9100-9109 are all taken; p910nd can only use those")
    printer = make_printer("usb/lp9")
    # Debian's p910nd exits at once without its lock directory, which its init script makes
    # (and which is gone when no init script ran since boot, as on CI).
    Path("/var/lock/p910nd").mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([binary, "-d", "-b", "-f", str(printer.path), "-i", "127.0.0.1",
                             str(digit)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: proc.poll() is not None or not port_is_free(9100 + digit),
                   what="p910nd to listen")
        assert proc.poll() is None, "p910nd exited at start"
        yield 9100 + digit, printer
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize("name", list(JOBS))
def test_same_bytes_at_the_printer_as_p910nd(
        name: str, p910nd: tuple[int, VirtualPrinter], printer: VirtualPrinter,
        start_service: Callable[..., ServiceThread]) -> None:
    job = JOBS[name]
    theirs_port, theirs = p910nd
    ours_port = free_port()
    service = start_service([{"name": "lp", "device": str(printer.path), "port": ours_port,
                              "bidirectional": True}])
    service.log.wait_for("listener_started")

    their_reply = send_job(theirs_port, job)
    our_reply = send_job(ours_port, job)

    assert theirs.wait_for_bytes(len(job)) == job
    assert printer.wait_for_bytes(len(job)) == job
    if job:
        service.log.wait_for("job_finished", bytes_in=len(job))
    else:  # a connection that sends nothing is a probe for us, not a job
        assert service.log.events("job_started") == []
    if name == "status-query":
        # We relay the reply that arrives after the client's half-close; p910nd closes on
        # EOF from the network and drops it (reference/p910nd.md), at best it has part of it.
        assert our_reply == PJL_STATUS_REPLY
        assert PJL_STATUS_REPLY.startswith(their_reply)
    else:
        assert our_reply == their_reply == b""
