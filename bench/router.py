"""A router's budget: interpreter starts per plug and unplug, and idle RSS with the OpenWrt
configuration the package ships (UCI), measured here.

Interpreter starts: each event of the fixture (an HP LaserJet 1018 plugged and unplugged, as
procd dispatches it: tests/fixtures/openwrt_hplj1018.json) that reaches one of our shims in
rules/hotplug.d/ and passes its filter starts `supervisorctl notify`, one Python interpreter.
The shim itself is run (sh, a recording stand-in for supervisorctl) to count them.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Final

from procs import ROOT, SERVICE_PYTHON, BenchError, status_kb, wait_until

FIXTURE: Final = ROOT / "tests" / "fixtures" / "openwrt_hplj1018.json"
UCI_CONFIG: Final = ROOT / "units" / "openwrt" / "printer-supervisor.config"
RECORDER: Final = '#!/bin/sh\necho "$ACTION $SUBSYSTEM ${DEVTYPE:-} ${DEVNAME:-}" >> "$0.calls"\n'
RSS_SAMPLES: Final = 5


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


def idle_rss_kb(tmp: Path) -> int:
    """`supervisorctl run` with the package's UCI file (its paths moved under `tmp`)."""
    text = UCI_CONFIG.read_text()
    for old, new in (("/var/run/printer-supervisor", tmp / "run"),
                     ("/var/log/printer-supervisor", tmp / "log"),
                     ("/etc/printer-supervisor/state", tmp / "state")):
        text = text.replace(old, str(new))
    config = tmp / "printer-supervisor"
    config.write_text(text)
    proc = subprocess.Popen([str(SERVICE_PYTHON), "-m", "supervisor", "run", "--config",
                             str(config)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={**os.environ, "PATH": "/usr/bin:/bin"})
    try:
        wait_until(lambda: (tmp / "log" / "events.jsonl").exists() and
                   "daemon_started" in (tmp / "log" / "events.jsonl").read_text(), 15,
                   "ours to start with the OpenWrt configuration")
        time.sleep(1.0)
        samples = []
        for _ in range(RSS_SAMPLES):
            samples.append(status_kb(proc.pid, "VmRSS"))
            time.sleep(0.2)
        return int(statistics.median(samples))
    finally:
        proc.terminate()
        if proc.wait(15) != 0:
            raise BenchError(f"ours exited {proc.returncode} on SIGTERM")


def bench_router() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-router-") as tmp_s:
        tmp = Path(tmp_s)
        starts = interpreter_starts(tmp / "shims")
        (tmp / "service").mkdir()
        rss = idle_rss_kb(tmp / "service")
    return {**starts, "idle_rss_kb": rss}


def render_router(result: dict[str, Any]) -> list[str]:
    events, starts = result["events"], result["starts"]
    return [
        "router budget (OpenWrt): interpreter starts per plug and unplug of the fixture, and "
        "idle RSS with the package's UCI configuration",
        f"  plug: {events['plug']} events, {starts['plug']} supervisorctl notify started; "
        f"unplug: {events['unplug']} events, {starts['unplug']} started",
        f"  idle RSS of ours (event_source none, mdns auto without a responder, nothing "
        f"plugged): {result['idle_rss_kb'] / 1024:.1f} MB",
    ]
