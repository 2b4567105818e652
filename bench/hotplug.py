"""Ours driven through its hotplug path, on a fake device tree: plug → port accepting latency."""

from __future__ import annotations

import contextlib
import datetime
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from procs import (
    HOST,
    POLL_S,
    READY_TIMEOUT_S,
    SERVICE_PYTHON,
    START_TIMEOUT_S,
    BenchError,
    Processes,
    free_port,
    is_listening,
    wait_until,
)

from supervisor.ctl.client import ServiceUnreachable, request
from supervisor.lab.virtual import FakeSysfs, VirtualUsbPrinter
from supervisor.protocol import HOTPLUG_KEYS, VERSION

# -- ours driven by hotplug events: a fake device tree, events through the control socket -------
HOTPLUG_PRINTER: Final = "bench-usb"
HOTPLUG_MATCH: Final = "3f0/4117/*"  # what VirtualUsbPrinter plugs by default (a LaserJet 1018)


class LogTail:
    """The service's JSON log, read incrementally; `records` holds every record read so far."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.records: list[dict[str, Any]] = []
        self._offset = 0
        self._partial = b""

    def read(self) -> list[dict[str, Any]]:
        try:
            with open(self.path, "rb") as log:
                log.seek(self._offset)
                data = log.read()
        except FileNotFoundError:
            return self.records
        self._offset += len(data)
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()  # a line still being written
        self.records += [json.loads(line) for line in lines if line.startswith(b"{")]
        return self.records

    def find(self, event: str, start: int = 0,
             fields: Mapping[str, object] | None = None) -> dict[str, Any] | None:
        """The first record from index `start` on with that event name and those fields."""
        wanted = fields or {}
        return next((r for r in self.records[start:] if r.get("event") == event
                     and all(r.get(k) == v for k, v in wanted.items())), None)


class HotplugService:
    """Ours with event_source "none" on a fake sysfs and devfs: it learns of a plug only from
    the events sent to its control socket, as an OpenWrt hotplug shim's `supervisorctl notify`
    sends them."""

    def __init__(self, proc: subprocess.Popen[bytes], root: Path, port: int) -> None:
        self.proc = proc
        self.root = root
        self.port = port
        self.socket = root / "control.sock"
        self.log = LogTail(root / "events.jsonl")

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            tail = (self.root / "ours.stderr").read_text(errors="replace")[-2000:]
            raise BenchError(f"ours exited with status {self.proc.returncode}:\n{tail}")

    def request(self, message: dict[str, object]) -> dict[str, object]:
        """One control-socket request, as supervisorctl makes it (supervisor.ctl.client)."""
        try:
            answer = request(str(self.socket), message)
        except ServiceUnreachable as exc:
            raise BenchError(f"ours: {exc}") from None
        if answer.get("ok") is not True:
            raise BenchError(f"ours rejected {message}: {answer.get('error')}")
        return answer

    def notify(self, env: Mapping[str, str]) -> None:
        """One hotplug environment, filtered and sent exactly as `supervisorctl notify` does."""
        event = {key: env[key] for key in HOTPLUG_KEYS if key in env}
        self.request({"v": VERSION, "cmd": "notify", "event": event})

    def state(self) -> str:
        printers = self.request({"v": VERSION, "cmd": "status"})["printers"]
        assert isinstance(printers, list)
        return str(next(p["state"] for p in printers if p["name"] == HOTPLUG_PRINTER))

    def wait_for(self, event: str, start: int = 0, fields: Mapping[str, object] | None = None,
                 *, timeout_s: float = READY_TIMEOUT_S) -> dict[str, Any]:
        """The first record of `event` (with `fields`) from index `start` on, once logged."""
        def logged() -> bool:
            self.check_alive()
            self.log.read()
            return self.log.find(event, start, fields) is not None

        wait_until(logged, timeout_s, f"ours to log {event} {fields or ''}", poll_s=POLL_S / 10)
        found = self.log.find(event, start, fields)
        assert found is not None
        return found


def hotplug_config(root: Path, port: int) -> str:
    def q(path: Path) -> str:
        return json.dumps(str(path))

    return "\n".join([
        "[daemon]",
        f"control_socket = {q(root / 'control.sock')}",
        f"log_file = {q(root / 'events.jsonl')}",
        "log_max_bytes = 0",  # no rotation under the LogTail
        f"state_dir = {q(root / 'state')}",
        'event_source = "none"',
        f"sysfs = {q(root / 'sys')}",
        f"devfs = {q(root / 'dev')}",
        f"firmware_dirs = [{q(root / 'firmware')}]",
        f"bind = [{json.dumps(HOST)}]",
        "[[printer]]",
        f'name = "{HOTPLUG_PRINTER}"',
        f'match = "{HOTPLUG_MATCH}"',
        'firmware = "none"',
        f"port = {port}",
        "bidirectional = false",  # the plug path does not depend on it
        "",
    ])


def start_hotplug_service(procs: Processes, root: Path) -> HotplugService:
    """Ours on an empty fake device tree under `root`, once it has logged daemon_started."""
    (root / "dev").mkdir()
    config = root / "config.toml"
    port = free_port()
    config.write_text(hotplug_config(root, port))
    with open(root / "ours.stderr", "wb") as stderr:
        proc = procs.spawn([str(SERVICE_PYTHON), "-m", "supervisor", "run", "--config",
                            str(config)], stderr=stderr)
    service = HotplugService(proc, root, port)
    service.wait_for("daemon_started", timeout_s=START_TIMEOUT_S)
    return service


# -- plug → port accepting -------------------------------------------------------------------
PLUG_TIMEOUT_S: Final = 10.0  # from the first plug event until the port accepts
UNPLUG_TIMEOUT_S: Final = 10.0
CONNECT_TIMEOUT_S: Final = 1.0  # one loopback connect
CONNECT_RETRY_S: Final = 0.001  # after ECONNREFUSED
QUIET_S: Final = 0.05  # after an unplug: a rescan still pending runs before the next plug


@dataclass(frozen=True)
class Plug:
    """One plug. Times in ms after the first plug event was sent: client-side ones by
    perf_counter, the service's from its log timestamps (the same machine's wall clock)."""

    run: int
    events_answered_ms: float  # the service answered the last plug event
    received_ms: float  # the service logged hotplug_received for the first one
    ready_ms: float  # ...state_changed absent → ready
    listening_ms: float  # ...listener_started
    accepted_ms: float  # a connect to the port succeeded: the measured latency
    connects: int  # connect attempts, the refused ones and the last
    closed_ms: float  # unplug: from its first event until the port stopped listening


def connect_once(port: int) -> float | None:
    """Connect and close at once (a probe: no job): perf_counter when it connected, None if
    refused."""
    with socket.socket() as sock:
        sock.settimeout(CONNECT_TIMEOUT_S)
        try:
            sock.connect((HOST, port))
        except ConnectionRefusedError:
            return None
        except TimeoutError:
            raise BenchError(f"a connect to port {port} hung for {CONNECT_TIMEOUT_S:g} s") from None
        return time.perf_counter()


def connect_when_accepting(service: HotplugService, deadline: float) -> tuple[float, int]:
    """Try to connect every CONNECT_RETRY_S until it works: when it did, and the attempts."""
    attempts = 0
    while True:
        attempts += 1
        if (connected := connect_once(service.port)) is not None:
            return connected, attempts
        if time.perf_counter() > deadline:
            raise BenchError(f"port {service.port} did not accept within {PLUG_TIMEOUT_S:g} s "
                             "of the first plug event")
        service.check_alive()
        time.sleep(CONNECT_RETRY_S)


def _logged_ms(record: dict[str, Any], wall_start: float) -> float:
    return (datetime.datetime.fromisoformat(record["timestamp"]).timestamp() - wall_start) * 1000


def plug_once(service: HotplugService, usb: VirtualUsbPrinter, run: int) -> Plug:
    """Plug, send the events, connect as soon as the port accepts; unplug and wait it out."""
    mark = len(service.log.read())
    events = usb.plug()  # the node and the sysfs entries: the service does not look yet
    wall_start, start = time.time(), time.perf_counter()
    for env in events:
        service.notify(env)
    answered = time.perf_counter()
    accepted, connects = connect_when_accepting(service, start + PLUG_TIMEOUT_S)
    received = service.wait_for("hotplug_received", mark)
    ready = service.wait_for("state_changed", mark, {"from": "absent", "to": "ready"})
    listening = service.wait_for("listener_started", mark)
    if _logged_ms(ready, wall_start) < _logged_ms(received, wall_start):
        raise BenchError(f"plug {run}: ours was ready before it received the first event: "
                         "a rescan from the previous unplug saw this plug")
    return Plug(run, (answered - start) * 1000, _logged_ms(received, wall_start),
                _logged_ms(ready, wall_start), _logged_ms(listening, wall_start),
                (accepted - start) * 1000, connects, unplug_once(service, usb))


def unplug_once(service: HotplugService, usb: VirtualUsbPrinter) -> float:
    """Unplug and send its events; ms until the port stopped listening. Returns once the
    printer is absent, the port refuses, and a rescan still pending has had time to run."""
    events = usb.unplug()
    start = time.perf_counter()
    for env in events:
        service.notify(env)

    def closed() -> bool:
        service.check_alive()
        return not is_listening(service.port)  # from /proc: a connect would be a job

    wait_until(closed, UNPLUG_TIMEOUT_S, f"port {service.port} to close after the unplug",
               poll_s=CONNECT_RETRY_S)
    closed_ms = (time.perf_counter() - start) * 1000
    if connect_once(service.port) is not None:
        raise BenchError(f"port {service.port} still accepts after the unplug")
    wait_until(lambda: service.state() == "absent", UNPLUG_TIMEOUT_S,
               f"{HOTPLUG_PRINTER} to be absent after the unplug")
    time.sleep(QUIET_S)
    return closed_ms


@dataclass
class PlugResult:
    plugs: list[Plug]
    ours_exit_status: int  # on SIGTERM after the plugs; 0 expected


def bench_plug_latency(plugs: int) -> PlugResult:
    """Ours with one matching printer; one warm-up plug, then `plugs` measured ones."""
    procs = Processes()
    with tempfile.TemporaryDirectory(prefix="bench-plug-") as tmp_s, \
            contextlib.ExitStack() as stack:
        stack.callback(procs.stop_all)  # before the directory goes
        root = Path(tmp_s)
        usb = VirtualUsbPrinter(FakeSysfs(root / "sys"), root / "dev")
        stack.callback(usb.close)
        service = start_hotplug_service(procs, root)
        print(f"plug latency: ours on port {service.port}", file=sys.stderr)
        plug_once(service, usb, 0)
        measured = []
        for run in range(1, plugs + 1):
            measured.append(plug_once(service, usb, run))
            if run % 10 == 0 or run == plugs:
                median = statistics.median(p.accepted_ms for p in measured)
                print(f"  plug {run}/{plugs}: median so far {median:.1f} ms", file=sys.stderr,
                      flush=True)
        status = procs.stop(service.proc)
    return PlugResult(measured, status)
