"""The pump on its own: real fds, no service around it."""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from supervisor.workers.pump import JobError, Pump, PumpResult

F_GETPIPE_SZ = 1032


@dataclass
class EmptyJob:
    """A client that sent nothing and half-closed, and a device (a pipe) that is full: all
    that is left for the pump is to wait until the device took its last write."""

    pump: Pump
    device_reader: int


@pytest.fixture
def empty_job_on_a_full_device() -> Iterator[EmptyJob]:
    read_end, write_end = os.pipe2(os.O_NONBLOCK)
    os.write(write_end, b"\0" * fcntl.fcntl(write_end, F_GETPIPE_SZ))  # not writable now
    ours, client = socket.socketpair()
    client.shutdown(socket.SHUT_WR)
    yield EmptyJob(Pump(ours, write_end, backchannel=False, idle_timeout_s=60), read_end)
    for fd in (read_end, write_end):
        with contextlib.suppress(OSError):  # a test may have closed it
            os.close(fd)
    ours.close()
    client.close()


def run_in_thread(pump: Pump) -> tuple[threading.Thread, list[PumpResult | JobError]]:
    outcome: list[PumpResult | JobError] = []

    def run() -> None:
        try:
            outcome.append(pump.run())
        except JobError as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def test_the_node_is_not_released_before_the_device_took_the_last_write(
        empty_job_on_a_full_device: EmptyJob) -> None:
    # usblp answers a non-blocking write before the printer has the data, and a close cancels
    # it: the pump must wait for POLLOUT (here: a full pipe) before it returns and we close.
    job = empty_job_on_a_full_device
    thread, outcome = run_in_thread(job.pump)
    thread.join(0.3)
    assert thread.is_alive(), "returned while the device still held the last write"
    os.read(job.device_reader, 1 << 20)  # the printer takes it
    thread.join(10)
    assert outcome == [PumpResult(0, 0)]


def test_abort_ends_a_flush_that_never_completes(empty_job_on_a_full_device: EmptyJob) -> None:
    job = empty_job_on_a_full_device
    thread, outcome = run_in_thread(job.pump)
    job.pump.abort("printer unplugged")
    thread.join(10)
    assert [str(e) for e in outcome] == ["printer unplugged"]
    job.pump.abort("again, after the end")  # harmless: no fd of someone else's is written


def test_a_printer_gone_during_the_flush_is_device_lost(
        empty_job_on_a_full_device: EmptyJob) -> None:
    job = empty_job_on_a_full_device
    os.close(job.device_reader)  # the reader went away: the write end reports POLLERR
    with pytest.raises(JobError) as failed:
        job.pump.run()
    assert failed.value.device_lost


def test_abort_after_the_end_writes_to_no_reused_fd() -> None:
    ours, client = socket.socketpair()
    client.shutdown(socket.SHUT_WR)
    device = os.open(os.devnull, os.O_WRONLY)
    pump = Pump(ours, device, backchannel=False, idle_timeout_s=60)
    assert pump.run() == PumpResult(0, 0)
    read_end, write_end = os.pipe2(os.O_NONBLOCK)  # likely the wake pipe's old numbers
    pump.abort("too late")
    with pytest.raises(BlockingIOError):
        os.read(read_end, 1)  # nothing was written into someone else's pipe
    for fd in (read_end, write_end, device):
        os.close(fd)
    ours.close()
    client.close()


def _device_pipe() -> tuple[int, int]:
    read_end, write_end = os.pipe2(os.O_NONBLOCK)
    return read_end, write_end


def test_a_small_ready_job_is_done_inline_without_a_thread() -> None:
    read_end, write_end = _device_pipe()
    ours, client = socket.socketpair()
    try:
        client.sendall(b"small job")
        client.shutdown(socket.SHUT_WR)
        pump = Pump(ours, write_end, backchannel=False, idle_timeout_s=60)
        assert pump.try_inline(1 << 20) == PumpResult(9, 0)
        assert os.read(read_end, 100) == b"small job"
    finally:
        for fd in (read_end, write_end):
            os.close(fd)
        ours.close()
        client.close()


@pytest.mark.parametrize("case", ["client-not-done", "over-budget", "device-full"])
def test_what_would_block_goes_on_in_the_thread_from_where_it_stopped(case: str) -> None:
    read_end, write_end = _device_pipe()
    ours, client = socket.socketpair()
    job = b"x" * 3000
    try:
        client.sendall(job[:1000])
        if case != "client-not-done":
            client.sendall(job[1000:])
            client.shutdown(socket.SHUT_WR)
        if case == "device-full":
            filler = fcntl.fcntl(write_end, F_GETPIPE_SZ)
            os.write(write_end, b"\0" * filler)
        budget = 500 if case == "over-budget" else 1 << 20
        pump = Pump(ours, write_end, backchannel=False, idle_timeout_s=60)
        assert pump.try_inline(budget) is None
        thread, outcome = run_in_thread(pump)
        if case == "client-not-done":
            client.sendall(job[1000:])
            client.shutdown(socket.SHUT_WR)
        received = b""
        while len(received) < len(job) + (filler if case == "device-full" else 0):
            with contextlib.suppress(BlockingIOError):
                received += os.read(read_end, 65536)
        thread.join(10)
        assert outcome == [PumpResult(len(job), 0)]
        assert received[-len(job):] == job
    finally:
        for fd in (read_end, write_end):
            os.close(fd)
        ours.close()
        client.close()


def test_a_bidirectional_job_drains_the_replies_in_the_thread() -> None:
    device, printer = socket.socketpair()  # readable and writable, like a bidirectional usblp
    ours, client = socket.socketpair()
    try:
        device.setblocking(False)
        client.sendall(b"@PJL INFO STATUS\r\n")
        client.shutdown(socket.SHUT_WR)
        pump = Pump(ours, device.fileno(), backchannel=True, idle_timeout_s=60)
        assert pump.try_inline(1 << 20) is None  # the printer may still answer: not inline
        printer.sendall(b"CODE=10001\r\n")
        thread, outcome = run_in_thread(pump)
        thread.join(10)
        assert outcome == [PumpResult(18, 12)]
        assert client.recv(100) == b"CODE=10001\r\n"
    finally:
        for sock in (device, printer, ours, client):
            sock.close()


@pytest.mark.parametrize("splice", [False, True], ids=["copy", "splice"])
def test_a_wait_for_the_printer_is_told_with_its_start_and_ends_when_it_takes_bytes(
        splice: bool) -> None:
    # What the stall watch reads from another thread: since when the printer has taken
    # nothing while data waits (a full pipe here), None once it takes bytes again.
    read_end, write_end = _device_pipe()
    ours, client = socket.socketpair()
    filler = fcntl.fcntl(write_end, F_GETPIPE_SZ)
    os.write(write_end, b"\0" * filler)
    job = b"j" * 5000
    try:
        client.sendall(job)
        pump = Pump(ours, write_end, backchannel=False, idle_timeout_s=60)
        if not splice:
            pump._splice = False  # a character device: recv, then write
        assert pump.device_blocked_since() is None
        thread, outcome = run_in_thread(pump)
        wait_s = 10.0
        deadline = time.monotonic() + wait_s
        while pump.device_blocked_since() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        since = pump.device_blocked_since()
        assert since is not None and pump.bytes_in == 0
        assert pump.bytes_received == (0 if splice else len(job))  # splice: still in the socket
        assert pump.device_blocked_since() == since  # the same wait, not a new one
        os.read(read_end, filler)  # the printer takes data again
        while pump.bytes_in < len(job) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert pump.device_blocked_since() is None  # waiting for the client now, not the printer
        client.shutdown(socket.SHUT_WR)
        thread.join(wait_s)
        assert outcome == [PumpResult(len(job), 0)] and pump.bytes_received == len(job)
        assert os.read(read_end, len(job) + 1) == job
    finally:
        for fd in (read_end, write_end):
            os.close(fd)
        ours.close()
        client.close()


def test_a_printer_that_held_the_job_up_does_not_make_the_client_idle() -> None:
    # The client sent its part and has nothing more yet; the printer takes nothing for longer
    # than idle_timeout. Once it has taken the part, the client gets its whole idle_timeout
    # again: the time the printer held the job up is not the client's silence.
    read_end, write_end = _device_pipe()
    ours, client = socket.socketpair()
    filler = fcntl.fcntl(write_end, F_GETPIPE_SZ)
    os.write(write_end, b"\0" * filler)
    idle_s = 1.0
    try:
        client.sendall(b"part one,")
        pump = Pump(ours, write_end, backchannel=False, idle_timeout_s=idle_s)
        pump._splice = False
        thread, outcome = run_in_thread(pump)
        deadline = time.monotonic() + 10
        while pump.device_blocked_since() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        blocked = pump.device_blocked_since()
        assert blocked is not None
        while time.monotonic() < blocked + 1.5 * idle_s:  # the printer holds it up past idle_s
            time.sleep(0.01)
        os.read(read_end, filler)
        while pump.bytes_in < 9 and time.monotonic() < deadline:
            time.sleep(0.001)
        client.sendall(b" part two")  # at once: well within idle_s of the printer taking it
        client.shutdown(socket.SHUT_WR)
        thread.join(10)
        assert outcome == [PumpResult(18, 0)]
        assert os.read(read_end, 100) == b"part one, part two"
    finally:
        for fd in (read_end, write_end):
            os.close(fd)
        ours.close()
        client.close()
