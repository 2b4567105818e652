"""Verdicts and output: each section's figures summarized against its targets, text and JSON."""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

from discovery import render_discovery
from hotplug import PlugResult
from metrics import render_metrics
from notify import IMPORTTIME_RUNS, NotifyResult
from procs import ROOT, TICK_S
from router import render_router
from smalljobs import render_small_jobs
from throughput import GIB, MB, SERVERS, Job, SinkResult

# -- targets ---------------------------------------------------------------------------------
IDLE_RSS_LIMIT_MB: Final = 30.0
PLUG_LIMIT_MS: Final = 50.0  # target for the median; the bench's own, not SPEC's
NOTIFY_RATIO_LIMIT: Final = 1.5  # issue 7: the shims' path, at most 1.5x a bare start


@dataclass(frozen=True)
class Target:
    """A goal for ours/p910nd on one sink and metric."""

    sink: str
    metric: str  # "mb_per_s" or "cpu_s_per_gib"
    limit: float
    at_least: bool

    def met(self, ratio: float) -> bool:
        return ratio >= self.limit if self.at_least else ratio <= self.limit

    def label(self) -> str:
        return f"{'>=' if self.at_least else '<='} {self.limit:.1f}x"


TARGETS: Final = (
    Target("/dev/null", "mb_per_s", 1.5, at_least=True),
    Target("/dev/null", "cpu_s_per_gib", 0.7, at_least=False),
    Target("fifo", "mb_per_s", 1.0, at_least=True),
    Target("fifo", "cpu_s_per_gib", 0.7, at_least=False),
)


# -- distributions ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Spread:
    """Median, 90th percentile and range of a set of times."""

    median: float
    p90: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        p90 = (statistics.quantiles(values, n=10, method="inclusive")[-1] if len(values) > 1
               else values[0])
        return cls(statistics.median(values), p90, min(values), max(values))


@dataclass(frozen=True)
class Stat:
    """Median and range of one metric over the runs."""

    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Stat:
        return cls(statistics.median(values), min(values), max(values))


# -- summaries: the figures per section, each target's verdict -------------------------------
def metric_stats(jobs: Sequence[Job], sink: str, server: str, metric: str) -> Stat:
    return Stat.of([getattr(j, metric) for j in jobs if j.sink == sink and j.server == server])


def summarize(results: Sequence[SinkResult]) -> dict[str, Any]:
    """Medians per sink and server, ratios, and whether each target was met."""
    jobs = [j for r in results for j in r.jobs]
    rows = []
    for target in TARGETS:
        p910nd, ours = (metric_stats(jobs, target.sink, s, target.metric) for s in SERVERS)
        # A median of 0 CPU ticks (tiny jobs) gives no ratio: not met, and shown as n/a.
        ratio = ours.median / p910nd.median if p910nd.median > 0 else None
        rows.append({"sink": target.sink, "metric": target.metric, "p910nd": asdict(p910nd),
                     "ours": asdict(ours), "ratio": ratio, "target": target.label(),
                     "met": ratio is not None and target.met(ratio)})
    idle_mb = max(max(r.rss_after_start_kb["ours"], r.rss_after_runs_kb["ours"])
                  for r in results) * 1000 / MB
    rows.append({"sink": "any", "metric": "ours_idle_rss_mb", "ours": idle_mb,
                 "target": f"<= {IDLE_RSS_LIMIT_MB:g} MB", "met": idle_mb <= IDLE_RSS_LIMIT_MB})
    clean_exit = all(r.ours_exit_status == 0 for r in results)
    return {"targets": rows, "all_met": all(r["met"] for r in rows),
            "ours_exit_status": [r.ours_exit_status for r in results],
            "ours_clean_exit": clean_exit}


PLUG_PHASES: Final = (
    ("events_answered_ms", "all plug events answered"),
    ("received_ms", "service logs the 1st (hotplug_received)"),
    ("ready_ms", "printer ready (state_changed)"),
    ("listening_ms", "listener_started"),
    ("accepted_ms", "port accepts a connection"),
    ("closed_ms", "unplug: 1st event -> port closed"),
)


def summarize_plugs(result: PlugResult) -> dict[str, Any]:
    phases = {key: asdict(Spread.of([getattr(p, key) for p in result.plugs]))
              for key, _ in PLUG_PHASES}
    median = phases["accepted_ms"]["median"]
    return {"plugs": len(result.plugs), "phases_ms": phases,
            "connects_median": statistics.median(p.connects for p in result.plugs),
            "target": f"median <= {PLUG_LIMIT_MS:g} ms", "met": median <= PLUG_LIMIT_MS,
            "ours_exit_status": result.ours_exit_status,
            "runs": [asdict(p) for p in result.plugs]}


def summarize_notify(result: NotifyResult) -> dict[str, Any]:
    def phase(times: dict[str, list[float]]) -> dict[str, Any]:
        spreads = {name: Spread.of(values) for name, values in times.items()}
        return {**{f"{name}_ms": asdict(s) for name, s in spreads.items()},
                "ratio": spreads["notify"].median / spreads["pass"].median}

    running = phase(result.running)
    return {"runs": len(result.running["pass"]), "running": running,
            "not_running": phase(result.stopped), "target": f"<= {NOTIFY_RATIO_LIMIT:.1f}x",
            "met": running["ratio"] <= NOTIFY_RATIO_LIMIT, "delivered": result.delivered,
            "ours_exit_status": result.ours_exit_status,
            "import_time_us": [{"module": name, "cumulative": us} for name, us in result.imports]}


# -- text ------------------------------------------------------------------------------------
IMPORTTIME_TOP: Final = 8
METRIC_LABELS: Final = {"mb_per_s": "MB/s", "cpu_s_per_gib": "CPU s/GiB"}


def _cell(stat: dict[str, float], metric: str) -> str:
    fmt = "{:.0f}" if metric == "mb_per_s" else "{:.3f}"
    spread = f"({fmt.format(stat['low'])}-{fmt.format(stat['high'])})"
    return f"{fmt.format(stat['median']):>7} {spread:>15}"


def _ratio(ratio: float | None) -> str:
    return f"{ratio:10.2f}x" if ratio is not None else f"{'n/a':>11}"


def render_throughput(results: Sequence[SinkResult], summary: dict[str, Any],
                      args: argparse.Namespace) -> list[str]:
    lines = [
        f"p910nd vs printer-supervisor ('ours'): {args.mib} MiB per job, {args.runs} run(s) per "
        "server and sink, median (min-max); MB = 10^6 bytes; CPU is counted in "
        f"{TICK_S * 1000:g} ms ticks (n/a: too few, raise --mib)",
        "",
        f"{'sink':10} {'metric':10} {'p910nd':>23} {'ours':>23} {'ours/p910nd':>11}  "
        f"{'target':8} met",
    ]
    ratio_rows = [row for row in summary["targets"] if row["metric"] in METRIC_LABELS]
    rss = next(row for row in summary["targets"] if row["metric"] == "ours_idle_rss_mb")
    for row in ratio_rows:
        metric = row["metric"]
        lines.append(
            f"{row['sink']:10} {METRIC_LABELS[metric]:10} {_cell(row['p910nd'], metric)} "
            f"{_cell(row['ours'], metric)} {_ratio(row['ratio'])}  {row['target']:8} "
            f"{'yes' if row['met'] else 'NO'}")
    lines += ["", f"{'memory (MB)':10} {'':29} {'p910nd':>8} {'ours':>8}"]
    for r in results:
        for label, values in (("idle RSS after start-up", r.rss_after_start_kb),
                              ("idle RSS after the runs", r.rss_after_runs_kb),
                              ("peak RSS (VmHWM)", r.peak_kb)):
            lines.append(f"{r.sink:10} {label:29} {values['p910nd'] / 1000:8.1f} "
                         f"{values['ours'] / 1000:8.1f}")
    statuses = ", ".join(str(status) for status in summary["ours_exit_status"])
    lines += [f"ours idle RSS (largest sample): {rss['ours']:.1f} MB, target {rss['target']}: "
              f"{'yes' if rss['met'] else 'NO'}",
              f"ours exit status on SIGTERM, per sink: {statuses} (0 expected): "
              f"{'yes' if summary['ours_clean_exit'] else 'NO'}",
              _reader_line(results)]
    return lines


def _reader_line(results: Sequence[SinkResult]) -> str:
    cpu = [j.reader_cpu_s / (j.bytes / GIB) for r in results for j in r.jobs
           if j.reader_cpu_s is not None]
    clients = [j.client_cpu_s / (j.bytes / GIB) for r in results for j in r.jobs]
    reader = f"FIFO reader {statistics.median(cpu):.3f}, " if cpu else ""
    return f"other CPU s/GiB (median): {reader}client {statistics.median(clients):.3f}"


def machine_info() -> dict[str, str]:
    cpu = next((line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "unknown")
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": str(len(os.sched_getaffinity(0))),
        "kernel": os.uname().release,
        "cpu": cpu,
        "python": platform.python_version(),
        "p910nd": _output(["dpkg-query", "-W", "-f", "${Version}", "p910nd"]),
        "commit": _output(["git", "-C", str(ROOT), "describe", "--always", "--dirty"]),
    }


def _output(argv: Sequence[str]) -> str:
    try:
        return subprocess.run(list(argv), capture_output=True, text=True, timeout=10,
                              check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _yes(met: bool) -> str:
    return "yes" if met else "NO"


def _spread_row(label: str, spread: dict[str, float], width: int) -> str:
    return (f"{label:{width}} " + " ".join(f"{spread[k]:7.1f}"
                                            for k in ("median", "p90", "low", "high")))


def render_plugs(plug: dict[str, Any]) -> list[str]:
    width = 42
    phases = plug["phases_ms"]
    accepted = phases["accepted_ms"]["median"]
    lines = [f"plug -> port accepting: {plug['plugs']} plugs after 1 warm-up; ms after the first "
             "plug event was sent (events sent in-process with supervisor.ctl.client.request, as "
             "supervisorctl notify sends them)",
             "",
             f"{'':{width}} {'median':>7} {'p90':>7} {'min':>7} {'max':>7}"]
    lines += [_spread_row(label, phases[key], width) for key, label in PLUG_PHASES]
    lines += [f"plug -> port accepting, median {accepted:.1f} ms, target {plug['target']}: "
              f"{_yes(plug['met'])}",
              f"connect attempts per plug (median): {plug['connects_median']:g}; ours exit status "
              f"on SIGTERM: {plug['ours_exit_status']} (0 expected): "
              f"{_yes(plug['ours_exit_status'] == 0)}"]
    return lines


def render_notify(notify: dict[str, Any]) -> list[str]:
    width = 42
    lines = [f"supervisorctl notify as the hotplug shim runs it (no --socket: the socket from "
             f"OpenWrt's UCI config; the event from the environment) vs python -c pass "
             f"(same interpreter, .venv/bin/python): {notify['runs']} runs each as processes, "
             "alternating; wall ms per run",
             "",
             f"{'':{width}} {'median':>7} {'p90':>7} {'min':>7} {'max':>7}  notify/pass"]
    for key, title in (("running", "service running (notify exits 0)"),
                       ("not_running", "service not running (notify exits 3)")):
        phase = notify[key]
        lines += [title, _spread_row("  python -c pass", phase["pass_ms"], width),
                  _spread_row("  supervisorctl notify", phase["notify_ms"], width) +
                  f"  {phase['ratio']:10.2f}x"]
    ratio = notify["running"]["ratio"]
    lines.append(f"notify/pass with the service running: {ratio:.2f}x, target {notify['target']}: "
                 f"{_yes(notify['met'])}")
    top = notify["import_time_us"][:IMPORTTIME_TOP]
    total = sum(m["cumulative"] for m in notify["import_time_us"]) / 1000
    lines.append(f"what notify imports beyond a bare start (-X importtime, median of "
                 f"{IMPORTTIME_RUNS}), {total:.1f} ms in all: " +
                 ", ".join(f"{m['module']} {m['cumulative'] / 1000:.1f}" for m in top))
    return lines



# -- the whole report, as text and as JSON ---------------------------------------------------
@dataclass
class Report:
    """What the sections run measured, summarized; None for a section not run."""

    machine: dict[str, str]
    sections: list[str]
    throughput: tuple[list[SinkResult], dict[str, Any]] | None = None
    plug: dict[str, Any] | None = None
    notify: dict[str, Any] | None = None
    discovery: dict[str, Any] | None = None
    small_jobs: dict[str, Any] | None = None
    router: dict[str, Any] | None = None
    metrics: dict[str, Any] | None = None

    @property
    def all_met(self) -> bool:
        verdicts = [self.throughput[1]["all_met"]] if self.throughput else []
        verdicts += [s["met"] for s in (self.small_jobs, self.plug, self.notify, self.discovery,
                               self.metrics, self.router)
                     if s is not None and "met" in s]
        return all(verdicts)


def render(report: Report, args: argparse.Namespace) -> str:
    lines = ["machine: " + ", ".join(f"{k} {v}" for k, v in report.machine.items())]
    if report.throughput is not None:
        lines += ["", *render_throughput(*report.throughput, args)]
    if report.small_jobs is not None:
        lines += ["", *render_small_jobs(report.small_jobs, _yes)]
    if report.plug is not None:
        lines += ["", *render_plugs(report.plug)]
    if report.notify is not None:
        lines += ["", *render_notify(report.notify)]
    if report.router is not None:
        lines += ["", *render_router(report.router, _yes)]
    if report.discovery is not None:
        lines += ["", *render_discovery(report.discovery, _yes)]
    if report.metrics is not None:
        lines += ["", *render_metrics(report.metrics, _yes)]
    lines += ["", f"all targets met ({', '.join(report.sections)}): {_yes(report.all_met)}"]
    return "\n".join(lines)


def write_json(path: Path, report: Report, args: argparse.Namespace) -> None:
    document: dict[str, Any] = {"machine": report.machine, "sections": report.sections}
    if report.throughput is not None:
        results, summary = report.throughput
        jobs = [{**asdict(j), "mb_per_s": j.mb_per_s, "cpu_s_per_gib": j.cpu_s_per_gib}
                for r in results for j in r.jobs]
        memory = [{k: v for k, v in asdict(r).items() if k != "jobs"} for r in results]
        document |= {"mib": args.mib, "runs": args.runs, "jobs": jobs, "memory": memory,
                     **summary}
    if report.small_jobs is not None:
        document["small_jobs"] = report.small_jobs
    if report.plug is not None:
        document["plug_latency"] = report.plug
    if report.notify is not None:
        document["notify"] = report.notify
    if report.discovery is not None:
        document["discovery"] = report.discovery
    if report.router is not None:
        document["router"] = report.router
    if report.metrics is not None:
        document["metrics"] = report.metrics
    document["all_met"] = report.all_met  # every target of the sections run
    path.write_text(json.dumps(document, indent=2) + "\n")
