"""Discovery: what announcing costs (idle RSS, import) and how fast a plug is seen elsewhere.

In the private two-host network of supervisor.lab.netlab (root; avahi-daemon, dbus): ours runs on
`srv` and announces through srv's avahi; a continuous `avahi-browse -rpk` on `cli` timestamps
each record as it is resolved ("=") and withdrawn ("-"). Plugs and unplugs reach ours as the
hotplug shims send them (the control socket). Idle RSS is ours with mdns = "off" against ours
with mdns = "avahi" and the printer announced, on the same machine, in the same run.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from hotplug import HOTPLUG_MATCH, HOTPLUG_PRINTER, LogTail
from procs import SERVICE_PYTHON, BenchError, free_port, status_kb, wait_until

from supervisor.ctl.client import request
from supervisor.lab.netlab import SERVICE, Lab, missing_tools, unescape
from supervisor.lab.virtual import FakeSysfs, VirtualUsbPrinter
from supervisor.protocol import HOTPLUG_KEYS, VERSION

NAME: Final = "Bench Discovery"
RSS_BUDGET_KB: Final = 3 * 1024  # the budget for announcing
SEEN_TARGET_MS: Final = 2000.0  # ready → resolved on the other host (avahi probes ~1 s)
GONE_TARGET_MS: Final = 1500.0  # unplug → withdrawn on the other host (goodbye: TTL 1 s)
TIMEOUT_S: Final = 15.0
RSS_SETTLE_S: Final = 2.0
IMPORT_RUNS: Final = 7
BROWSE_SETTLE_S: Final = 1.5


class Browser:
    """`avahi-browse -rpk` on cli, each line stamped with time.time() as it arrives."""

    def __init__(self, lab: Lab) -> None:
        assert lab.cli is not None
        self.proc = subprocess.Popen(lab.cli.argv(["avahi-browse", "-rpk", SERVICE]),
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.lines: list[tuple[float, list[str]]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self.lines.append((time.time(), raw.decode(errors="replace").rstrip("\n").split(";")))

    def first(self, kind: str, after: float) -> float | None:
        """When the first `kind` line (= resolved, - removed) for NAME arrived after `after`."""
        return next((t for t, f in list(self.lines) if t >= after and f[0] == kind
                     and len(f) > 3 and unescape(f[3]) == NAME), None)

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(5)


def config(root: Path, mdns: str) -> Path:
    def q(value: object) -> str:
        return json.dumps(str(value))

    path = root / "config.toml"
    path.write_text("\n".join([
        "[daemon]", f"control_socket = {q(root / 'control.sock')}",
        f"log_file = {q(root / 'events.jsonl')}", "log_max_bytes = 0",
        f"state_dir = {q(root / 'state')}", 'event_source = "none"',
        f"sysfs = {q(root / 'sys')}", f"devfs = {q(root / 'dev')}", 'bind = ["::"]',
        f"mdns = {q(mdns)}", "[[printer]]", f"name = {q(HOTPLUG_PRINTER)}",
        f"match = {q(HOTPLUG_MATCH)}", 'firmware = "none"', f"port = {free_port()}",
        f"mdns_name = {q(NAME)}", ""]))
    return path


class Ours:
    """Ours in srv, with one virtual USB printer it hears of through its control socket."""

    def __init__(self, lab: Lab, root: Path, mdns: str) -> None:
        assert lab.srv is not None
        root.mkdir()
        self.root = root
        self.usb = VirtualUsbPrinter(FakeSysfs(root / "sys"), root / "dev", serial="BENCH1")
        self.log = LogTail(root / "events.jsonl")
        with open(root / "ours.stderr", "wb") as stderr:
            self.proc = subprocess.Popen(lab.srv.argv(
                [str(SERVICE_PYTHON), "-m", "supervisor", "run", "--config",
                 str(config(root, mdns))]), stdin=subprocess.DEVNULL, stdout=stderr,
                stderr=stderr)
        self.wait("daemon_started")

    def wait(self, event: str, start: int = 0) -> dict[str, Any]:
        def logged() -> bool:
            if self.proc.poll() is not None:
                tail = (self.root / "ours.stderr").read_text(errors="replace")[-1500:]
                raise BenchError(f"ours exited with status {self.proc.returncode}:\n{tail}")
            self.log.read()
            return self.log.find(event, start) is not None

        wait_until(logged, TIMEOUT_S, f"ours to log {event}")
        found = self.log.find(event, start)
        assert found is not None
        return found

    def send(self, events: list[dict[str, str]]) -> None:
        for env in events:
            request(str(self.root / "control.sock"), {"v": VERSION, "cmd": "notify", "event": {
                k: env[k] for k in HOTPLUG_KEYS if k in env}})

    def rss_kb(self) -> int:
        time.sleep(RSS_SETTLE_S)
        samples = []
        for _ in range(5):
            samples.append(status_kb(self.proc.pid, "VmRSS"))
            time.sleep(0.2)
        return int(statistics.median(samples))

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(TIMEOUT_S)
        self.usb.close()


def _stamp(record: dict[str, Any]) -> float:
    from datetime import datetime  # noqa: PLC0415

    return datetime.fromisoformat(record["timestamp"]).timestamp()


def measure_plugs(lab: Lab, ours: Ours, rounds: int) -> list[dict[str, float]]:
    browser = Browser(lab)
    time.sleep(BROWSE_SETTLE_S)  # what the other host still had cached is listed before t0
    plugs = []
    try:
        for _ in range(rounds):
            start = len(ours.log.read())
            t0 = time.time()
            ours.send(ours.usb.plug())
            ready = _stamp(ours.wait("listener_started", start))
            announced = _stamp(ours.wait("mdns_announced", start))
            wait_until(lambda t0=t0: browser.first("=", t0) is not None, TIMEOUT_S,
                       "the other host to resolve the printer")
            seen = browser.first("=", t0)
            start = len(ours.log.read())
            t1 = time.time()
            ours.send(ours.usb.unplug())
            withdrawn = _stamp(ours.wait("mdns_withdrawn", start))
            wait_until(lambda t1=t1: browser.first("-", t1) is not None, TIMEOUT_S,
                       "the other host to drop the printer")
            gone = browser.first("-", t1)
            assert seen is not None and gone is not None
            plugs.append({"ready_ms": (ready - t0) * 1000, "announced_ms": (announced - t0) * 1000,
                          "seen_ms": (seen - t0) * 1000, "withdrawn_ms": (withdrawn - t1) * 1000,
                          "gone_ms": (gone - t1) * 1000})
            time.sleep(0.2)  # the other host's cache settles before the next plug
    finally:
        browser.close()
    return plugs


def idle_rss(lab: Lab, root: Path) -> dict[str, int]:
    """Ours with the printer ready: announcing off, then on (announced through avahi)."""
    result = {}
    for mdns in ("off", "avahi"):
        ours = Ours(lab, root / f"rss-{mdns}", mdns)
        try:
            ours.send(ours.usb.plug())
            ours.wait("mdns_announced" if mdns == "avahi" else "listener_started")
            result[mdns] = ours.rss_kb()
        finally:
            ours.stop()
    return result


def import_ms() -> dict[str, float]:
    """The marginal import of the avahi adapter (jeepney) after the service's own modules."""
    code = ("import time, supervisor.app, supervisor.ctl.cli; t = time.perf_counter(); "
            "import supervisor.publish.avahi; print((time.perf_counter() - t) * 1000)")
    runs = [float(subprocess.check_output([str(SERVICE_PYTHON), "-c", code], text=True))
            for _ in range(IMPORT_RUNS)]
    return {"avahi_adapter_ms": statistics.median(runs)}


def spread(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {"median": statistics.median(ordered),
            "p90": ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))],
            "low": ordered[0], "high": ordered[-1]}


def bench_discovery(rounds: int) -> dict[str, Any]:
    """The discovery section's measurements, or why it was skipped."""
    if os.geteuid() != 0:
        return {"skipped": "needs root (a private network of namespaces)"}
    if missing := missing_tools(cups=False):
        return {"skipped": f"{' '.join(missing)} missing: apt-get install avahi-daemon "
                           "avahi-utils dbus"}
    root = Path(tempfile.mkdtemp(prefix="bench-discovery-"))
    lab = Lab(root / "lab")
    try:
        lab.up(cups=False)
        rss = idle_rss(lab, root)
        ours = Ours(lab, root / "plugs", "avahi")
        try:
            plugs = measure_plugs(lab, ours, rounds)
        finally:
            ours.stop()
    finally:
        lab.down()
        subprocess.run(["rm", "-rf", str(root)], check=False)
    phases = {key: spread([p[key] for p in plugs]) for key in plugs[0]}
    seen_after_ready = spread([p["seen_ms"] - p["ready_ms"] for p in plugs])
    delta = rss["avahi"] - rss["off"]
    met = (delta <= RSS_BUDGET_KB and seen_after_ready["median"] <= SEEN_TARGET_MS
           and phases["gone_ms"]["median"] <= GONE_TARGET_MS)
    return {"rounds": rounds, "rss_kb": rss, "rss_delta_kb": delta, "imports": import_ms(),
            "phases_ms": phases, "seen_after_ready_ms": seen_after_ready, "plugs": plugs,
            "targets": {"rss_delta_kb": RSS_BUDGET_KB, "seen_after_ready_ms": SEEN_TARGET_MS,
                        "gone_ms": GONE_TARGET_MS}, "met": met}


PHASES: Final[tuple[tuple[str, str], ...]] = (
    ("ready_ms", "plug -> port listening (ours)"),
    ("announced_ms", "plug -> mdns_announced (ours, ESTABLISHED)"),
    ("seen_ms", "plug -> resolved on the other host"),
    ("withdrawn_ms", "unplug -> mdns_withdrawn (ours)"),
    ("gone_ms", "unplug -> removed on the other host"),
)


def render_discovery(result: dict[str, Any], yes: Callable[[bool], str]) -> list[str]:
    if "skipped" in result:
        return [f"discovery: skipped: {result['skipped']}"]
    width = 46
    rss, delta = result["rss_kb"], result["rss_delta_kb"]
    lines = [f"discovery (mDNS/DNS-SD through avahi, private two-host network): "
             f"{result['rounds']} plugs; ms",
             "", f"{'':{width}} {'median':>7} {'p90':>7} {'min':>7} {'max':>7}"]
    for key, label in PHASES:
        s = result["phases_ms"][key]
        lines.append(f"{label:{width}} " + " ".join(f"{s[k]:7.1f}" for k in
                                                    ("median", "p90", "low", "high")))
    seen = result["seen_after_ready_ms"]["median"]
    gone = result["phases_ms"]["gone_ms"]["median"]
    lines += [f"ready -> seen on the other host, median {seen:.0f} ms, target "
              f"<= {SEEN_TARGET_MS:.0f} ms: {yes(seen <= SEEN_TARGET_MS)}",
              f"unplug -> gone on the other host, median {gone:.0f} ms, target "
              f"<= {GONE_TARGET_MS:.0f} ms: {yes(gone <= GONE_TARGET_MS)}",
              f"idle RSS, printer ready: mdns off {rss['off'] / 1024:.1f} MB, announced through "
              f"avahi {rss['avahi'] / 1024:.1f} MB: +{delta / 1024:.2f} MB, budget "
              f"+{RSS_BUDGET_KB / 1024:.0f} MB: {yes(delta <= RSS_BUDGET_KB)}",
              f"import of the avahi adapter (jeepney) after the service's modules: "
              f"{result['imports']['avahi_adapter_ms']:.1f} ms (median of {IMPORT_RUNS})"]
    return lines
