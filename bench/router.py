"""A router's budget, side by side with p910nd and Python's own floor, in one run.

Ours runs as the OpenWrt package ships it: the UCI file units/openwrt/printer-supervisor.config
(paths moved to a temporary directory, a fake sysfs and devfs) and byte-code compiled with -OO,
sources deleted (openwrt/net/printer-supervisor/Makefile). The floor is the interpreter with
asyncio imported and ssl kept out, as the service keeps it out.

- interpreter starts per plug and unplug of the fixture (tests/fixtures/openwrt_hplj1018.json)
  through our hotplug shims;
- idle RSS: the floor, p910nd, ours with nothing plugged and with one printer ready;
- RSS after jobs: one printer before its first job and after six 3 MiB jobs; 64 printers idle
  and after one job each;
- wake-ups: context switches of every thread over an idle window (--router-idle-s, 600 s by
  default) with a printer ready, the responder (umdns) absent and present, and p910nd's; the
  metrics textfile's rewrites meanwhile; the state directory's writes over the jobs and the
  window;
- cold start to READY (sd_notify) against p910nd's start to listening;
- `supervisorctl notify` from the package's byte-code against `python -c pass`.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

from procs import (
    ROOT,
    SERVICE_PYTHON,
    BenchError,
    Processes,
    free_port,
    is_listening,
    status_kb,
    wait_until,
)
from throughput import P910ND, free_p910nd_number, start_p910nd

from supervisor.ctl.client import request
from supervisor.lab.virtual import FakeSysfs, VirtualPrinter, VirtualUsbPrinter

FIXTURE: Final = ROOT / "tests" / "fixtures" / "openwrt_hplj1018.json"
UCI_CONFIG: Final = ROOT / "units" / "openwrt" / "printer-supervisor.config"
SCRIPT: Final = ROOT / "scripts" / "supervisorctl"
RECORDER: Final = '#!/bin/sh\necho "$ACTION $SUBSYSTEM ${DEVTYPE:-} ${DEVNAME:-}" >> "$0.calls"\n'
RSS_SAMPLES: Final = 5
SETTLE_S: Final = 1.0
JOB_BYTES: Final = 3 << 20
MANY: Final = 64
STARTS: Final = 10
NOTIFY_RUNS: Final = 20
FLOOR: Final = ("import sys; sys.modules['ssl'] = None\nimport asyncio, time\n"
                "print('up', flush=True)\ntime.sleep(1e6)\n")
# The service as `supervisorctl run` makes it, but with umdns's directory moved (for the
# responder-present window only: it would be /etc/umdns).
SERVICE: Final = """import sys
sys.modules.setdefault("ssl", None)  # as `supervisorctl run` keeps it out
import asyncio, signal
from pathlib import Path
from supervisor.app import Service
from supervisor.config.loader import load_settings
from supervisor.observe.logs import configure_logging, flush_logging
settings = load_settings(Path(sys.argv[1]), required=True)
configure_logging(settings.daemon.log_file, max_bytes=settings.daemon.log_max_bytes)
async def main():
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    service = Service(settings, umdns_dir=Path(sys.argv[2]))
    loop.add_signal_handler(signal.SIGHUP, service.request_reload)
    await service.run(stop)
try:
    asyncio.run(main())
finally:
    flush_logging()
"""
# A ubus that answers as OpenWrt's does with umdns running (tests/test_mdns_umdns.py's too).
UBUS: Final = """#!/bin/sh
case "$*" in
  *"list umdns") echo umdns; exit 0 ;;
  *"call umdns reload") exit 0 ;;
esac
exit 2
"""


# -- the package's byte-code and environment -------------------------------------------------
def package_site(tmp: Path) -> Path:
    """The supervisor package as the OpenWrt package installs it: -OO byte-code, no sources."""
    site = tmp / "site"
    shutil.copytree(ROOT / "supervisor", site / "supervisor",
                    ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([str(SERVICE_PYTHON), "-OO", "-m", "compileall", "-q", "-b", "-d", "/",
                    str(site)], check=True, timeout=120)
    for source in site.rglob("*.py"):
        source.unlink()
    return site


def router_env(site: Path, bin_dir: Path | None = None) -> dict[str, str]:
    path = f"{bin_dir}:/usr/bin:/bin" if bin_dir else "/usr/bin:/bin"
    env = {**os.environ, "PYTHONPATH": str(site), "PATH": path,
           "DBUS_SYSTEM_BUS_ADDRESS": "unix:path=/nonexistent"}  # no avahi on a router
    env.pop("NOTIFY_SOCKET", None)
    return env


def router_config(root: Path, *, printers: str = "", metrics: bool = False) -> Path:
    """The package's UCI file, its paths under `root`, listening on loopback only."""
    for sub in ("run", "log", "etc", "sys", "dev", "umdns", "bin"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    text = UCI_CONFIG.read_text(encoding="utf-8")
    for old, new in (("/var/run/printer-supervisor", root / "run"),
                     ("/var/log/printer-supervisor", root / "log"),
                     ("/etc/printer-supervisor", root / "etc")):
        text = text.replace(old, str(new))
    extra = f"\toption sysfs '{root}/sys'\n\toption devfs '{root}/dev'\n"
    if metrics:
        extra += f"\toption metrics_file '{root}/metrics.prom'\n"
    text = text.replace("list bind '::'", "list bind '127.0.0.1'").replace(
        "option base_port '9100'", f"option base_port '{free_port()}'").replace(
        "config daemon 'daemon'\n", "config daemon 'daemon'\n" + extra)
    config = root / "printer-supervisor"
    config.write_text(text + printers, encoding="utf-8")
    return config


class Router:
    """Ours with the package's UCI file in `root`, run from the package's byte-code."""

    def __init__(self, procs: Processes, root: Path, site: Path, *, printers: str = "",
                 metrics: bool = False, ubus: bool = False) -> None:
        self.root = root
        self.config = router_config(root, printers=printers, metrics=metrics)
        if ubus:
            (root / "bin" / "ubus").write_text(UBUS, encoding="utf-8")
            (root / "bin" / "ubus").chmod(0o755)
        self.log = root / "log" / "events.jsonl"
        self.socket = str(root / "run" / "control.sock")
        # `supervisorctl run` as procd starts it; with the ubus stand-in, the same service from
        # a runner that moves umdns's directory (it would write /etc/umdns otherwise).
        argv = ([str(SERVICE_PYTHON), "-c", SERVICE, str(self.config), str(root / "umdns")]
                if ubus else
                [str(SERVICE_PYTHON), str(SCRIPT), "run", "--config", str(self.config)])
        self.proc = procs.spawn(argv, env=router_env(site, root / "bin"), cwd=root)
        wait_until(lambda: "daemon_started" in self.events(), 30, "ours to start")

    def events(self) -> str:
        return self.log.read_text(encoding="utf-8") if self.log.exists() else ""

    def records(self, event: str) -> list[dict[str, Any]]:
        return [r for r in map(json.loads, self.events().splitlines()) if r["event"] == event]

    def wait_for(self, event: str, count: int, what: str) -> None:
        wait_until(lambda: len(self.records(event)) >= count, 60, what)

    def ports(self) -> list[int]:
        return [r["port"] for r in self.records("listener_started")]


def rss_mib(pid: int) -> float:
    """VmRSS after the process settled: the median of a few samples."""
    time.sleep(SETTLE_S)
    samples = []
    for _ in range(RSS_SAMPLES):
        samples.append(status_kb(pid, "VmRSS"))
        time.sleep(0.2)
    return statistics.median(samples) / 1024


def context_switches(pid: int) -> int:
    """Voluntary and involuntary context switches of every thread: each wake-up is one."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        text = Path(f"/proc/{pid}/task/{task}/status").read_text()
        total += sum(int(line.split()[1]) for line in text.splitlines()
                     if "ctxt_switches:" in line)
    return total


def files_state(directory: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in directory.iterdir()}


def send_job(port: int, data: bytes) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=60) as conn:
        conn.sendall(data)
        conn.shutdown(socket.SHUT_WR)
        while conn.recv(65536):
            pass


# -- the measurements ------------------------------------------------------------------------
def interpreter_starts(tmp: Path) -> dict[str, Any]:
    """Run every shim of rules/hotplug.d/ on the fixture's events, as hotplug-call would."""
    (tmp / "dev" / "usb").mkdir(parents=True)
    (tmp / "dev" / "usb" / "lp0").touch()
    recorder = tmp / "ctl"
    recorder.write_text(RECORDER)
    recorder.chmod(0o755)
    fixture = json.loads(FIXTURE.read_text())
    counts: dict[str, int] = {}
    for sequence in ("plug", "unplug"):
        for step in fixture[sequence]:
            target = step["dispatched_to"].split()[0]  # "/etc/hotplug.d/usbmisc/*" or "(nothing"
            directory = ROOT / "rules" / target.removeprefix("/etc/").rstrip("*")
            for shim in sorted(directory.glob("*")) if directory.is_dir() else []:
                env = {"PATH": "/usr/bin:/bin", **step["env"],
                       "PRINTER_SUPERVISOR_CTL": str(recorder),
                       "PRINTER_SUPERVISOR_DEVROOT": str(tmp / "dev")}
                subprocess.run(["/bin/sh", str(shim)], env=env, check=True, timeout=10,
                               stdin=subprocess.DEVNULL, capture_output=True)
        calls = Path(f"{recorder}.calls")
        counts[sequence] = len(calls.read_text().splitlines()) if calls.exists() else 0
        calls.unlink(missing_ok=True)
    return {"events": {s: len(fixture[s]) for s in ("plug", "unplug")}, "starts": counts}


def floor_rss(procs: Processes) -> float:
    proc = procs.spawn([str(SERVICE_PYTHON), "-c", FLOOR], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    proc.stdout.readline()
    rss = rss_mib(proc.pid)
    procs.stop(proc)
    return rss


@contextmanager
def p910nd(procs: Processes, tmp: Path) -> Iterator[subprocess.Popen[bytes] | None]:
    if not P910ND.exists():
        yield None
        return
    (tmp / "p910nd").mkdir()
    server = start_p910nd(procs, free_p910nd_number(), Path("/dev/null"), tmp / "p910nd")
    try:
        yield server.proc
    finally:
        procs.stop(server.proc)


def plug(router: Router) -> VirtualUsbPrinter:
    usb = VirtualUsbPrinter(FakeSysfs(router.root / "sys"), router.root / "dev",
                            product_id=0x2C17, model="HP LaserJet 1022")  # needs no firmware
    for event in usb.plug():
        request(router.socket, {"v": 1, "cmd": "notify", "event": event})
    router.wait_for("listener_started", 1, "the plugged printer to listen")
    return usb


def after_jobs_one(router: Router) -> dict[str, float]:
    """One printer: RSS before its first job, after six 3 MiB jobs."""
    before = rss_mib(router.proc.pid)
    port = router.ports()[0]
    for _ in range(6):
        send_job(port, os.urandom(JOB_BYTES))
    router.wait_for("job_finished", 6, "six jobs")
    return {"before_mib": before, "after_mib": rss_mib(router.proc.pid)}


def after_jobs_many(procs: Processes, tmp: Path, site: Path) -> dict[str, float]:
    """64 printers (fixed nodes, ptys): RSS idle, then after one 1.5 MiB job each."""
    root = tmp / "many"
    printers = [VirtualPrinter(root / "dev", f"usb/lp{n}", responder=None) for n in range(MANY)]
    try:
        for printer in printers:
            printer.plug()
        sections = "".join(f"\nconfig printer 'p{n}'\n\toption device '{p.path}'\n"
                           for n, p in enumerate(printers))
        router = Router(procs, root, site, printers=sections)
        router.wait_for("listener_started", MANY, f"{MANY} printers to listen")
        idle = rss_mib(router.proc.pid)
        for port in router.ports():
            send_job(port, os.urandom(JOB_BYTES // 2))
        router.wait_for("job_finished", MANY, f"{MANY} jobs")
        after = rss_mib(router.proc.pid)
        procs.stop(router.proc)
    finally:
        for printer in printers:
            printer.close()
    return {"idle_mib": idle, "after_mib": after}


def cold_starts(procs: Processes, tmp: Path, site: Path) -> dict[str, Any]:
    """Ours: exec to READY=1 (sd_notify, as systemd hears it); the floor: python importing
    asyncio, to its exit; p910nd: exec to listening."""
    ours = []
    for n in range(STARTS + 1):
        root = tmp / f"start{n}"
        config = router_config(root)
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
            notify.bind(str(root / "notify.sock"))
            notify.settimeout(30)
            env = {**router_env(site), "NOTIFY_SOCKET": str(root / "notify.sock")}
            started = time.perf_counter()
            proc = procs.spawn([str(SERVICE_PYTHON), str(SCRIPT), "run", "--config",
                                str(config)], env=env, cwd=root)
            while b"READY=1" not in notify.recv(4096):
                pass
            elapsed = time.perf_counter() - started
        procs.stop(proc)
        if n:  # the first one warms the page cache
            ours.append(elapsed * 1000)
    floor = []
    for n in range(STARTS + 1):
        started = time.perf_counter()
        subprocess.run([str(SERVICE_PYTHON), "-c", "import sys; sys.modules['ssl'] = None\n"
                        "import asyncio"], check=True, timeout=60)
        if n:
            floor.append((time.perf_counter() - started) * 1000)
    theirs = []
    if P910ND.exists():
        for n in range(STARTS):
            number = free_p910nd_number()
            (tmp / f"p{n}").mkdir()
            started = time.perf_counter()
            server = start_p910nd(procs, number, Path("/dev/null"), tmp / f"p{n}")
            port = 9100 + number
            wait_until(lambda port=port: is_listening(port), 10,  # type: ignore[misc]
                       "p910nd to listen", poll_s=0.0005)
            theirs.append((time.perf_counter() - started) * 1000)
            procs.stop(server.proc)
    return {"ours_ms": statistics.median(ours), "floor_ms": statistics.median(floor),
            "p910nd_ms": statistics.median(theirs) if theirs else None}


def notify_ratio(procs: Processes, router: Router, site: Path) -> dict[str, float]:
    """`supervisorctl notify` from the package's byte-code, as the shim runs it, against a bare
    interpreter start; alternating."""
    # The socket found in the UCI file, as the shim's notify finds it (no --socket).
    env = {**router_env(site), "PRINTER_SUPERVISOR_CONFIG": str(router.config), "ACTION": "add",
           "SUBSYSTEM": "usbmisc", "DEVNAME": "usb/lp9", "DEVPATH": "/devices/x/usbmisc/lp9",
           "SEQNUM": "1"}
    times: dict[str, list[float]] = {"notify": [], "pass": []}
    commands = {"notify": [str(SERVICE_PYTHON), str(SCRIPT), "notify"],
                "pass": [str(SERVICE_PYTHON), "-c", "pass"]}
    for n in range(NOTIFY_RUNS + 1):
        for name, argv in commands.items():
            started = time.perf_counter()
            code = subprocess.run(argv, env=env, check=False, timeout=30,
                                  stdin=subprocess.DEVNULL, capture_output=True).returncode
            if code != 0:
                raise BenchError(f"{name} exited {code}")
            if n:
                times[name].append((time.perf_counter() - started) * 1000)
    notify_ms, pass_ms = statistics.median(times["notify"]), statistics.median(times["pass"])
    return {"notify_ms": notify_ms, "pass_ms": pass_ms, "ratio": notify_ms / pass_ms}


def idle_window(procs: Processes, absent: Router, present: Router,
                p910nd_proc: subprocess.Popen[bytes] | None, seconds: float,
                ) -> dict[str, Any]:
    """Wake-ups of each over one idle window; the textfile's rewrites meanwhile (sampled by
    us once a second: it costs the service nothing)."""
    pids = {"absent": absent.proc.pid, "present": present.proc.pid}
    if p910nd_proc is not None:
        pids["p910nd"] = p910nd_proc.pid
    prom = present.root / "metrics.prom"
    wait_until(prom.exists, 30, "the metrics textfile")
    time.sleep(2.0)  # what the last change scheduled (a textfile write a second later)
    start = {name: context_switches(pid) for name, pid in pids.items()}
    inodes = {prom.stat().st_ino}
    state = {n: files_state(r.root / "etc" / "state") for n, r in (("absent", absent),
                                                                     ("present", present))}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(1.0)
        inodes.add(prom.stat().st_ino)
    woken = {name: context_switches(pid) - start[name] for name, pid in pids.items()}
    state_writes = sum(files_state(r.root / "etc" / "state") != state[n]
                       for n, r in (("absent", absent), ("present", present)))
    return {"seconds": seconds, "wakeups": woken, "textfile_writes": len(inodes) - 1,
            "state_dirs_changed": state_writes}


def bench_router(idle_s: float = 600.0) -> dict[str, Any]:
    procs = Processes()
    with tempfile.TemporaryDirectory(prefix="bench-router-") as tmp_s:
        tmp = Path(tmp_s)
        try:
            result: dict[str, Any] = interpreter_starts(tmp / "shims")
            site = package_site(tmp)
            print("router: floor, p910nd and ours idle", file=sys.stderr, flush=True)
            result["floor_mib"] = floor_rss(procs)
            with p910nd(procs, tmp) as p910nd_proc:
                result["p910nd_mib"] = (rss_mib(p910nd_proc.pid) if p910nd_proc is not None
                                        else None)
                absent = Router(procs, tmp / "absent", site)
                result["ours_idle_mib"] = rss_mib(absent.proc.pid)
                usb = plug(absent)
                result["ours_ready_mib"] = rss_mib(absent.proc.pid)
                state_before = files_state(absent.root / "etc" / "state")
                result["one_printer"] = after_jobs_one(absent)
                result["state_written_by_jobs"] = (
                    files_state(absent.root / "etc" / "state") != state_before)
                present = Router(procs, tmp / "present", site, metrics=True, ubus=True)
                usb_present = plug(present)
                wait_until(lambda: bool(present.records("mdns_responder")), 30,
                           "umdns to be found")
                print(f"router: {idle_s:g} s idle window", file=sys.stderr, flush=True)
                result["idle"] = idle_window(procs, absent, present, p910nd_proc, idle_s)
                result["notify"] = notify_ratio(procs, absent, site)
                for router in (absent, present):
                    procs.stop(router.proc)
                usb.close()
                usb_present.close()
            print("router: 64 printers, cold starts", file=sys.stderr, flush=True)
            result["many"] = after_jobs_many(procs, tmp, site)
            result["start"] = cold_starts(procs, tmp, site)
        finally:
            procs.stop_all()
    return summarize_router(result)


def summarize_router(r: dict[str, Any]) -> dict[str, Any]:
    one, many, idle = r["one_printer"], r["many"], r["idle"]
    goals: dict[str, bool] = {
        "idle_rss": r["ours_idle_mib"] <= 1.2 * r["floor_mib"],
        "after_jobs": one["after_mib"] - one["before_mib"] <= 0.1,
        "many_after_jobs": many["after_mib"] - many["idle_mib"] <= 2.0,
        "no_wakeups": idle["wakeups"]["absent"] == 0 and idle["wakeups"]["present"] == 0,
        "textfile": idle["textfile_writes"] == 0,
        "cold_start": r["start"]["ours_ms"] <= 60.0,
        "notify": r["notify"]["ratio"] <= 1.2,
        "flash": not r["state_written_by_jobs"] and idle["state_dirs_changed"] == 0,
    }
    return {**r, "goals": goals, "met": all(goals.values())}


def render_router(result: dict[str, Any], yes: Callable[[bool], str] = str) -> list[str]:
    events, starts, goals = result["events"], result["starts"], result["goals"]
    floor, p910nd_mib = result["floor_mib"], result["p910nd_mib"]
    one, many, idle, start = (result["one_printer"], result["many"], result["idle"],
                              result["start"])
    p910nd_text = f"{p910nd_mib:.1f} MiB" if p910nd_mib is not None else "not measured"
    wake = idle["wakeups"]
    return [
        "router budget (OpenWrt): the package's UCI file and -OO byte-code, against p910nd and "
        "the floor (python + asyncio, ssl kept out), one run",
        f"  plug: {events['plug']} events, {starts['plug']} supervisorctl notify started; "
        f"unplug: {events['unplug']} events, {starts['unplug']} started",
        f"  idle RSS: floor {floor:.1f} MiB, p910nd {p910nd_text}, ours "
        f"{result['ours_idle_mib']:.1f} MiB ({result['ours_idle_mib'] / floor:.2f}x the floor, "
        "target <= 1.2x: "
        f"{yes(goals['idle_rss'])}); with a printer ready {result['ours_ready_mib']:.1f} MiB "
        f"({result['ours_ready_mib'] / floor:.2f}x)",
        f"  after jobs: one printer {one['before_mib']:.2f} -> {one['after_mib']:.2f} MiB after "
        f"six 3 MiB jobs (target within 0.1: {yes(goals['after_jobs'])}); {MANY} printers "
        f"{many['idle_mib']:.1f} -> {many['after_mib']:.1f} MiB after one job each (target "
        f"within 2: {yes(goals['many_after_jobs'])})",
        f"  idle {idle['seconds']:g} s, a printer ready: wake-ups ours (no responder) "
        f"{wake['absent']}, ours (umdns, metrics textfile) {wake['present']}, p910nd "
        f"{wake.get('p910nd', 'not measured')} (target 0: {yes(goals['no_wakeups'])}); "
        f"textfile rewritten {idle['textfile_writes']} times (target 0: "
        f"{yes(goals['textfile'])})",
        f"  flash: the state directory written by six jobs: "
        f"{'yes' if result['state_written_by_jobs'] else 'no'}, over the idle window: "
        f"{idle['state_dirs_changed']} changed (target none: {yes(goals['flash'])})",
        f"  cold start to READY: ours {start['ours_ms']:.0f} ms (target <= 60: "
        f"{yes(goals['cold_start'])}); the floor (python, asyncio imported, exit) "
        f"{start['floor_ms']:.0f} ms; p910nd to listening "
        + (f"{start['p910nd_ms']:.1f} ms" if start["p910nd_ms"] is not None else "not measured"),
        f"  notify from the package's byte-code: {result['notify']['notify_ms']:.1f} ms against "
        f"python -c pass {result['notify']['pass_ms']:.1f} ms: {result['notify']['ratio']:.2f}x "
        f"(target <= 1.2x: {yes(goals['notify'])})",
    ]
