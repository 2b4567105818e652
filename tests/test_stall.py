"""A printer that stops taking data mid-job (out of paper, offline, in error): the job's progress
while it runs, the stall detected and explained, shown wherever users look, and the job going on
once the printer takes data again. Through the real service, with a pty printer that really
stops draining; the printer's port status (LPGETSTATUS) fed through its seam."""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import struct
import threading
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from harness import WAIT_S, ServiceThread, free_port, send_job, wait_until

from supervisor.core.page import render_page
from supervisor.core.stall import (
    LP_PERRORP,
    LP_POUTPA,
    LP_PSELECD,
    NOT_TAKING_DATA,
    Resumed,
    Stalled,
    StallWatch,
    stall_reason,
)
from supervisor.core.status import PrinterStatus, status_line
from supervisor.ctl.cli import render_status
from supervisor.lab.virtual import VirtualPrinter
from supervisor.workers import forwarder, portstatus

StartService = Callable[..., ServiceThread]
JOB_BYTES = 3 << 20
HEALTHY = LP_PSELECD | LP_PERRORP  # online, no error, paper in


def job_bytes(seed: int, size: int = JOB_BYTES) -> bytes:
    return bytes((seed + i * 7) % 251 for i in range(256)) * (size // 256)


class Client:
    """A client in a thread: sends `data` (and half-closes unless `hold`), reads until closed."""

    def __init__(self, port: int, data: bytes, *, hold: bool = False) -> None:
        self.conn = socket.create_connection(("127.0.0.1", port), timeout=WAIT_S * 4)
        self.data = data
        self.hold = hold
        self.reply: bytes | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.conn.sendall(self.data)
            if not self.hold:
                self.finish()
        except BaseException as exc:
            self.error = exc

    def finish(self, rest: bytes = b"") -> None:
        self.conn.sendall(rest)
        self.conn.shutdown(socket.SHUT_WR)
        reply = b""
        while chunk := self.conn.recv(65536):
            reply += chunk
        self.reply = reply

    def join(self) -> None:
        self.thread.join(WAIT_S * 4)
        self.conn.close()
        assert self.error is None, self.error


class NotifySocket:
    """systemd's end of NOTIFY_SOCKET: the STATUS= lines the service sends."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.setblocking(False)
        self.lines: list[str] = []

    def statuses(self) -> list[str]:
        while True:
            try:
                self.lines.append(self.sock.recv(4096).decode())
            except BlockingIOError:
                return [m.removeprefix("STATUS=") for m in self.lines if m.startswith("STATUS=")]


@pytest.fixture
def notify(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[NotifySocket]:
    sock = NotifySocket(tmp_path / "notify.sock")
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "notify.sock"))
    yield sock
    sock.sock.close()


def http_get(port: int, path: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=WAIT_S) as answer:
        return str(answer.read().decode())


def metrics(port: int) -> dict[str, float]:
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
            for line in http_get(port, "/metrics").splitlines()
            if line and not line.startswith("#")}


def watch_tasks(service: ServiceThread) -> list[str]:
    """Names of the service's tasks that watch a running job."""
    assert service._loop is not None

    async def names() -> list[str]:
        return [t.get_name() for t in asyncio.all_tasks() if t.get_name().startswith("watch-")]

    return asyncio.run_coroutine_threadsafe(names(), service._loop).result(WAIT_S)


def shown_stalled_everywhere(service: ServiceThread, port: int, http_port: int, prom: Path,
                             notify: NotifySocket) -> None:
    """laserjet, a third of the way through its job, is stalled; `other` is idle."""
    # Progress, mid-job: who, since when, how far (JSON and table).
    lj = service.status("laserjet")
    job = lj["job"]
    assert job["client"].startswith("127.0.0.1:") and job["since"].endswith("Z")
    assert (1 << 20) <= job["bytes_written"] < job["bytes_in"] <= JOB_BYTES
    assert lj["state"] == "serving" and lj["stall_reason"] == NOT_TAKING_DATA
    assert lj["stalled_since"].endswith("Z")
    other_status = service.status("other")
    assert (other_status["job"], other_status["stalled_since"], other_status["stall_reason"]) \
        == (None, None, None)
    table = render_status(service.status())
    assert f"STALLED since {lj['stalled_since']}: not taking data" in table
    assert f"job from {job['client']} since {job['since']}" in table
    # The page says it in words, at the top; /metrics and the textfile have it.
    page = http_get(http_port, "/")
    assert 'id="stall-laserjet"' in page and "laserjet is not printing" in page
    assert page.index('class="stall"') < page.index("<h2>Printers</h2>")
    assert 'id="stall-other"' not in page
    scraped = metrics(http_port)
    assert scraped['printer_supervisor_printer_stalled{printer="laserjet"}'] == 1
    assert scraped['printer_supervisor_printer_stalled{printer="other"}'] == 0
    assert scraped['printer_supervisor_stalls_total{printer="laserjet",'
                   'reason="not taking data"}'] == 1
    assert scraped['printer_supervisor_device_written_bytes_total{printer="laserjet"}'] \
        >= 1 << 20  # before the job ended
    assert scraped['printer_supervisor_jobs_finished_total{printer="laserjet"}'] == 0
    wait_until(lambda: 'printer_supervisor_printer_stalled{printer="laserjet"} 1'
               in prom.read_text(), what="the stall in the metrics file")
    written = 'printer_supervisor_device_written_bytes_total{printer="laserjet"} '
    assert int(prom.read_text().split(written)[1].split()[0]) >= 1 << 20
    wait_until(lambda: f"laserjet serving :{port} STALLED (not taking data)" in
               " | ".join(notify.statuses()), what="STATUS= saying laserjet is stalled")


# -- through the service ------------------------------------------------------------------------
def test_a_printer_that_stops_taking_data_is_shown_stalled_then_resumes(
        make_printer: Callable[..., VirtualPrinter], notify: NotifySocket,
        start_service: StartService, tmp_path: Path) -> None:
    laserjet, other = make_printer("usb/lp0"), make_printer("usb/lp1")
    port, other_port, http_port = free_port(), free_port(), free_port()
    service = start_service(
        [{"name": "laserjet", "device": str(laserjet.path), "port": port, "stall_timeout": 1,
          "bidirectional": False},
         {"name": "other", "device": str(other.path), "port": other_port}],
        http_listen=f"127.0.0.1:{http_port}", metrics_file=str(tmp_path / "ps.prom"))
    service.log.wait_for("listener_started", count=2)
    assert watch_tasks(service) == []  # no job, nothing ticking

    first, second = job_bytes(1), job_bytes(2, 256 << 10)
    client = Client(port, first)
    laserjet.wait_for_bytes(1 << 20)
    laserjet.pause()  # out of paper, a third of the way in

    stalled = service.log.wait_for("printer_stalled", printer="laserjet")
    assert stalled["level"] == "warning"
    assert stalled["reason"] == NOT_TAKING_DATA  # a pty answers no LPGETSTATUS: no guess
    assert 0 < stalled["pending_bytes"] <= JOB_BYTES - (1 << 20)
    shown_stalled_everywhere(service, port, http_port, tmp_path / "ps.prom", notify)

    # Meanwhile: another printer prints, and a client waiting behind the stall keeps its place.
    assert send_job(other_port, b"unaffected") == b""
    assert other.wait_for_bytes(10) == b"unaffected"
    waiting = Client(port, second)
    wait_until(lambda: service.status("laserjet")["queued"] == 1, what="a waiting client")

    laserjet.resume()  # paper added
    resumed = service.log.wait_for("printer_resumed", printer="laserjet")
    assert resumed["level"] == "info" and resumed["seconds"] > 0
    client.join()
    waiting.join()
    service.log.wait_for("job_finished", count=2, printer="laserjet")
    assert laserjet.wait_for_bytes(len(first) + len(second)) == first + second
    assert service.log.events("printer_stalled") == [stalled]  # once per stall
    assert service.log.events("job_failed") == []
    lj = service.status("laserjet")
    assert (lj["job"], lj["stalled_since"], lj["stall_reason"], lj["jobs"]) == (None, None,
                                                                                None, 2)
    scraped = metrics(http_port)
    assert scraped['printer_supervisor_printer_stalled{printer="laserjet"}'] == 0
    assert scraped['printer_supervisor_device_written_bytes_total{printer="laserjet"}'] == \
        len(first) + len(second)
    wait_until(lambda: notify.statuses()[-1].startswith(f"laserjet ready :{port}; other"),
               what="STATUS= without the stall")
    assert "STALLED" not in http_get(http_port, "/").split("<h2>Recent events</h2>")[0]
    assert watch_tasks(service) == []  # the job's watch ended with it


def test_the_reason_is_what_the_printers_port_status_says(
        make_printer: Callable[..., VirtualPrinter], start_service: StartService,
        monkeypatch: pytest.MonkeyPatch) -> None:
    laserjet = make_printer()
    tty = os.path.realpath(laserjet.path)
    answers = {"status": LP_PSELECD | LP_PERRORP | LP_POUTPA}  # paper empty

    def printer_ioctl(fd: int, request: int, buffer: bytearray) -> int:
        """usblp's LPGETSTATUS, for the laserjet's node only: others are ptys, as they are."""
        if request != portstatus.LPGETSTATUS or os.readlink(f"/proc/self/fd/{fd}") != tty:
            raise OSError(errno.ENOTTY, os.strerror(errno.ENOTTY))
        buffer[:4] = struct.pack("=i", answers["status"])
        return 0

    monkeypatch.setattr(portstatus, "ioctl", printer_ioctl)
    monkeypatch.setattr(forwarder, "STALL_ASK_S", 0.5)
    port = free_port()
    service = start_service([{"name": "laserjet", "device": str(laserjet.path), "port": port,
                              "stall_timeout": 1}])
    service.log.wait_for("listener_started")
    laserjet.pause()
    client = Client(port, job_bytes(3, 1 << 20))
    assert service.log.wait_for("printer_stalled")["reason"] == "out of paper"
    assert service.status("laserjet")["stall_reason"] == "out of paper"
    answers["status"] = LP_PERRORP  # paper in, but switched offline: asked again meanwhile
    wait_until(lambda: service.status("laserjet")["stall_reason"] == "offline",
               what="the reason to follow the printer")
    laserjet.resume()
    service.log.wait_for("printer_resumed")
    client.join()
    service.log.wait_for("job_finished")
    assert laserjet.wait_for_bytes(1 << 20) == job_bytes(3, 1 << 20)


def test_a_stalled_printer_does_not_make_its_client_idle(
        printer: VirtualPrinter, start_service: StartService) -> None:
    # The client sent its first part and is quiet while the printer is stalled for longer than
    # idle_timeout: the printer, not the client, held the job up. Once the printer took that
    # part, the client has its full idle_timeout again to send the rest.
    port = free_port()
    service = start_service([{"name": "lp", "device": str(printer.path), "port": port,
                              "stall_timeout": 1, "idle_timeout": 2}])
    service.log.wait_for("listener_started")
    head, rest = job_bytes(4, 100 << 10), job_bytes(5, 64 << 10)
    printer.pause()
    client = Client(port, head, hold=True)
    stalled = service.log.wait_for("printer_stalled")
    assert stalled["pending_bytes"] > 0
    # All of the first part is with the service: the client has nothing more to send yet.
    wait_until(lambda: service.status("lp")["job"]["bytes_in"] == len(head),
               what="the first part received")
    # Stalled for longer than idle_timeout (waited on, not slept: by the stall's own clock).
    began = datetime.fromisoformat(stalled["timestamp"].replace("Z", "+00:00")) - timedelta(
        seconds=stalled["seconds"])
    wait_until(lambda: datetime.now(UTC) - began > timedelta(seconds=2.5),
               what="a stall longer than idle_timeout")
    assert service.status("lp")["stall_reason"] == NOT_TAKING_DATA
    printer.resume()
    printer.wait_for_bytes(len(head))
    service.log.wait_for("printer_resumed")
    client.finish(rest)
    client.join()
    finished = service.log.wait_for("job_finished")
    assert finished["bytes_in"] == len(head) + len(rest)
    assert service.log.events("job_failed") == []
    assert printer.wait_for_bytes(len(head) + len(rest)) == head + rest


# -- the printer's words: LPGETSTATUS through its seam --------------------------------------------
@pytest.mark.parametrize(("bits", "reason"), [
    (HEALTHY, NOT_TAKING_DATA),  # all well, yet it takes nothing: no guess
    (HEALTHY | LP_POUTPA, "out of paper"),
    (LP_POUTPA, "out of paper"),  # paper out usually drops select and error too: paper first
    (LP_PERRORP, "offline"),  # not selected
    (LP_PSELECD, "printer error"),  # error line low
    (0, "offline"),  # not selected and in error: offline says more
    (HEALTHY | 0x40 | 0x80 | 0x07, NOT_TAKING_DATA),  # busy/ack and reserved bits: no reason
    (0x100 | HEALTHY | LP_POUTPA, "out of paper"),  # only the low byte is the port status
])
def test_the_port_status_bits_become_words(bits: int, reason: str,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[tuple[int, int]] = []

    def usblp(fd: int, request: int, buffer: bytearray) -> int:
        asked.append((fd, request))
        buffer[:4] = struct.pack("=i", bits)
        return 0

    monkeypatch.setattr(portstatus, "ioctl", usblp)
    assert portstatus.read_reason(7) == reason
    assert asked == [(7, 0x060B)]  # LPGETSTATUS, include/uapi/linux/lp.h


@pytest.mark.parametrize("error", [errno.ENOTTY, errno.EINVAL, errno.EIO, errno.ENODEV])
def test_a_node_that_cannot_say_is_not_taking_data(error: int,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    def refuses(fd: int, request: int, buffer: bytearray) -> int:
        raise OSError(error, os.strerror(error))

    monkeypatch.setattr(portstatus, "ioctl", refuses)
    assert portstatus.read_port_status(7) is None
    assert portstatus.read_reason(7) == NOT_TAKING_DATA


def test_a_real_pty_and_a_real_fifo_answer_no_port_status(tmp_path: Path) -> None:
    master, slave = os.openpty()
    os.mkfifo(tmp_path / "fifo")
    reader = os.open(tmp_path / "fifo", os.O_RDONLY | os.O_NONBLOCK)
    writer = os.open(tmp_path / "fifo", os.O_WRONLY | os.O_NONBLOCK)
    try:
        for fd in (slave, writer):
            assert portstatus.read_port_status(fd) is None
            assert portstatus.read_reason(fd) == NOT_TAKING_DATA
    finally:
        for fd in (master, slave, reader, writer):
            os.close(fd)


def test_no_port_status_at_all_is_not_taking_data() -> None:
    assert stall_reason(None) == NOT_TAKING_DATA


# -- when a wait becomes a stall (pure) -----------------------------------------------------------
@pytest.mark.parametrize(("steps", "expected"), [
    # (now, blocked_since) at each tick → what each tick reports
    ([(1.0, None), (2.0, None)], [None, None]),  # never waiting for the printer
    ([(1.0, 0.5), (2.0, 0.5), (3.0, 0.5)], [None, None, None]),  # under the timeout (5 s)
    ([(5.0, 0.0), (6.0, 0.0), (7.0, 0.0)], [Stalled(0.0), None, None]),  # once per stall
    ([(5.0, 0.0), (6.0, None)], [Stalled(0.0), Resumed(0.0, 6.0)]),  # bytes moved
    ([(5.0, 0.0), (6.0, 5.5)], [Stalled(0.0), Resumed(0.0, 6.0)]),  # moved, waits anew
    ([(5.0, 0.0), (6.0, 5.5), (11.0, 5.5)], [Stalled(0.0), Resumed(0.0, 6.0), Stalled(5.5)]),
    ([(4.0, 0.0), (6.0, 2.0), (7.0, 2.0)], [None, None, Stalled(2.0)]),  # each wait on its own
])
def test_a_wait_becomes_a_stall_after_the_timeout_and_ends_when_bytes_move(
        steps: list[tuple[float, float | None]], expected: list[object]) -> None:
    watch = StallWatch(5.0)
    assert [watch.observe(now, since) for now, since in steps] == expected


def test_status_line_says_which_printer_is_stalled_and_why() -> None:
    base = {"product": None, "serial": None, "device": None, "bidirectional": True,
            "firmware": None, "jobs": 0, "bytes": 0, "queued": 1, "error": None,
            "since": "2026-12-01T12:00:00Z"}
    printers = [PrinterStatus(name="laserjet", state="serving", port=9101,
                              stalled_since="2026-12-01T12:01:00Z", stall_reason="out of paper",
                              **base),  # type: ignore[arg-type]
                PrinterStatus(name="other", state="ready", port=9102,
                              **base)]  # type: ignore[arg-type]
    assert status_line(printers) == ("laserjet serving :9101 STALLED (out of paper); "
                                     "other ready :9102")


@pytest.mark.parametrize(("reason", "words"), [
    ("out of paper", "laserjet is not printing: it is out of paper.</strong> Add paper"),
    ("offline", "laserjet is not printing: it is offline.</strong> Put it online"),
    ("printer error", "laserjet is not printing: it reports an error.</strong> Look at its "
                      "panel"),
    (NOT_TAKING_DATA, "laserjet is not printing: it takes no data and gives no reason."),
])
def test_the_page_says_in_words_which_printer_stopped_why_and_what_to_do(
        reason: str, words: str) -> None:
    printer = {"name": "laserjet", "state": "serving", "port": 9101, "jobs": 0, "queued": 2,
               "error": None, "since": "2026-12-01T12:00:00Z", "stalled_since":
               "2026-12-01T12:00:07Z", "stall_reason": reason,
               "job": {"client": "192.168.1.20:51234", "since": "2026-12-01T12:00:00Z",
                       "bytes_in": 3 << 20, "bytes_written": 1 << 20}}
    idle = {**printer, "name": "other", "state": "ready", "stalled_since": None,
            "stall_reason": None, "job": None, "queued": 0}
    page = render_page({"daemon": {"version": "1", "uptime_s": 5, "event_source": "udev"},
                        "printers": [printer, idle]}, [], "printserver")
    notice = page.split('<div class="stall" id="stall-laserjet" role="alert">')[1]
    notice = notice.split("</div>")[0]
    assert words in notice
    assert "since 2026-12-01 12:00:07 UTC; 2.0 MiB of the job wait here for it, and 2 more " \
           "client(s) wait their turn." in notice
    assert page.count('class="stall"') == 1  # only the stalled one
    assert "from 192.168.1.20:51234" in page and "1.0 MiB sent to the printer" in page
    assert f"stalled: {reason}" in page
