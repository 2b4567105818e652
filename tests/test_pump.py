"""The pump on its own: real fds, no service around it."""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import threading
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
