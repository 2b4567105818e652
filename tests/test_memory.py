"""A router's memory: what a job leaves behind is given back (bench's router section measures the
figures; this holds the mechanism)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from harness import Log, free_port, send_job, service_process

from supervisor.lab.virtual import VirtualPrinter

PRINTERS = 8
JOB_BYTES = 3 << 20  # fills the pump's 1 MiB buffer, more than once


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def test_jobs_leave_no_memory_behind(tmp_path: Path,
                                     make_printer: Callable[..., VirtualPrinter]) -> None:
    """Each printer's 1 MiB job buffer used to stay resident after its first job (+1 MiB per
    printer for good); its pages go back after every job now."""
    printers = [make_printer(f"usb/lp{n}", responder=None) for n in range(PRINTERS)]
    ports = [free_port() for _ in printers]
    log = Log(tmp_path / "events.jsonl")
    with service_process(tmp_path, [{"name": f"p{n}", "device": str(p.path), "port": port}
                                    for n, (p, port) in enumerate(zip(printers, ports,
                                                                      strict=True))]) as proc:
        log.wait_for("listener_started", count=PRINTERS)
        send_job(ports[0], b"warm-up")  # the first job's own one-time costs (imports, a thread)
        log.wait_for("job_finished")
        before = rss_mib(proc.pid)
        for round_ in range(2):
            for port in ports:
                send_job(port, os.urandom(JOB_BYTES))
            log.wait_for("job_finished", count=1 + PRINTERS * (round_ + 1))
        grown = rss_mib(proc.pid) - before
        assert all(len(p.paper) >= JOB_BYTES for p in printers)
    assert grown < PRINTERS * 0.25, f"{grown:.2f} MiB more after {PRINTERS} printers' jobs"
