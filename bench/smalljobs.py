"""Per-job cost: sequential 512-byte jobs to a /dev/null printer, p910nd and ours side by side.

Both servers run at once, each with its own client process, in alternating rounds of fixed
length. Ours runs as users run it: `supervisorctl run`, default logging (the JSON file with its
1 MiB rotation, and stderr), `bidirectional = false` like p910nd without -b.
"""

from __future__ import annotations

import contextlib
import json
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from procs import HOST, BenchError, Processes, child_result, cpu_seconds, free_port
from throughput import P910ND, free_p910nd_number, start_ours, start_p910nd

JOB_BYTES: Final = 512
ROUND_S: Final = 2.5  # each server's share of a round
ROUNDS: Final = 3
RATIO_TARGET: Final = 0.5  # ours/p910nd jobs per second (issue 7; the aim is 1.0)


def client_role(args: Sequence[str]) -> int:
    """Sequential jobs to HOST:PORT for SECONDS: connect, 512 bytes, half-close, read to EOF.
    An optional third argument is the source address (a fresh one has no TIME_WAIT ports)."""
    port, seconds = int(args[0]), float(args[1])
    source = (args[2], 0) if len(args) > 2 else None
    job = bytes(range(256)) * (JOB_BYTES // 256)
    cpu_before, start = time.process_time(), time.monotonic()
    jobs = 0
    while time.monotonic() - start < seconds:
        with socket.create_connection((HOST, port), timeout=10, source_address=source) as sock:
            sock.sendall(job)
            sock.shutdown(socket.SHUT_WR)
            while sock.recv(4096):
                pass
        jobs += 1
    print(json.dumps({"jobs": jobs, "seconds": time.monotonic() - start,
                      "cpu_s": time.process_time() - cpu_before}))
    return 0


def bench_small_jobs(rounds: int = ROUNDS) -> dict[str, Any]:
    if not P910ND.exists():
        raise BenchError(f"{P910ND} not found: apt-get install p910nd")
    procs = Processes()
    with tempfile.TemporaryDirectory(prefix="bench-small-") as tmp_s, \
            contextlib.ExitStack() as stack:
        stack.callback(procs.stop_all)
        tmp = Path(tmp_s)
        (tmp / "p910nd").mkdir()
        servers = [start_p910nd(procs, free_p910nd_number(), Path("/dev/null"), tmp / "p910nd"),
                   start_ours(procs, free_port(), Path("/dev/null"), tmp)]
        for server in servers:  # warm-up: imports, first allocations, the log file
            job_round(procs, server, 0.5)
        rates: dict[str, list[float]] = {s.name: [] for s in servers}
        cpu_us: dict[str, list[float]] = {s.name: [] for s in servers}
        for n in range(1, rounds + 1):
            for server in servers:
                jobs, seconds, cpu_s = job_round(procs, server, ROUND_S)
                rates[server.name].append(jobs / seconds)
                cpu_us[server.name].append(cpu_s / jobs * 1e6)
                print(f"  small jobs round {n}/{rounds} {server.name:6} {jobs / seconds:8.0f} "
                      f"jobs/s, {cpu_s / jobs * 1e6:6.0f} µs server CPU per job",
                      file=sys.stderr, flush=True)
        ours_log = tmp / "events.jsonl"
        logged = ours_log.exists() and '"job_finished"' in ours_log.read_text()
        if not logged:
            raise BenchError("ours logged no job_finished: the jobs did not go through it")
    ratio = statistics.median(rates["ours"]) / statistics.median(rates["p910nd"])
    return {"job_bytes": JOB_BYTES, "round_s": ROUND_S, "rounds": rounds,
            "jobs_per_s": {k: statistics.median(v) for k, v in rates.items()},
            "jobs_per_s_rounds": rates, "cpu_us_per_job": {k: statistics.median(v)
                                                           for k, v in cpu_us.items()},
            "ratio": ratio, "target": f">= {RATIO_TARGET}x", "met": ratio >= RATIO_TARGET}


def job_round(procs: Processes, server: Any, seconds: float,
           source: str | None = None) -> tuple[int, float, float]:
    server.check_alive()
    before = cpu_seconds(server.proc.pid)
    client = procs.child("_smalljobs", server.port, seconds, *([source] if source else []))
    result = child_result(client, seconds + 30, f"small-job client of {server.name}")
    time.sleep(0.05)  # the last job's bookkeeping
    return result["jobs"], result["seconds"], cpu_seconds(server.proc.pid) - before


def render_small_jobs(result: dict[str, Any], yes: Any) -> list[str]:
    rates, cpu = result["jobs_per_s"], result["cpu_us_per_job"]
    lines = [f"small jobs: sequential {result['job_bytes']}-byte jobs to /dev/null "
             f"(bidirectional = false), {result['rounds']} rounds of {result['round_s']:g} s per "
             "server, alternating; medians", "",
             f"{'':10} {'jobs/s':>8} {'server CPU µs/job':>18}  per-round jobs/s"]
    for name in ("p910nd", "ours"):
        rounds = ", ".join(f"{r:.0f}" for r in result["jobs_per_s_rounds"][name])
        lines.append(f"{name:10} {rates[name]:8.0f} {cpu[name]:18.0f}  {rounds}")
    lines.append(f"ours/p910nd jobs/s: {result['ratio']:.2f}x, target {result['target']}: "
                 f"{yes(result['met'])}")
    return lines
