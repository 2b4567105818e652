"""The forwarder end to end: the real service, loopback clients and a pty printer."""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import struct
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from harness import ServiceThread, free_base_port, free_port, send_job, wait_until

from supervisor.lab.virtual import PJL_STATUS_QUERY, PJL_STATUS_REPLY, VirtualPrinter
from supervisor.sources import listeners

StartService = Callable[..., ServiceThread]


def static(printer: VirtualPrinter, port: int, **extra: object) -> dict[str, object]:
    return {"name": extra.pop("name", "lp"), "device": str(printer.path), "port": port, **extra}


def test_job_reaches_the_printer_byte_exact(printer: VirtualPrinter,
                                            start_service: StartService) -> None:
    port = free_port()
    service = start_service([static(printer, port, bidirectional=False)])
    service.log.wait_for("listener_started", port=port)
    job = os.urandom(1 << 20)
    assert send_job(port, job) == b""
    assert printer.wait_for_bytes(len(job)) == job
    finished = service.log.wait_for("job_finished", printer="lp")
    assert finished["bytes_in"] == len(job)
    assert finished["client"].startswith("127.0.0.1:")


def test_a_client_that_closes_without_sending_is_a_probe_not_a_job(
        printer: VirtualPrinter, start_service: StartService) -> None:
    port = free_port()
    service = start_service([static(printer, port)])
    service.log.wait_for("listener_started")
    for _ in range(3):  # `nc -z`, a port monitor, a scanner
        assert send_job(port, b"") == b""
    send_job(port, b"a job")
    assert printer.wait_for_bytes(5) == b"a job"
    service.log.wait_for("job_finished")  # logged after the client saw its close
    assert [e["bytes_in"] for e in service.log.events("job_finished")] == [5]
    assert len(service.log.events("job_started")) == 1
    assert [e["to"] for e in service.log.events("state_changed")] == ["ready"]
    assert service.status("lp")["jobs"] == 1


def test_waiting_clients_are_served_in_arrival_order_never_interleaved(
        printer: VirtualPrinter, start_service: StartService) -> None:
    port = free_port()
    service = start_service([static(printer, port, bidirectional=False)])
    service.log.wait_for("listener_started")
    first = socket.create_connection(("127.0.0.1", port))
    first.sendall(b"A" * 1000)
    printer.wait_for_bytes(1000)  # the first job holds the printer
    waiting = []
    for letter in b"BC":
        conn = socket.create_connection(("127.0.0.1", port))
        conn.sendall(bytes([letter]) * 200_000)
        conn.shutdown(socket.SHUT_WR)
        waiting.append(conn)
    first.sendall(b"A" * 1000)
    first.shutdown(socket.SHUT_WR)
    expected = b"A" * 2000 + b"B" * 200_000 + b"C" * 200_000
    assert printer.wait_for_bytes(len(expected)) == expected
    for conn in (first, *waiting):
        assert conn.recv(1) == b""  # each closed by the service once its job ended
        conn.close()
    service.log.wait_for("job_finished", count=3)  # logged after each client saw its close
    clients = [e["bytes_in"] for e in service.log.events("job_finished")]
    assert clients == [2000, 200_000, 200_000]


def test_half_close_delivers_the_printers_reply_then_closes(
        printer: VirtualPrinter, start_service: StartService) -> None:
    port = free_port()
    service = start_service([static(printer, port, bidirectional=True)])
    service.log.wait_for("listener_started")
    reply = send_job(port, b"\x1b%-12345X" + PJL_STATUS_QUERY + b"\r\n")
    assert reply == PJL_STATUS_REPLY
    assert service.log.wait_for("job_finished")["bytes_out"] == len(PJL_STATUS_REPLY)


def test_client_reset_mid_job_fails_that_job_only(printer: VirtualPrinter,
                                                  start_service: StartService) -> None:
    port = free_port()
    service = start_service([static(printer, port)])
    service.log.wait_for("listener_started")
    conn = socket.create_connection(("127.0.0.1", port))
    conn.sendall(b"x" * 5000)
    printer.wait_for_bytes(5000)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()  # RST
    failed = service.log.wait_for("job_failed")
    assert "ECONNRESET" in failed["error"]
    job = os.urandom(100_000)
    send_job(port, job)
    assert printer.wait_for_bytes(5000 + len(job))[5000:] == job
    service.log.wait_for("job_finished")


def test_a_silent_client_is_cut_off_after_idle_timeout(printer: VirtualPrinter,
                                                       start_service: StartService) -> None:
    port = free_port()
    service = start_service([static(printer, port, idle_timeout=0.3)])
    service.log.wait_for("listener_started")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as quiet:
        quiet.sendall(b"partial")
        failed = service.log.wait_for("job_failed")
        assert "idle_timeout" in failed["error"]
        assert failed["bytes_in"] == len(b"partial")
        assert quiet.recv(100) == b""  # closed by the service
    send_job(port, b"next")
    assert printer.wait_for_bytes(11) == b"partialnext"


def test_allow_rejects_before_the_device_is_touched(printer: VirtualPrinter,
                                                    start_service: StartService) -> None:
    port = free_port()
    service = start_service([static(printer, port, allow=["192.0.2.0/24"])])
    service.log.wait_for("listener_started")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        try:
            conn.sendall(b"not for you")
            assert conn.recv(10) == b""
        except ConnectionResetError:
            pass  # closed with our bytes unread: also a rejection
    rejected = service.log.wait_for("client_rejected")
    assert rejected["client"].startswith("127.0.0.1:")
    assert service.log.events("job_started") == []
    assert printer.paper == b""


def test_port_in_use_is_reported_and_retried_while_others_serve(
        make_printer: Callable[..., VirtualPrinter], start_service: StartService) -> None:
    busy, free = make_printer("usb/lp0"), make_printer("usb/lp1")
    busy_port, free_port_ = free_port(), free_port()
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", busy_port))
    squatter.listen()
    service = start_service([static(busy, busy_port, name="busy"),
                             static(free, free_port_, name="free")])
    failed = service.log.wait_for("listener_failed", printer="busy")
    assert f"port {busy_port} is already in use" in failed["error"]
    service.log.wait_for("listener_started", printer="free")
    send_job(free_port_, b"still printing")
    assert free.wait_for_bytes(14) == b"still printing"
    assert service.service is not None
    assert service.service.printers["busy"].model.error == failed["error"]
    squatter.close()
    service.log.wait_for("listener_started", printer="busy", timeout_s=10)
    send_job(busy_port, b"now me")
    assert busy.wait_for_bytes(6) == b"now me"
    assert service.service.printers["busy"].model.error is None


def test_dual_stack_by_default_ipv6_and_ipv4_clients(printer: VirtualPrinter,
                                                     start_service: StartService) -> None:
    port = free_port("::")
    service = start_service([static(printer, port)], bind=["::"])
    service.log.wait_for("listener_started")
    send_job(port, b"six", host="::1")
    send_job(port, b"four", host="127.0.0.1")
    assert printer.wait_for_bytes(7) == b"sixfour"
    service.log.wait_for("job_finished", count=2)
    clients = [e["client"] for e in service.log.events("job_finished")]
    assert clients[0].startswith("[::1]:") and clients[1].startswith("127.0.0.1:")


def test_printer_pulled_mid_job_fails_the_job_and_goes_absent(
        make_printer: Callable[..., VirtualPrinter], start_service: StartService) -> None:
    pulled, other = make_printer("usb/lp0"), make_printer("usb/lp1")
    port, other_port = free_port(), free_port()
    service = start_service([static(pulled, port, name="pulled"),
                             static(other, other_port, name="other")])
    service.log.wait_for("listener_started", printer="pulled")
    conn = socket.create_connection(("127.0.0.1", port), timeout=10)
    conn.sendall(b"y" * 10_000)
    pulled.wait_for_bytes(10_000)
    pulled.unplug()  # the master closes: writes fail with EIO, the node is gone
    try:
        while True:
            conn.sendall(b"y" * 65536)
    except OSError:
        pass  # the service closed the connection
    conn.close()
    failed = service.log.wait_for("job_failed", printer="pulled")
    assert "EIO" in failed["error"]
    service.log.wait_for("state_changed", printer="pulled", to="absent")
    service.log.wait_for("listener_stopped", printer="pulled")
    send_job(other_port, b"unharmed")
    assert other.wait_for_bytes(8) == b"unharmed"


def test_device_that_cannot_be_opened_fails_the_job_after_the_deadline(
        tmp_path: Path, start_service: StartService, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("supervisor.workers.device.OPEN_DEADLINE_S", 0.5)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # no reader: opening for writing fails with ENXIO, a retried error
    port = free_port()
    service = start_service([{"name": "lp", "device": str(fifo), "port": port}])
    service.log.wait_for("listener_started")
    with pytest.raises(ConnectionResetError):  # the job was not printed: no clean close
        send_job(port, b"lost")
    failed = service.log.wait_for("job_failed")
    assert "ENXIO" in failed["error"] and "gave up after" in failed["error"]


def test_device_returning_eof_does_not_spin(start_service: StartService) -> None:
    port = free_port()
    service = start_service([{"name": "null", "device": "/dev/null", "port": port,
                              "bidirectional": True}])
    service.log.wait_for("listener_started")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(b"x")
        service.log.wait_for("job_started")
        cpu_before = time.process_time()
        time.sleep(1.0)  # the job is open; /dev/null answers every read with EOF
        cpu_used = time.process_time() - cpu_before
        conn.shutdown(socket.SHUT_WR)
        assert conn.recv(1) == b""
    service.log.wait_for("job_finished")
    assert cpu_used < 0.5, f"{cpu_used:.2f} CPU s in 1 s of a silent job: busy loop"


def test_stop_lets_a_running_job_finish_within_the_grace(printer: VirtualPrinter,
                                                         start_service: StartService) -> None:
    port = free_port()
    service = start_service([static(printer, port)], grace_s=10.0)
    service.log.wait_for("listener_started")
    conn = socket.create_connection(("127.0.0.1", port), timeout=10)
    conn.sendall(b"first half ")
    printer.wait_for_bytes(11)
    service.request_stop()
    service.log.wait_for("listener_stopped")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=10)
    conn.sendall(b"second half")
    conn.shutdown(socket.SHUT_WR)
    assert conn.recv(1) == b""
    conn.close()
    wait_until(lambda: service.stopped, what="the service to exit")
    assert printer.paper == b"first half second half"
    service.log.wait_for("job_finished")


def test_stop_aborts_a_job_that_outlives_the_grace(printer: VirtualPrinter,
                                                   start_service: StartService) -> None:
    port = free_port()
    service = start_service([static(printer, port)], grace_s=0.3)
    service.log.wait_for("listener_started")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(b"never finished")
        printer.wait_for_bytes(14)
        service.stop()
        assert "service stopping" in service.log.wait_for("job_failed")["error"]


def test_a_pipe_as_the_device_gets_every_byte_by_splice(tmp_path: Path,
                                                         start_service: StartService) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # the program the pipe feeds
    port = free_port()
    service = start_service([{"name": "pipe", "device": str(fifo), "port": port,
                              "bidirectional": True}])
    service.log.wait_for("listener_started")
    job = os.urandom(3 << 20)
    received = bytearray()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.setblocking(False)
        view = memoryview(job)
        while view or len(received) < len(job):
            if view:
                with contextlib.suppress(BlockingIOError):
                    view = view[conn.send(view[:1 << 16]):]
                if not view:
                    conn.shutdown(socket.SHUT_WR)
            try:
                received += os.read(reader, 1 << 16)
            except BlockingIOError:
                time.sleep(0.001)
        conn.setblocking(True)
        assert conn.recv(1) == b""  # nothing read back from a pipe, and closed at the end
    os.close(reader)
    assert bytes(received) == job
    assert service.log.wait_for("job_finished")["bytes_in"] == len(job)


def test_a_pipe_whose_reader_went_away_fails_the_job_as_device_lost(
        tmp_path: Path, start_service: StartService) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    port = free_port()
    service = start_service([{"name": "pipe", "device": str(fifo), "port": port}])
    service.log.wait_for("listener_started")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(b"a")
        service.log.wait_for("job_started")
        os.close(reader)
        with contextlib.suppress(OSError):
            for _ in range(100):
                conn.sendall(b"x" * 65536)
    assert "EPIPE" in service.log.wait_for("job_failed")["error"]


def test_stop_does_not_wait_for_a_device_that_never_opens(
        tmp_path: Path, start_service: StartService) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # no reader: the job keeps retrying the open (30 s deadline)
    port = free_port()
    service = start_service([{"name": "lp", "device": str(fifo), "port": port}], grace_s=0.2)
    service.log.wait_for("listener_started")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(b"stuck")
        service.log.wait_for("job_started")
        service.stop()  # within the grace and a little, not after the open deadline
    failed = service.log.wait_for("job_failed")
    assert "while waiting for the device" in failed["error"]


def test_without_ipv6_the_default_bind_falls_back_to_ipv4(
        monkeypatch: pytest.MonkeyPatch) -> None:
    real_socket = socket.socket

    def no_ipv6(family: int = socket.AF_INET, *args: object) -> socket.socket:
        if family == socket.AF_INET6:
            raise OSError(errno.EAFNOSUPPORT, "Address family not supported by protocol")
        return real_socket(family, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(listeners.socket, "socket", no_ipv6)
    # Below the ephemeral range: 0.0.0.0 clashes with any local port, a client's included.
    port = free_base_port(1)
    (listener,) = listeners.bind_listeners(("::",), port)
    with listener:
        assert listener.family == socket.AF_INET and listener.getsockname() == ("0.0.0.0", port)
