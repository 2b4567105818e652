"""Benchmark of printer-supervisor: against p910nd (throughput, server CPU per GiB, RSS), plug →
port accepting latency, `supervisorctl notify` start-up time against a bare interpreter,
discovery (plug → announced on another host, and what announcing costs in RSS), and the metrics
outputs (idle RSS of the textfile and the HTTP listener, a scrape's cost, idle connections)."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Final

from discovery import bench_discovery
from hotplug import bench_plug_latency
from metrics import bench_metrics
from notify import bench_notify
from procs import BenchError
from report import (
    Report,
    machine_info,
    render,
    summarize,
    summarize_notify,
    summarize_plugs,
    write_json,
)
from router import bench_router
from smalljobs import bench_small_jobs
from smalljobs import client_role as small_job_client
from throughput import CHILD_ROLES, SINKS, bench_sink, preflight

SECTIONS: Final = ("throughput", "smalljobs", "latency", "notify", "router", "discovery",
                   "metrics")
ROLES: Final = {**CHILD_ROLES, "_smalljobs": small_job_client}


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5, help="measured jobs per server and sink")
    parser.add_argument("--mib", type=int, default=256, help="size of each job in MiB")
    parser.add_argument("--plugs", type=int, default=50, help="measured plugs (latency)")
    parser.add_argument("--notify-runs", type=int, default=50,
                        help="runs of notify and of python -c pass (notify)")
    parser.add_argument("--discovery-plugs", type=int, default=10,
                        help="plugs announced and withdrawn (discovery)")
    parser.add_argument("--router-idle-s", type=float, default=600.0,
                        help="the router section's idle window for counting wake-ups (600 s)")
    parser.add_argument("--only", action="append", choices=SECTIONS, metavar="SECTION",
                        help=f"run only this section, one of {', '.join(SECTIONS)}; repeatable "
                             "(default: all)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write results as JSON")
    args = parser.parse_args(argv)
    if min(args.runs, args.mib, args.plugs, args.notify_runs, args.discovery_plugs) < 1:
        parser.error("--runs, --mib, --plugs, --notify-runs and --discovery-plugs must be at "
                     "least 1")
    args.sections = [s for s in SECTIONS if s in (args.only or SECTIONS)]
    return args


@contextlib.contextmanager
def sigterm_as_exit() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C, so every child and temporary directory is cleaned up."""
    def handler(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_sections(args: argparse.Namespace) -> Report:
    report = Report(machine_info(), args.sections)
    if "throughput" in args.sections:
        ports = preflight()
        print(f"throughput: ports p910nd {ports[0]}, ours {ports[1]}", file=sys.stderr)
        results = [bench_sink(sink, args, ports) for sink in SINKS]
        report.throughput = (results, summarize(results))
    if "smalljobs" in args.sections:
        report.small_jobs = bench_small_jobs()
    if "latency" in args.sections:
        report.plug = summarize_plugs(bench_plug_latency(args.plugs))
    if "notify" in args.sections:
        report.notify = summarize_notify(bench_notify(args.notify_runs))
    if "router" in args.sections:
        report.router = bench_router(args.router_idle_s)
    if "discovery" in args.sections:
        report.discovery = bench_discovery(args.discovery_plugs)
    if "metrics" in args.sections:
        report.metrics = bench_metrics()
    return report


def main(argv: Sequence[str]) -> int:
    if argv and argv[0] in ROLES:
        return ROLES[argv[0]](argv[1:])
    args = parse_args(argv)
    try:
        with sigterm_as_exit():
            report = run_sections(args)
    except BenchError as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        return 130
    print(render(report, args))
    if args.json:
        write_json(args.json, report, args)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
