"""An idle service costs a router nothing: no wake-ups, no writes to flash.

Idle is printers ready and no job, most of a print server's day. The event loop then holds no
timer due within the hour (the rescan's safety net, the textfile's heartbeat and the search for a
responder that cannot say when it comes are hourly), and the process is not woken at all: counted
here over a few seconds, by the bench over ten minutes. The state directory, on flash on a router,
is written only when a printer's remembered port is new.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from harness import (
    ServiceThread,
    free_base_port,
    free_port,
    request,
    send_job,
    service_process,
    wait_until,
)

from supervisor.lab.virtual import VirtualUsbPrinter

StartService = Callable[..., ServiceThread]
HOUR_S = 3600.0
QUIET_S = 1.0  # the process has settled once it was not woken for this long...
WINDOW_S = 5.0  # ...and then must not be woken for this long


@pytest.fixture
def no_responder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`mdns = "auto"` finds nothing: no system bus, no ubus (a router without umdns)."""
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", f"unix:path={tmp_path}/no-bus")
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))


@pytest.mark.parametrize("extras", [{}, {"metrics_file": "metrics.prom"}],
                         ids=["plain", "metrics_file"])
def test_no_timer_is_due_within_the_hour_while_idle(
        start_service: StartService, make_usb: Callable[..., VirtualUsbPrinter],
        no_responder: None, tmp_path: Path, extras: dict[str, str]) -> None:
    """The rescan (every 5 minutes), the search for a responder (every minute), the textfile
    (every 30 s) and, after a client that waited, the idle sweep (its idle_timeout later) were
    the wake-ups of an idle service; an hour is the shortest now."""
    daemon = {key: str(tmp_path / value) for key, value in extras.items()}
    make_usb(port_path="2-1", lp="lp0", serial="IDLE1").plug()
    make_usb(port_path="2-2", lp="lp1", serial="IDLE2").plug()
    # 0.0.0.0 clashes with any local port, a client's included: one below the ephemeral range.
    port = free_base_port(1)
    started = time.monotonic()
    service = start_service([{"name": "one", "serial": "IDLE1", "firmware": "none",
                              "port": port},
                             {"name": "two", "serial": "IDLE2", "firmware": "none"}],
                            mdns="auto", bind=["0.0.0.0"], **daemon)
    service.wait_state("one", "ready")
    service.wait_state("two", "ready")
    service.log.wait_for("listener_started", port=port)  # ready comes first, then the bind
    service.log.wait_for("mdns_unavailable")
    with socket.create_connection(("127.0.0.1", port)) as client:  # waits before it sends:
        wait_until(lambda: service.status("one")["queued"] == 1,  # the idle sweep's deadline
                   what="the client waiting")
        client.sendall(b"a job, then idle again")
        client.shutdown(socket.SHUT_WR)
        assert client.recv(1) == b""
    service.log.wait_for("job_finished")

    def due_s() -> list[float]:
        return [due - started for due in service.timers()]

    wait_until(lambda: all(due >= HOUR_S for due in due_s()),
               what="every timer an hour away")


def _wakeups(pid: int) -> int:
    """Context switches of every thread of `pid` so far: each is a wake-up (or a preemption)."""
    total = 0
    for status in Path(f"/proc/{pid}/task").glob("*/status"):
        try:
            text = status.read_text()
        except FileNotFoundError:  # a thread that ended meanwhile
            continue
        total += sum(int(line.split()[1]) for line in text.splitlines()
                     if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")))
    return total


def test_an_idle_service_process_is_never_woken(
        make_usb: Callable[..., VirtualUsbPrinter], no_responder: None,
        tmp_path: Path) -> None:
    """`supervisorctl run` with a printer ready, no responder and the textfile on: once it has
    settled after READY, a few seconds without a single context switch (the responder's
    search alone woke it after 2, 6 and 14 s, then once a minute; `make bench` counts ten
    minutes)."""
    usb = make_usb(port_path="2-1", lp="lp0", serial="SLEEPY1")
    usb.plug()
    socket_path = str(tmp_path / "control.sock")
    with service_process(tmp_path, [{"name": "sleepy", "serial": "SLEEPY1",
                                     "firmware": "none"}],
                         mdns="auto", bind=["0.0.0.0"],
                         metrics_file=str(tmp_path / "metrics.prom")) as proc:
        wait_until(lambda: Path(socket_path).exists(), what="the control socket")
        wait_until(lambda: request(socket_path, {"v": 1, "cmd": "status"})["printers"][0][
            "state"] == "ready", what="the printer ready")
        wait_until(lambda: "mdns_unavailable" in (tmp_path / "events.jsonl").read_text(),
                   what="the responder looked for")
        seen = [_wakeups(proc.pid), time.monotonic()]

        def settled() -> bool:
            now = _wakeups(proc.pid)
            if now != seen[0]:
                seen[:] = [now, time.monotonic()]
            return time.monotonic() - seen[1] >= QUIET_S

        wait_until(settled, what="the service settled")
        before = _wakeups(proc.pid)
        deadline = time.monotonic() + WINDOW_S
        while time.monotonic() < deadline:
            time.sleep(0.1)  # the service is observed, not waited on
        assert _wakeups(proc.pid) - before == 0
        assert proc.poll() is None


def _files(directory: Path) -> dict[str, tuple[int, int, int]]:
    """Each file's inode, size and mtime: any write or replacement changes them."""
    return {path.name: (path.stat().st_ino, path.stat().st_size, path.stat().st_mtime_ns)
            for path in sorted(directory.iterdir())}


def test_the_state_dir_is_written_only_for_a_new_printer(
        start_service: StartService, make_usb: Callable[..., VirtualUsbPrinter],
        tmp_path: Path) -> None:
    """Jobs, reloads (with and without a change), a replug of a known printer, rescans and an
    idle spell leave the state directory as it was; a printer seen for the first time is written.
    (The log file is no exception on a router: OpenWrt's /var/log is RAM.)"""
    state = tmp_path / "state"
    known = make_usb(port_path="2-1", lp="lp0", serial="KNOWN1")
    known.plug()
    port = free_port()
    service = start_service([{"name": "known", "serial": "KNOWN1", "firmware": "none",
                              "port": port}], auto=True)
    service.wait_state("known", "ready")
    service.log.wait_for("listener_started")  # ready comes first, then the bind
    assert "KNOWN1" in (state / "ports.json").read_text()
    before = _files(state)

    for n in range(3):
        assert send_job(port, b"job %d" % n) == b""
        service.log.wait_for("job_finished", count=n + 1)
    for env in known.unplug():
        service.notify(env)
    service.wait_state("known", "absent")
    for env in known.plug():
        service.notify(env)
    service.wait_state("known", "ready")
    text = service.config.read_text()
    for edited in (text, text + 'location = "hall"\n', text + "idle_timeout = 30\n"):
        service.config.write_text(edited)
        reloads = len(service.log.events("config_reloaded", ok=True))
        service.reload()
        service.log.wait_for("config_reloaded", count=reloads + 1, ok=True)
    service.wait_state("known", "ready")
    owner = service.service
    assert owner is not None
    for _ in range(2):
        reconciles = owner.reconciles
        service.rescan()
        wait_until(lambda: owner.reconciles > reconciles,  # noqa: B023
                   what="a rescan")
    assert _files(state) == before

    fresh = make_usb(port_path="2-2", lp="lp1", serial="FRESH2")
    for env in fresh.plug():
        service.notify(env)
    wait_until(lambda: "FRESH2" in (state / "ports.json").read_text(),
               what="the new printer remembered")
    assert [path.name for path in state.iterdir()] == ["ports.json"]
