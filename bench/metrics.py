"""Metrics: what `metrics_file` and `http_listen` cost in idle RSS, what a scrape costs, and
whether idle HTTP connections slow printing.

Four ways, three services each, run side by side, each with one static printer on /dev/null:
neither output, the textfile only, the HTTP listener only, both; p910nd on /dev/null beside
them for scale. The HTTP ones are sent one GET of each page before their idle RSS is taken
(a scraped service's idle state). One HTTP-only service then serves sequential GET /metrics
(wall time, and its CPU per request), holds a flood of idle connections, and prints small jobs
with and without 500 idle connections opened to its HTTP port; its RSS is followed throughout.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final

from procs import (
    HOST,
    SERVICE_PYTHON,
    START_TIMEOUT_S,
    BenchError,
    Processes,
    cpu_seconds,
    free_port,
    is_listening,
    status_kb,
    wait_until,
)
from smalljobs import JOB_BYTES, job_round
from throughput import (
    P910ND,
    P910ND_LOCK_DIR,
    Ours,
    free_p910nd_number,
    start_ours,
    start_p910nd,
)

RSS_BUDGET_MB: Final = 2.0  # the budget per way, in MB of 10^6 bytes
MB: Final = 1_000_000
RSS_SETTLE_S: Final = 2.0
RSS_SAMPLES: Final = 5
RSS_SAMPLE_GAP_S: Final = 0.2
REPLICAS: Final = 3  # services per way: one process's RSS varies by ~0.2 MB
STAGE_SETTLE_S: Final = 1.0  # the HTTP one's RSS through the rest of the run
PAGES: Final = ("/metrics", "/status.json", "/")
SCRAPES: Final = 500  # ~0.2 s of service CPU: ~20 clock ticks
SCRAPE_WARMUP: Final = 10
IDLE_CONNECTIONS: Final = 500
#: 127.0.0.2 … 127.0.0.21, 25 connections in a row from each: the listener closes the 9 over
#: its per-address cap (16) at once, and of the 320 it takes keeps the newest 128 (its cap).
SOURCE_ADDRESSES: Final = 20
IDLE_SETTLE_S: Final = 0.3  # after the last connect, for the service to accept or refuse all
#: A pause after each CONNECT_BATCH connects: faster, the listener's accept queue (100)
#: overflows, and a dropped SYN costs its connect 1 s.
CONNECT_BATCH: Final = 20
CONNECT_PACE_S: Final = 0.005
JOBS_ROUND_S: Final = 2.5  # well inside the listener's 10 s request timeout
JOBS_ROUNDS: Final = 3
TIMEOUT_S: Final = 10.0
IMPORT_RUNS: Final = 7
#: What app.py imports only when a way is configured (the page: at the first GET /).
IMPORTS: Final = {"metrics_file": ("supervisor.publish.metricsfile",),
                  "http_listen": ("supervisor.publish.httpd", "supervisor.core.page")}

#: (name, [daemon] outputs): the four configurations, in the report's order.
WAYS: Final = (
    ("neither", (False, False)),
    ("metrics_file", (True, False)),
    ("http_listen", (False, True)),
    ("both", (True, True)),
)
JUDGED: Final = ("metrics_file", "http_listen")  # the budget is per way; "both" is context


# -- HTTP, as a scraper does it --------------------------------------------------------------
def http_get(port: int, path: str) -> tuple[int, bytes]:
    """One GET on its own connection, read to the server's close: (status, body)."""
    with socket.create_connection((HOST, port), timeout=TIMEOUT_S) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nUser-Agent: bench\r\n"
                     "Accept: */*\r\nConnection: close\r\n\r\n".encode())
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    try:
        status = int(head.split(b" ", 2)[1])
    except (IndexError, ValueError):
        raise BenchError(f"GET {path}: not an HTTP response: {head[:80]!r}") from None
    return status, body


def check_pages(port: int) -> dict[str, int]:
    """One request to each page, as a first scrape would; the bytes of each body."""
    sizes = {}
    for path in PAGES:
        status, body = http_get(port, path)
        if status != 200:
            raise BenchError(f"GET {path} answered {status}: {body[:200]!r}")
        sizes[path] = len(body)
    _, metrics = http_get(port, "/metrics")
    if b'printer="bench"' not in metrics:
        raise BenchError("GET /metrics shows no series of the printer 'bench'")
    return sizes


# -- the services ----------------------------------------------------------------------------
class Way:
    """Ours with one of the four configurations."""

    def __init__(self, procs: Processes, tmp: Path, name: str, with_file: bool,
                 with_http: bool) -> None:
        tmp.mkdir()
        self.name = name
        self.file = tmp / "printer_supervisor.prom" if with_file else None
        self.http_port = free_port() if with_http else None
        extra: list[str] = []
        if self.file is not None:
            extra.append(f"metrics_file = {json.dumps(str(self.file))}")
        if self.http_port is not None:
            extra.append(f'http_listen = "{HOST}:{self.http_port}"')
        self.ours: Ours = start_ours(procs, free_port(), Path("/dev/null"), tmp, extra)
        if self.file is not None:
            file = self.file
            wait_until(file.exists, START_TIMEOUT_S, f"ours ({name}) to write {file}")
        if self.http_port is not None:
            port = self.http_port

            def listening() -> bool:
                self.ours.check_alive()
                return bool(self.ours.events("http_listener_started")) and is_listening(port)

            wait_until(listening, START_TIMEOUT_S, f"ours ({name}) to listen on {port}")


def idle_rss_mb(pids: dict[str, int], settle_s: float = RSS_SETTLE_S,
                key: str = "VmRSS") -> dict[str, float]:
    """Each process's VmRSS (or another /proc/PID/status size) in MB, /proc's kB being KiB: the
    median of RSS_SAMPLES, all sampled together after a settle."""
    return {name: values[key] for name, values in idle_memory_mb(pids, settle_s).items()}


def idle_memory_mb(pids: dict[str, int], settle_s: float = RSS_SETTLE_S) -> dict[str, dict[
        str, float]]:
    """VmRSS and its anonymous part (RssAnon: the process's own heap, not the shared library
    and file pages it happens to have mapped) of each process, as `idle_rss_mb`."""
    time.sleep(settle_s)
    keys = ("VmRSS", "RssAnon")
    samples = {name: {key: list[int]() for key in keys} for name in pids}
    for _ in range(RSS_SAMPLES):
        for name, pid in pids.items():
            for key in keys:
                samples[name][key].append(status_kb(pid, key))
        time.sleep(RSS_SAMPLE_GAP_S)
    return {name: {key: statistics.median(values) * 1024 / MB for key, values in by_key.items()}
            for name, by_key in samples.items()}


# -- scrapes ---------------------------------------------------------------------------------
def scrape_cost(way: Way, count: int = SCRAPES) -> dict[str, Any]:
    """Sequential GET /metrics: wall time each, and the service's CPU over all of them."""
    assert way.http_port is not None
    for _ in range(SCRAPE_WARMUP):
        http_get(way.http_port, "/metrics")
    time.sleep(0.05)
    pid = way.ours.proc.pid
    walls, size = [], 0
    before = cpu_seconds(pid)
    for _ in range(count):
        start = time.perf_counter()
        status, body = http_get(way.http_port, "/metrics")
        walls.append((time.perf_counter() - start) * 1000)
        if status != 200:
            raise BenchError(f"GET /metrics answered {status}")
        size = len(body)
    time.sleep(0.05)  # the last connection's close
    cpu_s = cpu_seconds(pid) - before
    ordered = sorted(walls)
    return {"requests": count, "bytes": size, "wall_ms": {
        "median": statistics.median(ordered),
        "p90": ordered[min(count - 1, round(0.9 * (count - 1)))],
        "low": ordered[0], "high": ordered[-1]},
        "cpu_s": cpu_s, "cpu_ms_per_request": cpu_s / count * 1000}


# -- idle connections against printing -------------------------------------------------------
@contextlib.contextmanager
def idle_connections(port: int, count: int = IDLE_CONNECTIONS) -> Iterator[dict[str, int]]:
    """`count` connections to `port` that send nothing, from SOURCE_ADDRESSES loopback
    addresses, one after the other; yields how many the service still holds open once it has
    sorted them."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < count + 256:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, count + 1024), hard))
    socks: list[socket.socket] = []
    per_address = -(-count // SOURCE_ADDRESSES)
    try:
        start = time.monotonic()
        for i in range(count):
            sock = socket.socket()
            socks.append(sock)
            sock.settimeout(TIMEOUT_S)
            sock.bind((f"127.0.0.{2 + i // per_address}", 0))
            sock.connect((HOST, port))
            sock.settimeout(None)  # blocking again: MSG_DONTWAIT alone decides in _still_open
            if i % CONNECT_BATCH == CONNECT_BATCH - 1:
                time.sleep(CONNECT_PACE_S)
        opened_s = time.monotonic() - start
        time.sleep(IDLE_SETTLE_S)
        held = {"opened": count, "connect_ms": round(opened_s * 1000),
                "held": _still_open(socks)}
        yield held
        held["held_after"] = _still_open(socks)
    finally:
        for sock in socks:
            sock.close()


def _still_open(socks: list[socket.socket]) -> int:
    """How many the server has neither closed nor answered (a 408 after the listener's 10 s
    request timeout): those alone would block on a read."""
    count = 0
    for sock in socks:
        try:
            sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except BlockingIOError:
            count += 1
        except OSError:
            pass
    return count


def printing_under_idle_load(way: Way, procs: Processes) -> dict[str, Any]:
    """Small-job rounds alternating without and with IDLE_CONNECTIONS open (opened anew each
    round, so none reaches the listener's 10 s request timeout), the order swapped each round.
    Each round's jobs come from a fresh source address, random per run: ~15,000 jobs leave as
    many ports in TIME_WAIT for 60 s, and connects slow down many times over as one address's
    ephemeral ports run out (a run right after another on fixed addresses made 160 jobs/s)."""
    assert way.http_port is not None
    prefix = f"127.{random.randrange(1, 255)}.{random.randrange(256)}"
    job_round(procs, way.ours, 0.5, f"{prefix}.1")  # warm-up
    rates: dict[str, list[float]] = {"without": [], "with": []}
    cpu_us: dict[str, list[float]] = {"without": [], "with": []}
    held: list[dict[str, int]] = []
    source = 1
    for n in range(1, JOBS_ROUNDS + 1):
        for phase in ("without", "with") if n % 2 else ("with", "without"):
            source += 1
            with contextlib.ExitStack() as stack:
                idle = (stack.enter_context(idle_connections(way.http_port))
                        if phase == "with" else None)
                jobs, seconds, cpu_s = job_round(procs, way.ours, JOBS_ROUND_S,
                                                        f"{prefix}.{source}")
            if idle:
                held.append(idle)
            rates[phase].append(jobs / seconds)
            cpu_us[phase].append(cpu_s / jobs * 1e6)
            extra = (f", {idle['held']} of {idle['opened']} idle connections held open"
                     if idle else "")
            print(f"  metrics: jobs round {n}/{JOBS_ROUNDS} {phase:7} idle connections "
                  f"{jobs / seconds:8.0f} jobs/s{extra}", file=sys.stderr, flush=True)
    with_, without = (statistics.median(rates[k]) for k in ("with", "without"))
    return {"jobs_per_s": {"without": without, "with": with_},
            "jobs_per_s_rounds": rates,
            "cpu_us_per_job": {k: statistics.median(v) for k, v in cpu_us.items()},
            "ratio": with_ / without, "idle": held}


def import_ms() -> dict[str, float]:
    """What each way imports when configured, after the service's own modules (median of
    IMPORT_RUNS fresh interpreters each)."""
    result = {}
    for name, modules in IMPORTS.items():
        code = ("import time, supervisor.app, supervisor.ctl.cli; t = time.perf_counter(); "
                f"import {', '.join(modules)}; print((time.perf_counter() - t) * 1000)")
        result[name] = statistics.median(
            float(subprocess.check_output([str(SERVICE_PYTHON), "-c", code], text=True))
            for _ in range(IMPORT_RUNS))
    return result


# -- the section -----------------------------------------------------------------------------
def bench_metrics() -> dict[str, Any]:
    procs = Processes()
    with tempfile.TemporaryDirectory(prefix="bench-metrics-") as tmp_s, \
            contextlib.ExitStack() as stack:
        stack.callback(procs.stop_all)
        tmp = Path(tmp_s)
        ways = {f"{name}#{n}": Way(procs, tmp / f"{name}{n}", name, *outputs)
                for n in range(1, REPLICAS + 1) for name, outputs in WAYS}
        pids = {key: way.ours.proc.pid for key, way in ways.items()}
        p910nd = None
        if P910ND.exists() and (os.geteuid() == 0 or P910ND_LOCK_DIR.is_dir()):
            (tmp / "p910nd").mkdir()
            p910nd = start_p910nd(procs, free_p910nd_number(), Path("/dev/null"), tmp / "p910nd")
            pids["p910nd"] = p910nd.proc.pid
        pages = {key: check_pages(way.http_port) for key, way in ways.items()
                 if way.http_port is not None}
        print(f"  metrics: {len(ways)} services up ({REPLICAS} per way), each page fetched "
              "once; idle RSS", file=sys.stderr, flush=True)
        samples = idle_memory_mb(pids)
        files = {key: way.file.stat().st_size for key, way in ways.items()
                 if way.file is not None}
        http = ways["http_listen#1"]
        exits, removed = {}, {}
        for key, way in ways.items():
            if way is not http:
                exits[key] = procs.stop(way.ours.proc)
                if way.file is not None:
                    removed[key] = not way.file.exists()
        if p910nd is not None:
            procs.stop(p910nd.proc)
        pid = http.ours.proc.pid
        print(f"  metrics: {SCRAPES} sequential GET /metrics", file=sys.stderr, flush=True)
        scrape = scrape_cost(http)
        stages = {"idle": samples["http_listen#1"]["VmRSS"],
                  "after_scrapes": idle_rss_mb({"x": pid}, STAGE_SETTLE_S)["x"]}
        assert http.http_port is not None
        with idle_connections(http.http_port) as flood:
            stages["holding_idle"] = idle_rss_mb({"x": pid}, STAGE_SETTLE_S)["x"]
        stages["after_idle"] = idle_rss_mb({"x": pid}, STAGE_SETTLE_S)["x"]
        printing = printing_under_idle_load(http, procs)
        stages["after_jobs"] = idle_rss_mb({"x": pid}, STAGE_SETTLE_S)["x"]
        stages["peak"] = status_kb(pid, "VmHWM") * 1024 / MB
        exits["http_listen#1"] = procs.stop(http.ours.proc)
        if not http.ours.events("job_finished"):
            raise BenchError("ours logged no job_finished: the jobs did not go through it")
    imports = import_ms()
    replicas = {name: [samples[f"{name}#{n}"]["VmRSS"] for n in range(1, REPLICAS + 1)]
                for name, _ in WAYS}
    rss = {name: statistics.median(values) for name, values in replicas.items()}
    anon = {name: statistics.median(samples[f"{name}#{n}"]["RssAnon"]
                                    for n in range(1, REPLICAS + 1)) for name, _ in WAYS}
    if "p910nd" in samples:
        rss["p910nd"] = samples["p910nd"]["VmRSS"]
        anon["p910nd"] = samples["p910nd"]["RssAnon"]
    deltas = {name: rss[name] - rss["neither"] for name, _ in WAYS if name != "neither"}
    anon_deltas = {name: anon[name] - anon["neither"] for name, _ in WAYS if name != "neither"}
    rss_met = all(deltas[name] <= RSS_BUDGET_MB for name in JUDGED)
    return {"replicas": REPLICAS, "rss_mb": rss, "rss_replicas_mb": replicas,
            "rss_delta_mb": deltas, "rss_anon_mb": anon, "rss_anon_delta_mb": anon_deltas,
            "rss_budget_mb": RSS_BUDGET_MB, "rss_met": rss_met, "http_listen_rss_mb": stages,
            "idle_flood": flood, "import_ms": imports, "page_bytes": pages,
            "metrics_file_bytes": files, "scrape": scrape, "printing": printing,
            "job_bytes": JOB_BYTES, "jobs_round_s": JOBS_ROUND_S, "jobs_rounds": JOBS_ROUNDS,
            "ours_exit_status": exits, "metrics_file_removed": removed,
            "met": rss_met and all(e == 0 for e in exits.values()) and all(removed.values())}


STAGES: Final = (
    ("idle", "idle, each page fetched once (the first service above)"),
    ("after_scrapes", f"after {SCRAPES} scrapes of /metrics"),
    ("holding_idle", "holding the {held} idle connections it kept of {opened} opened"),
    ("after_idle", "after they were closed"),
    ("after_jobs", "after the small-job rounds ({jobs} jobs, {floods} more floods)"),
    ("peak", "peak (VmHWM)"),
)


def render_metrics(result: dict[str, Any], yes: Callable[[bool], str]) -> list[str]:
    rss, deltas, budget = result["rss_mb"], result["rss_delta_mb"], result["rss_budget_mb"]
    lines = ["metrics outputs (metrics_file, http_listen): idle RSS with one static printer on "
             f"/dev/null, {result['replicas']} services per way, all running side by side, each "
             f"the median VmRSS of {RSS_SAMPLES} samples after {RSS_SETTLE_S:g} s; the HTTP ones "
             "after one GET of each of " + ", ".join(PAGES) + "; MB = 10^6 bytes",
             "",
             f"{'':22} {'VmRSS MB':>9} {'vs neither':>10}  {'budget':7} {'met':4} "
             f"{'RssAnon MB':>10} {'vs neither':>10}  VmRSS per service"]
    anon, anon_deltas = result["rss_anon_mb"], result["rss_anon_delta_mb"]
    for name, _ in WAYS:
        each = " ".join(f"{v:.2f}" for v in result["rss_replicas_mb"][name])
        if name == "neither":
            delta, verdict, anon_delta = "", f"{'':7} {'':4}", ""
        else:
            delta, anon_delta = f"{deltas[name]:+.2f}", f"{anon_deltas[name]:+.2f}"
            verdict = (f"{'+' + format(budget, 'g') + ' MB':7} {yes(deltas[name] <= budget):4}"
                       if name in JUDGED else f"{'-':7} {'-':4}")
        lines.append(f"{'ours, ' + name:22} {rss[name]:9.2f} {delta:>10}  {verdict} "
                     f"{anon[name]:10.2f} {anon_delta:>10}  {each}")
    lines.append(f"{'p910nd (/dev/null)':22} {rss['p910nd']:9.2f} {'':10}  {'':7} {'':4} "
                 f"{anon['p910nd']:10.2f}" if "p910nd" in rss
                 else f"p910nd: not measured ({P910ND} missing, or not root)")
    lines.append("(the budget is per way; 'both' is context. RssAnon is VmRSS less the shared "
                 "library and file pages mapped: the process's own memory)")
    printing, flood = result["printing"], result["idle_flood"]
    jobs = sum(round(r * result["jobs_round_s"]) for v in printing["jobs_per_s_rounds"].values()
               for r in v)
    lines += ["", "ours, http_listen, RSS MB through the rest of the run:"]
    for key, label in STAGES:
        text = label.format(held=flood["held"], opened=flood["opened"], jobs=f"~{jobs}",
                            floods=len(printing["idle"]))
        lines.append(f"  {text:62} {result['http_listen_rss_mb'][key]:6.1f}")
    scrape = result["scrape"]
    wall = scrape["wall_ms"]
    lines += ["", f"scrape: {scrape['requests']} sequential GET /metrics ({scrape['bytes']} "
              f"bytes), one connection each: wall median {wall['median']:.2f} ms (p90 "
              f"{wall['p90']:.2f}, {wall['low']:.2f}-{wall['high']:.2f}); service CPU "
              f"{scrape['cpu_ms_per_request']:.2f} ms per request ({scrape['cpu_s']:.2f} s over "
              "all, in 10 ms ticks)"]
    rates, cpu = printing["jobs_per_s"], printing["cpu_us_per_job"]
    held = ", ".join(f"{h['held']}/{h.get('held_after', '?')}" for h in printing["idle"])
    lines += [f"printing with {IDLE_CONNECTIONS} idle HTTP connections opened (from "
              f"{SOURCE_ADDRESSES} loopback addresses) against none: sequential "
              f"{result['job_bytes']}-byte jobs to /dev/null, {result['jobs_rounds']} rounds of "
              f"{result['jobs_round_s']:g} s each way, alternating, each from a fresh source "
              "address; medians",
              f"  without: {rates['without']:.0f} jobs/s, {cpu['without']:.0f} µs CPU/job; "
              f"with: {rates['with']:.0f} jobs/s, {cpu['with']:.0f} µs CPU/job; "
              f"with/without {printing['ratio']:.2f}x",
              f"  idle connections the service still held at the start/end of each round's "
              f"jobs: {held}"]
    imports = result["import_ms"]
    lines.append(f"imported only when configured, after the service's own modules (median of "
                 f"{IMPORT_RUNS}): metrics_file {imports['metrics_file']:.1f} ms, http_listen "
                 f"{imports['http_listen']:.1f} ms")
    removed, exits = result["metrics_file_removed"], result["ours_exit_status"]
    bad_exits = ", ".join(f"{k} {v}" for k, v in exits.items() if v != 0)
    lines += [f"metrics file removed at shutdown: {sum(removed.values())} of the {len(removed)} "
              f"services that wrote one: {yes(all(removed.values()))}; ours exit status on "
              f"SIGTERM 0 for {sum(v == 0 for v in exits.values())} of {len(exits)}"
              f"{' (not: ' + bad_exits + ')' if bad_exits else ''}: "
              f"{yes(not bad_exits)}",
              f"idle RSS, each way +{budget:g} MB at most: " + ", ".join(
                  f"{name} {deltas[name]:+.2f} MB {yes(deltas[name] <= budget)}"
                  for name in JUDGED)]
    return lines
