"""The pump on its own: real fds, no service around it."""

from __future__ import annotations

import fcntl
import os
import socket
import threading

import pytest

from supervisor.workers.pump import JobError, Pump, PumpResult

F_GETPIPE_SZ = 1032


def full_pipe() -> tuple[int, int]:
    """A pipe whose buffer is full: its write end is not writable until someone reads."""
    read_end, write_end = os.pipe2(os.O_NONBLOCK)
    size = fcntl.fcntl(write_end, F_GETPIPE_SZ)
    os.write(write_end, b"\0" * size)
    return read_end, write_end


def test_the_node_is_not_released_before_the_device_took_the_last_write() -> None:
    # usblp answers a non-blocking write before the printer has the data, and a close cancels
    # it: the pump must wait for POLLOUT (here: a full pipe) before it returns and we close.
    read_end, write_end = full_pipe()
    ours, client = socket.socketpair()
    client.shutdown(socket.SHUT_WR)  # an empty job: the flush is all that is left to do
    pump = Pump(ours, write_end, backchannel=False, idle_timeout_s=60)
    results: list[PumpResult] = []
    thread = threading.Thread(target=lambda: results.append(pump.run()))
    thread.start()
    thread.join(0.3)
    assert thread.is_alive(), "returned while the device still held the last write"
    os.read(read_end, 1 << 20)  # the printer takes it
    thread.join(10)
    assert results == [PumpResult(0, 0)]
    for fd in (read_end, write_end):
        os.close(fd)
    ours.close()
    client.close()


def test_abort_ends_a_flush_that_never_completes() -> None:
    read_end, write_end = full_pipe()
    ours, client = socket.socketpair()
    client.shutdown(socket.SHUT_WR)
    pump = Pump(ours, write_end, backchannel=False, idle_timeout_s=60)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            pump.run()
        except JobError as exc:
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    pump.abort("printer unplugged")
    thread.join(10)
    assert [str(e) for e in errors] == ["printer unplugged"]
    pump.abort("again, after the end")  # harmless: no fd of someone else's is written
    for fd in (read_end, write_end):
        os.close(fd)
    ours.close()
    client.close()


def test_a_printer_gone_during_the_flush_is_device_lost() -> None:
    read_end, write_end = full_pipe()
    ours, client = socket.socketpair()
    client.shutdown(socket.SHUT_WR)
    pump = Pump(ours, write_end, backchannel=False, idle_timeout_s=60)
    os.close(read_end)  # the reader went away: the write end reports POLLERR
    with pytest.raises(JobError) as failed:
        pump.run()
    assert failed.value.device_lost
    os.close(write_end)
    ours.close()
    client.close()


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
