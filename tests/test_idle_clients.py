"""Clients that never send a job: probes, idle connections, floods. They hold no printer."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import pytest
from harness import ServiceThread, free_port, send_job, wait_until

from supervisor.lab.virtual import VirtualPrinter

StartService = Callable[..., ServiceThread]
FLOODER = "127.0.0.2"  # all of 127/8 is loopback: a second client address on this host


def static(printer: VirtualPrinter, port: int, **extra: object) -> dict[str, object]:
    return {"name": extra.pop("name", "lp"), "device": str(printer.path), "port": port, **extra}


IP_BIND_ADDRESS_NO_PORT = 24  # linux/in.h: the port is chosen at connect, not at bind


def connect(port: int, source: str = "127.0.0.1") -> socket.socket:
    """A client from `source`; binding the address alone keeps a flood of them fast (a bound
    port would be searched for at bind, against every port in use)."""
    conn = socket.socket()
    try:
        conn.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
        conn.bind((source, 0))
        conn.settimeout(10)
        conn.connect(("127.0.0.1", port))
    except OSError:
        conn.close()
        raise
    return conn


def closed_by_server(conn: socket.socket, timeout_s: float = 10.0) -> bool:
    conn.settimeout(timeout_s)
    try:
        return conn.recv(1) == b""
    except ConnectionResetError:
        return True


def test_idle_clients_wait_without_the_printer_and_a_sender_goes_first(
        printer: VirtualPrinter, start_service: StartService) -> None:
    port = free_port()
    service = start_service([static(printer, port, idle_timeout=1.0)])
    service.log.wait_for("listener_started")
    idle = [connect(port) for _ in range(3)]
    wait_until(lambda: service.status("lp")["queued"] == 3, what="3 clients waiting")
    assert service.status("lp")["state"] == "ready"  # nobody holds the printer
    assert send_job(port, b"served first") == b""
    assert printer.wait_for_bytes(12) == b"served first"
    assert service.log.events("client_idle") == []  # they were still there meanwhile
    for conn in idle:  # then closed, all of them, once idle_timeout passed since accept
        assert closed_by_server(conn)
        conn.close()
    first = service.log.wait_for("client_idle")
    assert "sent nothing for 1 s (idle_timeout)" in first["reason"]
    assert len(service.log.events("job_started")) == 1
    assert service.status("lp")["queued"] == 0


def test_idle_waiters_are_closed_together_not_one_after_another(
        printer: VirtualPrinter, start_service: StartService) -> None:
    port = free_port()
    service = start_service([static(printer, port, idle_timeout=0.5)])
    service.log.wait_for("listener_started")
    idle = [connect(port) for _ in range(6)]
    accepted = time.monotonic()
    for conn in idle:
        assert closed_by_server(conn)
        conn.close()
    # One after another (the old queue) would have taken 6 x idle_timeout.
    assert time.monotonic() - accepted < 6 * 0.5
    assert service.log.events("job_started") == []
    assert [e["to"] for e in service.log.events("state_changed")] == ["ready"]


def test_order_among_senders_stays_arrival_order(
        printer: VirtualPrinter, start_service: StartService) -> None:
    port = free_port()
    service = start_service([static(printer, port)])
    service.log.wait_for("listener_started")
    holder = connect(port)
    holder.sendall(b"<first ")
    printer.wait_for_bytes(7)
    later = [connect(port) for _ in range(3)]
    for n, conn in reversed(list(enumerate(later))):  # they send in reverse of their accept
        conn.sendall(f"<job{n}>".encode())
        conn.shutdown(socket.SHUT_WR)
    wait_until(lambda: service.status("lp")["queued"] == 3, what="3 senders waiting")
    holder.sendall(b"end>")
    holder.shutdown(socket.SHUT_WR)
    assert printer.wait_for_bytes(11 + 3 * 6) == b"<first end><job0><job1><job2>"
    for conn in (holder, *later):
        assert closed_by_server(conn)
        conn.close()


def test_caps_per_address_and_per_printer_close_the_extra_at_once(
        printer: VirtualPrinter, start_service: StartService) -> None:
    port = free_port()
    service = start_service([static(printer, port, max_clients=5, max_clients_per_address=2)])
    service.log.wait_for("listener_started")
    with ExitStack() as stack:
        kept = [stack.enter_context(connect(port, FLOODER)) for _ in range(2)]
        wait_until(lambda: service.status("lp")["queued"] == 2, what="2 waiting")
        extra = stack.enter_context(connect(port, FLOODER))
        assert closed_by_server(extra, 5.0)
        refused = service.log.wait_for("client_refused")
        assert "max_clients_per_address" in refused["reason"]
        assert refused["client"].startswith(f"{FLOODER}:")
        others = [stack.enter_context(connect(port, f"127.0.0.{n}")) for n in (3, 4, 5)]
        wait_until(lambda: service.status("lp")["queued"] == 5, what="5 waiting")
        full = stack.enter_context(connect(port, "127.0.0.6"))
        assert closed_by_server(full, 5.0)
        assert "(max_clients)" in service.log.wait_for("client_refused", count=2)["reason"]
        for conn in (*kept, *others):
            conn.settimeout(0.2)
            with pytest.raises(TimeoutError):
                conn.recv(1)  # still waiting, not closed


FLOOD = """
import resource, socket, sys
port, control, count, controls = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
wanted = count + controls + 64
if hard != resource.RLIM_INFINITY and hard < wanted:
    sys.exit(f"the flood needs {wanted} open files; the hard limit is {hard}")
resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), hard))
held = []
for _ in range(count):
    conn = socket.socket()
    conn.setsockopt(socket.IPPROTO_IP, 24, 1)  # IP_BIND_ADDRESS_NO_PORT
    conn.bind(("127.0.0.2", 0))
    try:
        conn.connect(("127.0.0.1", port))
    except OSError:
        conn.close()  # reset at once by the cap: also a flood's lot
        continue
    held.append(conn)
for _ in range(controls):
    conn = socket.socket(socket.AF_UNIX)
    conn.connect(control)
    held.append(conn)
print("flooding", flush=True)
sys.stdin.read()  # hold them all until the test is done
"""


def test_a_flood_of_idle_connections_holds_no_printer(
        make_printer: Callable[..., VirtualPrinter], start_service: StartService) -> None:
    """1500 idle connections from one address and 300 on the control socket, from another
    process: a real job from another address, another printer and `status` go on."""
    target, other = make_printer("usb/lp0"), make_printer("usb/lp1")
    port, other_port = free_port(), free_port()
    idle_timeout = 2.0
    service = start_service([static(target, port, idle_timeout=idle_timeout),
                             static(other, other_port, name="other")])
    service.log.wait_for("listener_started", printer="lp")
    service.log.wait_for("listener_started", printer="other")
    lines_before = len(service.log.path.read_text().splitlines())
    rss_before = _rss_kb()
    flood = subprocess.Popen([sys.executable, "-c", FLOOD, str(port),
                              str(service.root / "control.sock"), "1500", "300"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert flood.stdout is not None and flood.stdout.readline() == "flooding\n"
        started = time.monotonic()
        assert send_job(port, b"the real job", timeout_s=idle_timeout + 1) == b""
        assert target.wait_for_bytes(12, timeout_s=idle_timeout + 1) == b"the real job"
        assert time.monotonic() - started <= idle_timeout + 1
        send_job(other_port, b"\x00\x1bother printer\xff")
        assert other.wait_for_bytes(16) == b"\x00\x1bother printer\xff"
        asked = time.monotonic()
        assert service.status("lp")["jobs"] == 1
        assert time.monotonic() - asked <= 1.0
        assert _rss_kb() - rss_before <= 10 * 1024
    finally:
        flood.communicate("", timeout=30)
    wait_until(lambda: service.status("lp")["queued"] == 0, what="the flood to be gone")
    lines = service.log.path.read_text().splitlines()[lines_before:]
    assert len(lines) < 100, "\n".join(lines[:120])
    assert service.log.events("client_refused")  # folded, not one line per connection


def _rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_the_control_socket_bounds_idle_connections(
        start_service: StartService, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("supervisor.sources.control.MAX_CONNECTIONS", 3)
    service = start_service([])
    path = str(service.root / "control.sock")
    with ExitStack() as stack:
        idle = []
        for _ in range(3):
            conn = stack.enter_context(socket.socket(socket.AF_UNIX, socket.SOCK_STREAM))
            conn.connect(path)
            idle.append(conn)
        extra = stack.enter_context(socket.socket(socket.AF_UNIX, socket.SOCK_STREAM))
        extra.connect(path)  # served in accept order: the three are counted before it
        # Over the cap: closed unanswered at once, not after the 5 s an idle one is given.
        assert closed_by_server(extra, 2.0)
        idle[0].close()
        assert service.status()["printers"] == []
