"""systemd integration without systemd: a real NOTIFY_SOCKET, signals, and reload by SIGHUP."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from harness import Log, ServiceThread, free_port, send_job, wait_until, write_config

from supervisor.lab.virtual import FakeSysfs, VirtualPrinter, VirtualUsbPrinter
from supervisor.observe import log
from supervisor.observe.systemd import Notifier


class NotifySocket:
    """The datagram socket systemd listens on; `messages` in arrival order."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.05)
        self.messages: list[str] = []

    def poll(self) -> list[str]:
        while True:
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except TimeoutError:
                return self.messages

    def wait_for(self, prefix: str) -> str:
        return str(wait_until(lambda: next((m for m in self.poll() if m.startswith(prefix)),
                                           None), what=f"{prefix} on NOTIFY_SOCKET"))


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[NotifySocket]:
    sock = NotifySocket(tmp_path / "notify.sock")
    yield sock
    sock.sock.close()


def run_service(tmp_path: Path, config: Path, **env: str) -> subprocess.Popen[bytes]:
    stderr = (tmp_path / "stderr.txt").open("wb")
    return subprocess.Popen([sys.executable, "-m", "supervisor", "run", "--config", str(config)],
                            env={**os.environ, **env}, stdin=subprocess.DEVNULL, stdout=stderr,
                            stderr=stderr)


@pytest.fixture
def config(tmp_path: Path, printer: VirtualPrinter) -> Path:
    return write_config(tmp_path / "config.toml", {
        "control_socket": str(tmp_path / "control.sock"),
        "log_file": str(tmp_path / "events.jsonl"), "state_dir": str(tmp_path / "state"),
        "event_source": "none", "sysfs": str(tmp_path / "sys"), "devfs": str(tmp_path / "dev"),
        "bind": ["127.0.0.1"]}, [{"name": "lp", "device": str(printer.path), "port": free_port()}])


def test_ready_status_watchdog_stopping_in_order(tmp_path: Path, config: Path,
                                                 notify_socket: NotifySocket) -> None:
    proc = run_service(tmp_path, config, NOTIFY_SOCKET=str(notify_socket.path),
                       WATCHDOG_USEC="200000")
    try:
        notify_socket.wait_for("READY=1")
        # READY only once the control socket accepts: it must accept now.
        with socket.socket(socket.AF_UNIX) as probe:
            probe.connect(str(tmp_path / "control.sock"))
        status = notify_socket.wait_for("STATUS=")
        assert status == f"STATUS=lp ready :{_port(config)}"
        wait_until(lambda: notify_socket.poll().count("WATCHDOG=1") >= 2, what="two watchdogs")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
        notify_socket.wait_for("STOPPING=1")
    finally:
        proc.kill()
    messages = notify_socket.poll()
    assert messages.index("READY=1") < messages.index("STOPPING=1")
    assert messages[-1] == "STOPPING=1"


def test_no_notify_socket_no_messages_and_watchdog_for_another_pid_is_ignored(
        notify_socket: NotifySocket, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    quiet = Notifier()
    quiet.ready()
    quiet.status("nobody listens")
    assert quiet.enabled is False and notify_socket.poll() == []
    monkeypatch.setenv("NOTIFY_SOCKET", str(notify_socket.path))
    env = {"NOTIFY_SOCKET": str(notify_socket.path), "WATCHDOG_USEC": "1000000"}
    assert Notifier(env).watchdog_interval_s == 0.5
    assert Notifier({**env, "WATCHDOG_PID": "1"}).watchdog_interval_s is None


def test_a_vanished_notify_socket_is_survived(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "gone.sock"))
    logged: list[dict[str, object]] = []
    log.configure(lambda record, _level: logged.append(record))
    try:
        notifier = Notifier()
        notifier.ready()  # never raised...
        notifier.status("still running")
    finally:
        log.configure(None)
    assert [e["event"] for e in logged] == ["sd_notify_failed"]  # ...and said once


def test_status_is_ascii_one_line(notify_socket: NotifySocket,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", str(notify_socket.path))
    notifier = Notifier()
    notifier.status("imprimante prête\nsecond line")
    notifier.status("imprimante prête\nsecond line")  # unchanged: not sent again
    assert notify_socket.wait_for("STATUS=") == "STATUS=imprimante pr?te second line"
    assert len([m for m in notify_socket.poll() if m.startswith("STATUS=")]) == 1


def test_sighup_reload_keeps_an_unchanged_printer_serving_mid_job(
        tmp_path: Path, config: Path, make_printer: Callable[..., VirtualPrinter],
        printer: VirtualPrinter, notify_socket: NotifySocket) -> None:
    log = Log(tmp_path / "events.jsonl")
    proc = run_service(tmp_path, config, NOTIFY_SOCKET=str(notify_socket.path))
    try:
        log.wait_for("listener_started")
        port = _port(config)
        job = os.urandom(200_000)
        conn = socket.create_connection(("127.0.0.1", port), timeout=10)
        conn.sendall(job[:100_000])
        printer.wait_for_bytes(100_000)
        second = make_printer("usb/lp1")
        second_port = free_port()
        config.write_text(config.read_text() + f'\n[[printer]]\nname = "new"\ndevice = '
                          f'"{second.path}"\nport = {second_port}\n', encoding="utf-8")
        proc.send_signal(signal.SIGHUP)
        reloaded = log.wait_for("config_reloaded")
        assert reloaded["ok"] is True
        assert (reloaded["added"], reloaded["unchanged"]) == (["new"], ["lp"])
        notify_socket.wait_for("RELOADING=1")
        conn.sendall(job[100_000:])
        conn.shutdown(socket.SHUT_WR)
        assert conn.recv(1) == b""
        conn.close()
        assert printer.wait_for_bytes(len(job)) == job
        assert log.events("listener_stopped") == []  # never interrupted
        send_job(second_port, b"new printer")
        assert second.wait_for_bytes(11) == b"new printer"
        messages = notify_socket.poll()
        reloading = next(i for i, m in enumerate(messages) if m.startswith("RELOADING=1\n"))
        assert "MONOTONIC_USEC=" in messages[reloading]
        assert "READY=1" in messages[reloading + 1:]  # ready again after the reload
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)


def test_sighup_with_a_broken_config_keeps_the_old_one(tmp_path: Path, config: Path,
                                                       printer: VirtualPrinter) -> None:
    log = Log(tmp_path / "events.jsonl")
    proc = run_service(tmp_path, config)
    try:
        log.wait_for("listener_started")
        good = config.read_text()
        config.write_text(good + "\n[[printer]]\nname = 'BAD NAME'\n", encoding="utf-8")
        proc.send_signal(signal.SIGHUP)
        refused = log.wait_for("config_reloaded")
        assert refused["ok"] is False and "BAD NAME" in refused["error"]
        send_job(_port(config), b"still here")
        assert printer.wait_for_bytes(10) == b"still here"
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0


def test_reload_changes_removes_and_keeps(tmp_path: Path, start_service: Callable[...,
                                          ServiceThread],
                                          make_printer: Callable[..., VirtualPrinter]) -> None:
    a, b, c = (make_printer(f"usb/lp{i}") for i in range(3))
    ports = [free_port() for _ in range(3)]
    service = start_service([{"name": n, "device": str(p.path), "port": port}
                             for n, p, port in zip("abc", (a, b, c), ports, strict=True)])
    for name in "abc":
        service.log.wait_for("listener_started", printer=name)
    lines = service.config.read_text().split("\n\n")
    # keep a; change b's port; drop c
    new_b_port = free_port()
    text = "\n\n".join([lines[0], lines[1], lines[2].replace(str(ports[1]), str(new_b_port))])
    service.config.write_text(text + "\n", encoding="utf-8")
    service.reload()  # what SIGHUP does
    reloaded = service.log.wait_for("config_reloaded")
    assert (reloaded["unchanged"], reloaded["changed"], reloaded["removed"]) == (
        ["a"], ["b"], ["c"])
    assert {p["name"]: p["port"] for p in service.status()["printers"]} == {
        "a": ports[0], "b": new_b_port}
    service.log.wait_for("listener_started", printer="b", count=2)
    send_job(new_b_port, b"moved")
    assert b.wait_for_bytes(5) == b"moved"
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", ports[2]), timeout=5)
    assert service.log.events("listener_stopped", printer="a") == []


def _port(config: Path) -> int:
    return int(next(line.split("=")[1] for line in config.read_text().splitlines()
                    if line.startswith("port")))


def test_a_reload_waiting_for_a_job_does_not_hold_up_hotplug(
        tmp_path: Path, start_service: Callable[..., ServiceThread],
        make_printer: Callable[..., VirtualPrinter]) -> None:
    busy = make_printer("usb/lp5")
    port = free_port()
    service = start_service([{"name": "busy", "device": str(busy.path), "port": port},
                             {"name": "lj", "match": "3f0/4117/*", "firmware": "none"}],
                            grace_s=30.0)
    service.log.wait_for("listener_started", printer="busy")
    conn = socket.create_connection(("127.0.0.1", port), timeout=10)
    conn.sendall(b"long job, ")
    busy.wait_for_bytes(10)
    service.config.write_text(service.config.read_text().replace(
        'name = "busy"', 'name = "busy"\nidle_timeout = 600'), encoding="utf-8")
    service.reload()  # "busy" changed: its job may take the whole grace
    service.wait_state("busy", "ready")  # its successor is listed at once
    usb = VirtualUsbPrinter(FakeSysfs(tmp_path / "sys"), tmp_path / "dev")
    try:
        for env in usb.plug():
            service.notify(env)
        service.wait_state("lj", "ready", timeout_s=5)  # long before the grace is over
        assert service.log.events("config_reloaded") == []  # the reload is still waiting
        conn.sendall(b"finished after the reload")
        conn.shutdown(socket.SHUT_WR)
        assert conn.recv(1) == b""
        conn.close()
        assert busy.wait_for_bytes(35) == b"long job, finished after the reload"
        assert service.log.wait_for("config_reloaded")["changed"] == ["busy"]
        service.log.wait_for("listener_started", printer="busy", count=2)
    finally:
        usb.close()
