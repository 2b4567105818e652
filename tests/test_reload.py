"""A reload in the middle of jobs: the old listeners never come back, the new settings hold for
every job that starts after it (waiting clients are checked again), and shutdown starts nothing."""

from __future__ import annotations

import socket
from collections.abc import Callable

import pytest
from harness import ServiceThread, free_port, send_job, wait_until

from supervisor.lab.virtual import VirtualPrinter


def connect(port: int, source: str = "127.0.0.1") -> socket.socket:
    conn = socket.socket()
    conn.settimeout(10)
    conn.bind((source, 0))
    conn.connect(("127.0.0.1", port))
    return conn


def refuses(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


def finish(conn: socket.socket, rest: bytes) -> None:
    conn.sendall(rest)
    conn.shutdown(socket.SHUT_WR)
    assert conn.recv(1) == b""
    conn.close()


def closed_by_server(conn: socket.socket) -> bool:
    try:
        return conn.recv(1) == b""
    except ConnectionResetError:
        return True


def test_a_reload_mid_job_retires_the_old_listeners_and_applies_the_new_allow(
        start_service: Callable[..., ServiceThread],
        make_printer: Callable[..., VirtualPrinter]) -> None:
    alpha, beta = make_printer("usb/lp0"), make_printer("usb/lp1")
    old_port, new_port, beta_port = free_port(), free_port(), free_port()
    service = start_service(
        [{"name": "alpha", "device": str(alpha.path), "port": old_port},
         {"name": "beta", "device": str(beta.path), "port": beta_port,
          "allow": ["127.0.0.1"]}], grace_s=30.0)
    for name in ("alpha", "beta"):
        service.log.wait_for("listener_started", printer=name)
    job_a, job_b = connect(old_port), connect(beta_port)
    job_a.sendall(b"alpha, ")
    job_b.sendall(b"beta, ")
    alpha.wait_for_bytes(7)
    beta.wait_for_bytes(6)
    queued = connect(beta_port)  # allowed now, waiting behind beta's job with its first bytes
    queued.sendall(b"from 127.0.0.1, queued")
    wait_until(lambda: service.status("beta")["queued"] == 1, what="a client waiting on beta")

    text = service.config.read_text()
    service.config.write_text(text.replace(f"port = {old_port}", f"port = {new_port}")
                              .replace('allow = ["127.0.0.1"]', 'allow = ["127.0.0.2"]'),
                              encoding="utf-8")
    service.reload()
    for name in ("alpha", "beta"):
        service.log.wait_for("listener_stopped", printer=name)
    assert refuses(old_port)
    finish(job_a, b"finished after the reload")
    finish(job_b, b"finished too")
    assert alpha.wait_for_bytes(32) == b"alpha, finished after the reload"
    reloaded = service.log.wait_for("config_reloaded")
    assert reloaded["changed"] == ["alpha", "beta"]

    # The waiting client from an address the new allow refuses is closed, never served.
    rejected = service.log.wait_for("client_rejected", printer="beta")
    assert rejected["client"].startswith("127.0.0.1:")
    assert wait_until(lambda: closed_by_server(queued))
    queued.close()
    assert beta.wait_for_bytes(18) == b"beta, finished too"

    send_job(new_port, b"+new port")
    assert alpha.wait_for_bytes(41).endswith(b"+new port")
    with connect(beta_port, source="127.0.0.2") as allowed:
        finish(allowed, b"+from 127.0.0.2")
    assert beta.wait_for_bytes(33).endswith(b"+from 127.0.0.2")
    with connect(beta_port) as refused:
        refused.sendall(b"+from 127.0.0.1")
        assert wait_until(lambda: closed_by_server(refused))

    # The old port stays closed: the retired alpha started nothing when its job ended.
    assert refuses(old_port)
    started = service.log.events("listener_started")
    assert [e["port"] for e in started if e["printer"] == "alpha"] == [old_port, new_port]
    assert [e["port"] for e in started if e["printer"] == "beta"] == [beta_port, beta_port]
    assert service.log.events("listener_failed") == []
    assert beta.paper == b"beta, finished too+from 127.0.0.2"

    service.stop()
    events = [e["event"] for e in service.log.events()]
    stopping = events.index("daemon_stopping")
    assert "listener_started" not in events[stopping:]


def mid_job(start_service: Callable[..., ServiceThread],
            make_printer: Callable[..., VirtualPrinter], first: bytes,
            ) -> tuple[ServiceThread, VirtualPrinter, int, socket.socket]:
    """A printer "lp" in the middle of a job whose `first` bytes are on paper."""
    printer = make_printer()
    port = free_port()
    service = start_service([{"name": "lp", "device": str(printer.path), "port": port}],
                            grace_s=30.0)
    service.log.wait_for("listener_started")
    conn = connect(port)
    conn.sendall(first)
    printer.wait_for_bytes(len(first))
    return service, printer, port, conn


def test_a_reload_hands_waiting_clients_to_the_successor_in_their_order(
        start_service: Callable[..., ServiceThread],
        make_printer: Callable[..., VirtualPrinter]) -> None:
    service, printer, port, running = mid_job(start_service, make_printer, b"1")
    waiting = [connect(port) for _ in range(3)]
    for n, conn in enumerate(waiting, start=2):
        conn.sendall(str(n).encode())
    wait_until(lambda: service.status("lp")["queued"] == 3, what="three clients waiting")
    service.config.write_text(service.config.read_text().replace(
        'name = "lp"', 'name = "lp"\nidle_timeout = 600'), encoding="utf-8")
    service.reload()
    service.log.wait_for("listener_stopped")
    finish(running, b"")
    for conn in waiting:
        finish(conn, b"")
    assert printer.wait_for_bytes(4) == b"1234"  # no client lost, none out of turn
    assert service.log.wait_for("config_reloaded")["changed"] == ["lp"]
    assert len(service.log.events("job_finished")) == 4


@pytest.mark.parametrize("during", ["shutdown", "reload"])
def test_a_job_ending_after_its_printer_was_retired_starts_no_listener(
        during: str, start_service: Callable[..., ServiceThread],
        make_printer: Callable[..., VirtualPrinter]) -> None:
    service, printer, _port, conn = mid_job(start_service, make_printer, b"job, ")
    if during == "reload":
        service.config.write_text(service.config.read_text().replace(
            'name = "lp"', 'name = "other"'), encoding="utf-8")  # lp removed, other added
        service.reload()
    else:
        service.request_stop()
    service.log.wait_for("listener_stopped")
    finish(conn, b"done")
    assert printer.wait_for_bytes(9) == b"job, done"
    service.log.wait_for("job_finished")
    if during == "reload":
        service.log.wait_for("config_reloaded")
        assert [e["printer"] for e in service.log.events("listener_started")] == ["lp",
                                                                                  "other"]
    service.stop()
    lp_started = service.log.events("listener_started", printer="lp")
    assert len(lp_started) == 1
