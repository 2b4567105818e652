"""`supervisorctl notify` against a bare interpreter: wall time per run, and an import profile.

notify runs as the OpenWrt hotplug shim runs it: no --socket (the control socket comes from the
configuration file: the OpenWrt package's UCI file, pointed at the bench's service), the event
from the environment (hotplug-call's variables and PATH only)."""

from __future__ import annotations

import contextlib
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from hotplug import start_hotplug_service
from procs import ROOT, SERVICE_PYTHON, SUPERVISORCTL, BenchError, Processes

from supervisor.ctl.cli import EXIT_NOT_RUNNING, EXIT_OK

HOTPLUG_ENV: Final = {"ACTION": "change", "DEVPATH": "/devices/x", "SUBSYSTEM": "usb",
                      "DEVTYPE": "usb_device", "SEQNUM": "4711",
                      "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
OPENWRT_CONFIG: Final = ROOT / "units" / "openwrt" / "printer-supervisor.config"  # UCI
COMMAND_TIMEOUT_S: Final = 10.0
IMPORTTIME_RUNS: Final = 5
_IMPORTTIME_LINE: Final = re.compile(r"import time:\s+\d+ \|\s+(?P<cum>\d+) \| (?P<pad> *)"
                                     r"(?P<name>\S+)")

# argv, the exit status it must end with, the environment (None: ours)
Command = tuple[list[str], int, dict[str, str] | None]


def timed_run(argv: Sequence[str], expected: int, env: dict[str, str] | None = None) -> float:
    """Run a command to its end: wall ms from just before the spawn until it was reaped."""
    start = time.perf_counter()
    try:
        done = subprocess.run(list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, timeout=COMMAND_TIMEOUT_S, check=False,
                              env=env)
    except subprocess.TimeoutExpired:
        raise BenchError(f"{' '.join(argv)} did not finish in {COMMAND_TIMEOUT_S:g} s") from None
    elapsed_ms = (time.perf_counter() - start) * 1000
    if done.returncode != expected:
        raise BenchError(f"{' '.join(argv)} exited {done.returncode}, not {expected}: "
                         f"{done.stderr.decode(errors='replace').strip()}")
    return elapsed_ms


def alternate(runs: int, commands: dict[str, Command]) -> dict[str, list[float]]:
    """One uncounted run of each, then `runs` rounds of each in turn."""
    for argv, expected, env in commands.values():
        timed_run(argv, expected, env)
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, (argv, expected, env) in commands.items():
            times[name].append(timed_run(argv, expected, env))
    return times


def import_times(python: str, args: Sequence[str],
                 env: dict[str, str] | None = None) -> dict[str, tuple[int, int]]:
    """`python -X importtime ARGS`: each module's nesting depth and cumulative µs."""
    done = subprocess.run([python, "-X", "importtime", *args], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S, check=False,
                          env=env)
    modules = {}
    for line in done.stderr.splitlines():
        if match := _IMPORTTIME_LINE.match(line):
            modules[match["name"]] = (len(match["pad"]) // 2, int(match["cum"]))
    return modules


def import_profile(python: str, notify: Sequence[str],
                   env: dict[str, str]) -> list[tuple[str, float]]:
    """What notify imports beyond a bare start (outermost imports only, so the times add up):
    module and median cumulative µs over IMPORTTIME_RUNS runs, largest first."""
    bare = set().union(*(import_times(python, ["-c", "pass"], env)
                         for _ in range(IMPORTTIME_RUNS)))
    runs = [import_times(python, notify, env) for _ in range(IMPORTTIME_RUNS)]
    extra: dict[str, list[int]] = {}
    for modules in runs:
        for name, (depth, cumulative) in modules.items():
            if depth == 0 and name not in bare:
                extra.setdefault(name, []).append(cumulative)
    medians = [(name, statistics.median(times)) for name, times in extra.items()]
    return sorted(medians, key=lambda item: -item[1])


def shim_config(root: Path, socket: Path) -> Path:
    """The OpenWrt package's configuration (UCI, 3 KB, half comments), naming the bench's
    socket: what the shim's notify reads on a router."""
    text = OPENWRT_CONFIG.read_text(encoding="utf-8")
    line = next(line for line in text.splitlines()
                if line.strip().startswith("option control_socket "))
    path = root / "printer-supervisor"
    path.write_text(text.replace(line, f"\toption control_socket '{socket}'"), encoding="utf-8")
    return path


@dataclass
class NotifyResult:
    running: dict[str, list[float]]  # "pass" and "notify" wall ms, the service running
    stopped: dict[str, list[float]]  # the same once it stopped (notify exits 3)
    imports: list[tuple[str, float]]
    delivered: int  # hotplug_received records of our event in ours' log
    ours_exit_status: int


def bench_notify(runs: int) -> NotifyResult:
    procs = Processes()
    with tempfile.TemporaryDirectory(prefix="bench-notify-") as tmp_s, \
            contextlib.ExitStack() as stack:
        stack.callback(procs.stop_all)  # before the directory goes
        service = start_hotplug_service(procs, Path(tmp_s))
        print(f"notify: {runs} runs each, alternating", file=sys.stderr, flush=True)
        python = str(SERVICE_PYTHON)
        env = {**HOTPLUG_ENV, "PRINTER_SUPERVISOR_CONFIG": str(
            shim_config(Path(tmp_s), service.socket))}
        notify = [str(SUPERVISORCTL), "notify"]
        bare = [python, "-c", "pass"]
        running = alternate(runs, {"pass": (bare, EXIT_OK, env),
                                   "notify": (notify, EXIT_OK, env)})
        imports = import_profile(python, notify, env)
        service.log.read()
        delivered = sum(1 for r in service.log.records if r.get("event") == "hotplug_received"
                        and r.get("devpath") == "/devices/x")
        sent = 1 + runs + IMPORTTIME_RUNS  # the warm-up, the measured runs, the profiled ones
        if delivered != sent:
            raise BenchError(f"ours logged {delivered} of the {sent} notify events sent")
        status = procs.stop(service.proc)
        stopped = alternate(runs, {"pass": (bare, EXIT_OK, env),
                                   "notify": (notify, EXIT_NOT_RUNNING, env)})
    return NotifyResult(running, stopped, imports, delivered, status)
