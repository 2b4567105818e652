"""The HTTP listener (`http_listen`) over real loopback sockets: what it serves, and what it
does with bad, oversized, unwelcome and idle clients."""

from __future__ import annotations

import json
import os
import resource
import socket
from collections.abc import Callable, Iterator
from contextlib import ExitStack, suppress

import pytest
from harness import ServiceThread, free_port, send_job, wait_until

from supervisor.lab.virtual import VirtualPrinter
from supervisor.publish import httpd

StartService = Callable[..., ServiceThread]
OTHER = "127.0.0.2"  # all of 127/8 is loopback: a second client address on this host


def http(port: int, raw: bytes, *, source: str = "127.0.0.1", timeout_s: float = 15.0) -> bytes:
    """Send `raw` as is, half-close, and read the whole answer (until the server closes)."""
    with socket.socket() as conn:
        conn.bind((source, 0))
        conn.settimeout(timeout_s)
        conn.connect(("127.0.0.1", port))
        conn.sendall(raw)
        with suppress(OSError):
            conn.shutdown(socket.SHUT_WR)
        return read_all(conn)


def read_all(conn: socket.socket) -> bytes:
    answer = b""
    try:
        while chunk := conn.recv(65536):
            answer += chunk
    except ConnectionResetError:
        pass
    return answer


def get(port: int, path: str, *, host: str = "127.0.0.1", method: str = "GET") -> bytes:
    return http(port, f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: t\r\n\r\n".encode())


def split(answer: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return status, headers, body


@pytest.fixture
def served(printer: VirtualPrinter,
           start_service: StartService) -> Iterator[tuple[ServiceThread, int, int]]:
    """A ready printer and the HTTP listener: (service, printer port, http port)."""
    port, http_port = free_port(), free_port()
    service = start_service([{"name": "lp", "device": str(printer.path), "port": port}],
                            http_listen=f"127.0.0.1:{http_port}")
    service.log.wait_for("http_listener_started")
    service.log.wait_for("listener_started")
    yield service, port, http_port


def test_it_serves_metrics_status_and_the_page(served: tuple[ServiceThread, int, int],
                                               printer: VirtualPrinter) -> None:
    service, port, http_port = served
    send_job(port, b"one job")
    wait_until(lambda: service.status("lp")["jobs"] == 1)
    status, headers, body = split(get(http_port, "/metrics"))
    assert status == 200
    assert headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert int(headers["content-length"]) == len(body) and headers["connection"] == "close"
    assert b'printer_supervisor_jobs_finished_total{printer="lp"} 1\n' in body
    status, headers, body = split(get(http_port, "/status.json"))
    assert status == 200 and headers["content-type"] == "application/json"
    document = json.loads(body)
    assert document["printers"][0]["jobs"] == 1
    assert document["daemon"]["http"] == f"127.0.0.1:{http_port}"
    status, headers, body = split(get(http_port, "/", host=f"printserver.lan:{http_port}"))
    assert status == 200 and headers["content-type"] == "text/html; charset=utf-8"
    assert "default-src 'none'" in headers["content-security-policy"]
    assert f"socket://printserver.lan:{port}".encode() in body  # as the browser reached it
    assert b"job_finished" in body  # the recent events
    status, headers, body = split(get(http_port, "/", host="evil<script>"))
    assert f"socket://127.0.0.1:{port}".encode() in body and b"<script>" not in body
    status, headers, body = split(get(http_port, "/metrics?x=1", method="HEAD"))
    assert status == 200 and body == b"" and int(headers["content-length"]) > 0
    assert printer.wait_for_bytes(7) == b"one job"


def long_request_line() -> bytes:
    return b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\n\r\n"


def many_headers() -> bytes:
    return b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: %s\r\n" % (n, b"v" * 100)
                                           for n in range(300)) + b"\r\n"


@pytest.mark.parametrize(("raw", "code"), [
    (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(64), 400),  # a TLS hello
    (b"garbage\r\n\r\n", 400),
    (b"GET /\r\n\r\n", 400),  # HTTP/0.9
    (b"GET / HTTP/1.1 extra\r\n\r\n", 400),
    (b"GET / SPDY/3\r\n\r\n", 400),
    (b"G\xc3\xa9T / HTTP/1.1\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nno colon here\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: x\r\n", 400),  # the head ends before its blank line
    (b"GET nowhere HTTP/1.1\r\n\r\n", 400),
    (b"GET /nothing-here HTTP/1.1\r\n\r\n", 404),
    (b"POST /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", 405),
    (b"DELETE / HTTP/1.1\r\n\r\n", 405),
    (long_request_line(), 414),
    (many_headers(), 431),
    (b"GET / HTTP/2.0\r\n\r\n", 505),
], ids=["tls", "garbage", "http09", "four-parts", "not-http", "non-ascii", "bad-header",
        "truncated", "not-a-path", "unknown-path", "post", "delete", "long-line",
        "many-headers", "http2"])
def test_bad_requests_get_an_error_status_and_nothing_else(
        served: tuple[ServiceThread, int, int], raw: bytes, code: int) -> None:
    service, port, http_port = served
    status, headers, body = split(http(http_port, raw))
    assert status == code
    assert headers["connection"] == "close" and int(headers["content-length"]) == len(body)
    assert b"printer_supervisor" not in body and b"<html" not in body
    if code == 405:
        assert headers["allow"] == "GET, HEAD"
    assert service.log.wait_for("http_bad_request")["status"] == code
    assert send_job(port, b"still printing") == b""  # nothing else was disturbed


def test_a_client_that_sends_nothing_is_answered_408_after_the_timeout(
        served: tuple[ServiceThread, int, int], monkeypatch: pytest.MonkeyPatch) -> None:
    _service, _, http_port = served
    monkeypatch.setattr(httpd, "REQUEST_TIMEOUT_S", 0.5)  # read when each request starts
    with socket.create_connection(("127.0.0.1", http_port), timeout=15) as conn:
        conn.sendall(b"GET /metrics HTTP/1.1\r\n")  # ...and never the rest
        status, _, _ = split(read_all(conn))
    assert status == 408


def test_a_client_outside_http_allow_is_disconnected_unanswered(
        printer: VirtualPrinter, start_service: StartService) -> None:
    http_port = free_port()
    service = start_service([{"name": "lp", "device": str(printer.path), "port": free_port()}],
                            http_listen=f"127.0.0.1:{http_port}", http_allow=[f"{OTHER}/32"])
    service.log.wait_for("http_listener_started")
    assert http(http_port, b"GET /metrics HTTP/1.1\r\n\r\n") == b""
    rejected = service.log.wait_for("http_rejected")
    assert rejected["client"].startswith("127.0.0.1:") and rejected["level"] == "warning"
    assert split(http(http_port, b"GET /metrics HTTP/1.1\r\n\r\n", source=OTHER))[0] == 200


def test_a_taken_port_is_reported_and_taken_when_it_is_free(
        printer: VirtualPrinter, start_service: StartService) -> None:
    blocker = socket.socket()
    blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    http_port = blocker.getsockname()[1]
    port = free_port()
    try:
        service = start_service([{"name": "lp", "device": str(printer.path), "port": port}],
                                http_listen=f"127.0.0.1:{http_port}")
        failed = service.log.wait_for("http_listener_failed")
        assert "Address already in use" in failed["error"]
        daemon = wait_until(lambda: (d := service.status()["daemon"])["error"] and d)
        assert str(http_port) in daemon["error"] and daemon["http"] is None
        assert send_job(port, b"printers go on") == b""
    finally:
        blocker.close()
    service.log.wait_for("http_listener_started", timeout_s=20)
    daemon = wait_until(lambda: (d := service.status()["daemon"])["http"] and d)
    assert daemon["error"] is None
    assert split(get(http_port, "/metrics"))[0] == 200


#: What the 500-connection test needs open at once in this process (the service runs in a
#: thread here): its 500 client sockets, as many accepted by the service before it closes the
#: extra ones, and the rest. A 1024 soft limit (autopkgtest's, many shells') is not enough.
FLOOD_FILES = 4096


@pytest.fixture
def open_files() -> Iterator[int]:
    """The soft RLIMIT_NOFILE raised to FLOOD_FILES (never past the hard limit) for the test
    and the service it starts (list this fixture first: it is undone after the service stops)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = FLOOD_FILES if hard == resource.RLIM_INFINITY else min(FLOOD_FILES, hard)
    if wanted < 1500:
        pytest.fail(f"this test needs about 1500 open files; the hard limit is {hard} "
                    "(raise it: ulimit -Hn, LimitNOFILE=)")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), hard))
    try:
        yield resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_500_idle_connections_neither_hold_up_the_printers_nor_the_scrapes(
        open_files: int, printer: VirtualPrinter, make_printer: Callable[..., VirtualPrinter],
        start_service: StartService) -> None:
    other = make_printer("usb/lp1")
    port, port2, http_port = free_port(), free_port(), free_port()
    service = start_service([{"name": "lp", "device": str(printer.path), "port": port},
                             {"name": "lp2", "device": str(other.path), "port": port2}],
                            http_listen=f"127.0.0.1:{http_port}")
    service.log.wait_for("http_listener_started")
    with ExitStack() as stack:
        idle = []
        for n in range(500):  # from 40 addresses: the per-address cap keeps 16 of each
            conn = stack.enter_context(socket.socket())
            conn.bind((f"127.0.1.{n % 40 + 1}", 0))
            conn.settimeout(10)
            conn.connect(("127.0.0.1", http_port))
            idle.append(conn)
        # The server holds at most MAX_CONNECTIONS of them; the rest are closed at once.
        wait_until(lambda: service.log.events("http_refused"), what="connections refused")
        jobs = [os.urandom(4096) + b"job %d" % n for n in range(20)]
        for data in jobs:
            assert send_job(port, data) == b""
        assert printer.wait_for_bytes(sum(map(len, jobs))) == b"".join(jobs)
        assert send_job(port2, b"the other printer") == b""
        assert other.wait_for_bytes(17) == b"the other printer"
        assert service.status("lp")["jobs"] == 20
        # A scrape from an address the flood does not use is answered meanwhile.
        status, _, body = split(http(http_port, b"GET /metrics HTTP/1.1\r\n\r\n",
                                     source="127.0.0.2"))
        assert status == 200 and b'printer_supervisor_jobs_finished_total{printer="lp"} 20' in body
        held = sum(1 for conn in idle if not closed(conn))
        assert 0 < held <= httpd.MAX_CONNECTIONS
    assert [e for e in service.log.events() if e["level"] == "error"] == []


def closed(conn: socket.socket) -> bool:
    """Whether the server closed this connection (without waiting if it did not)."""
    conn.setblocking(False)
    try:
        return conn.recv(1, socket.MSG_PEEK) == b""
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True
