"""The byte pump of one job: client socket ⇄ printer device, run in a thread with blocking poll.

Both fds are non-blocking; the pump tries each transfer first and polls only when one would
block, so a fast sink costs one recv and one write per chunk. When the device is a pipe (a FIFO
feeding another program) the kernel moves the bytes itself with splice(2): no copy through
Python at all. `abort()` from any thread wakes the pump.

Progress is plain integers other threads may read at any time (`bytes_received`, `bytes_in`,
`bytes_out`, `device_blocked_since()`): the loop looks at them when asked and once a second
while a job runs, so the hot path pays an addition per chunk and nothing else.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import socket
import stat
import threading
import time
from dataclasses import dataclass
from typing import Final

CHUNK_BYTES: Final = 1 << 20  # per read from the client: large reads are what beat p910nd
BACKCHANNEL_CHUNK_BYTES: Final = 64 << 10
DRAIN_QUIET_S: Final = 0.25  # after the client's EOF, relay printer data until quiet this long
DRAIN_MAX_S: Final = 2.0  # ...but never longer than this (CUPS waits for our close)
DEVICE_EOF_PAUSE_S: Final = 0.1  # a device read returned EOF: look again after this long

_IN: Final = select.POLLIN | select.POLLPRI
_OUT: Final = select.POLLOUT
_GONE: Final = select.POLLERR | select.POLLHUP | select.POLLNVAL
#: errnos meaning the printer went away (unplugged, usblp detached, pty master closed).
DEVICE_GONE_ERRNOS: Final = frozenset({errno.EIO, errno.ENODEV, errno.ENXIO, errno.EPIPE})


class JobError(Exception):
    """A job that could not finish; `device_lost` when the printer itself went away.

    `kind` sorts it for the metrics: client (its connection failed), device (the printer
    failed), timeout (the client went quiet), aborted (the service ended it).
    """

    def __init__(self, message: str, *, device_lost: bool = False,
                 kind: str | None = None) -> None:
        super().__init__(message)
        self.device_lost = device_lost
        self.kind = kind or ("device" if device_lost else "client")


@dataclass(frozen=True)
class PumpResult:
    """What a finished job moved: client→printer and printer→client bytes."""

    bytes_in: int
    bytes_out: int


class Pump:
    """Copies one client's job to the device, and the device's replies back when bidirectional."""

    def __init__(self, client: socket.socket, device_fd: int, *, backchannel: bool,
                 idle_timeout_s: float, buffer: memoryview | None = None) -> None:
        self._sock = client
        self._dev = device_fd
        self._backchannel = backchannel
        self._idle_timeout_s = idle_timeout_s
        # The wake-up pipe and the poll object are made only when the job needs a thread.
        self._wake_r = self._wake_w = -1
        self._wake_lock = threading.Lock()  # abort() never writes to a closed, reused fd
        self._wake_closed = False
        self._abort_reason: str | None = None
        self._poll = select.poll()
        # One job at a time per printer: its forwarder lends the same buffer to every job.
        self._in_buf = buffer if buffer is not None else memoryview(bytearray(CHUNK_BYTES))
        self._to_dev = self._in_buf[:0]
        self._out_buf = memoryview(bytearray(BACKCHANNEL_CHUNK_BYTES if backchannel else 0))
        self._to_client = self._out_buf[:0]
        self._client_eof = False
        # A pipe as the device: socket → pipe by splice(2), zero-copy (usblp has no splice).
        self._splice = stat.S_ISFIFO(os.fstat(device_fd).st_mode)
        self._device_full = False  # a splice would block on the device, not on the client
        self._client_writable = True
        self._dev_read_after = 0.0
        self._last_client_rx = time.monotonic()
        self.bytes_received = 0  # from the client
        self.bytes_in = 0  # accepted by the printer
        self.bytes_out = 0  # read from the printer and relayed
        # (bytes_in then, monotonic time): since then the pump waits for the printer, which has
        # taken nothing more; one attribute, so that another thread reads a consistent pair.
        self._device_wait: tuple[int, float] | None = None

    # -- control from other threads ------------------------------------------------------------
    def device_blocked_since(self) -> float | None:
        """Since when (time.monotonic()) the printer has taken no byte while data waits for it;
        None when the job is not waiting for the printer. Safe from any thread."""
        wait = self._device_wait
        if wait is None or wait[0] != self.bytes_in:  # it took bytes since: not blocked
            return None
        return wait[1]

    def abort(self, reason: str) -> None:
        """Stop the job as soon as possible; `run` then raises JobError(reason)."""
        if self._abort_reason is None:
            self._abort_reason = reason
        with self._wake_lock:
            if self._wake_w >= 0 and not self._wake_closed:
                with contextlib.suppress(BlockingIOError):  # already full: it is awake
                    os.write(self._wake_w, b"!")

    # -- the loop ----------------------------------------------------------------------------
    def try_inline(self, budget_bytes: int) -> PumpResult | None:
        """The whole job now, on the caller's thread, if nothing would block: a small job on a
        ready device needs no thread. None when something would block, the job is larger than
        `budget_bytes`, or replies must be drained: `run` (in a thread) then goes on from here.
        """
        self._sock.setblocking(False)
        while not self._client_eof or self._to_dev:
            self._check_abort()
            if self.bytes_in > budget_bytes or not self._step():
                return None
        if self._backchannel or not _poll_now(self._dev, _OUT):
            return None  # replies to drain, or the last write still in flight (usblp)
        return PumpResult(self.bytes_in, self.bytes_out)

    def run(self) -> PumpResult:
        """Move bytes until the client's EOF and the drain; raise JobError on failure."""
        self._sock.setblocking(False)
        with self._wake_lock:
            self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            while not self._client_eof or self._to_dev:
                self._check_abort()
                if not self._step():
                    idle_deadline = self._idle_deadline()
                    if idle_deadline is not None and time.monotonic() >= idle_deadline:
                        raise JobError(
                            f"client sent nothing for {self._idle_timeout_s:g} s (idle_timeout)",
                            kind="timeout")
                    self._wait(idle_deadline)
            self._flush_device()
            if self._backchannel and self._client_writable:
                self._drain()
            return PumpResult(self.bytes_in, self.bytes_out)
        finally:
            with self._wake_lock:
                self._wake_closed = True
                os.close(self._wake_r)
                os.close(self._wake_w)

    def _step(self) -> bool:
        """One round of attempts; True when any bytes moved."""
        moved = False
        if not self._to_dev and not self._client_eof:
            moved |= self._splice_client() if self._splice else self._recv_client()
        if self._to_dev:
            moved |= self._write_device()
        if self._backchannel:
            moved |= self._relay_backchannel()
        return moved

    def _flush_device(self) -> None:
        """Wait until the device has taken the last write before the node is closed.

        usblp answers a non-blocking write once the transfer is queued, and close() cancels a
        transfer still in flight: the end of the job would be lost. It reports POLLOUT again
        when that transfer is done.
        """
        _register(self._poll, self._sock.fileno(), 0)
        self._poll.register(self._wake_r, _IN)
        self._poll.register(self._dev, _OUT)
        self._waiting_for_device(True, time.monotonic())
        while True:
            self._check_abort()
            for fd, events in self._poll.poll():
                if fd != self._dev:
                    continue
                if events & _GONE:
                    raise JobError("printer went away before it took the end of the job",
                                   device_lost=True)
                return

    def _relay_backchannel(self) -> bool:
        moved = False
        if not self._to_client and time.monotonic() >= self._dev_read_after:
            moved |= self._read_device()
        if self._to_client:
            moved |= self._send_client()
        return moved

    def _drain(self) -> None:
        """Client done sending: relay what the printer still says until it is quiet."""
        end = time.monotonic() + DRAIN_MAX_S
        quiet_until = time.monotonic() + DRAIN_QUIET_S
        while self._client_writable and time.monotonic() < min(end, quiet_until):
            self._check_abort()
            if self._relay_backchannel():
                quiet_until = time.monotonic() + DRAIN_QUIET_S
            else:
                self._wait(min(end, quiet_until))

    # -- transfers: each returns True when it moved bytes, False when it would block ---------------
    def _recv_client(self) -> bool:
        try:
            n = self._sock.recv_into(self._in_buf)
        except BlockingIOError:
            return False
        except InterruptedError:
            return True
        except OSError as exc:
            raise JobError(f"client connection failed: {_describe(exc)}") from None
        self._last_client_rx = time.monotonic()
        if n == 0:
            self._client_eof = True
        self.bytes_received += n
        self._to_dev = self._in_buf[:n]
        return True

    def _splice_client(self) -> bool:
        try:
            n = os.splice(self._sock.fileno(), self._dev, CHUNK_BYTES,
                          flags=os.SPLICE_F_MOVE | os.SPLICE_F_NONBLOCK)
        except BlockingIOError:
            # Either side may be the one that would block: ask the pipe, it is cheap.
            self._device_full = not _poll_now(self._dev, _OUT)
            return False
        except InterruptedError:
            return True
        except OSError as exc:
            if exc.errno in (errno.EINVAL, errno.ENOSYS, errno.EPERM):
                self._splice = False  # this pair, kernel or seccomp filter cannot: copy instead
                return True
            if exc.errno in DEVICE_GONE_ERRNOS:
                raise JobError(f"printer write failed: {_describe(exc)}",
                               device_lost=True) from None
            raise JobError(f"client connection failed: {_describe(exc)}") from None
        self._last_client_rx = time.monotonic()
        self._client_eof = n == 0
        self.bytes_received += n
        self.bytes_in += n
        return True

    def _write_device(self) -> bool:
        try:
            n = os.write(self._dev, self._to_dev)
        except BlockingIOError:
            return False
        except InterruptedError:
            return True
        except OSError as exc:
            raise JobError(f"printer write failed: {_describe(exc)}",
                           device_lost=exc.errno in DEVICE_GONE_ERRNOS, kind="device") from None
        self.bytes_in += n
        self._to_dev = self._to_dev[n:]
        return n > 0

    def _read_device(self) -> bool:
        try:
            n = os.readv(self._dev, [self._out_buf])
        except BlockingIOError:
            return False
        except InterruptedError:
            return True
        except OSError as exc:
            if exc.errno in DEVICE_GONE_ERRNOS:
                raise JobError(f"printer read failed: {_describe(exc)}", device_lost=True) from None
            self._backchannel = False  # e.g. EINVAL: a unidirectional usblp interface
            return False
        if n == 0:  # EOF (e.g. /dev/null): no busy loop, look again a little later
            self._dev_read_after = time.monotonic() + DEVICE_EOF_PAUSE_S
            return False
        self._to_client = self._out_buf[:n]
        return True

    def _send_client(self) -> bool:
        try:
            n = self._sock.send(self._to_client)
        except BlockingIOError:
            return False
        except InterruptedError:
            return True
        except OSError:
            # The client stopped reading (reset or gone): printer replies have nowhere to go.
            self._client_writable = False
            self._backchannel = False
            self._to_client = self._out_buf[:0]
            return False
        self.bytes_out += n
        self._to_client = self._to_client[n:]
        return n > 0

    # -- waiting -----------------------------------------------------------------------------
    def _idle_deadline(self) -> float | None:
        """When a silent client is given up on; None while we, not the client, are the holdup."""
        if self._to_dev or self._client_eof or self._device_full:
            return None
        return self._last_client_rx + self._idle_timeout_s

    def _wait(self, deadline: float | None) -> None:
        poll = self._poll
        device_busy = bool(self._to_dev) or self._device_full
        self._device_full = False
        sock_events = (0 if device_busy or self._client_eof else _IN) | (
            _OUT if self._to_client else 0
        )
        dev_events = _OUT if device_busy else 0
        now = time.monotonic()
        self._waiting_for_device(device_busy, now)
        if self._backchannel and not self._to_client:
            if now >= self._dev_read_after:
                dev_events |= _IN
            else:
                deadline = min(deadline or self._dev_read_after, self._dev_read_after)
        poll.register(self._wake_r, _IN)
        _register(poll, self._sock.fileno(), sock_events)
        _register(poll, self._dev, dev_events)
        timeout_ms = None if deadline is None else max(0, int((deadline - now) * 1000) + 1)
        poll.poll(timeout_ms)
        if device_busy:
            # The printer, not the client, held the job up meanwhile: the client's idle clock
            # starts again (a stalled printer never makes its client "idle").
            self._last_client_rx = max(self._last_client_rx, time.monotonic())

    def _waiting_for_device(self, waiting: bool, now: float) -> None:
        """Note whether the pump now waits for the printer; a wait goes on while the printer
        takes nothing, and starts anew once it took a byte."""
        if not waiting:
            self._device_wait = None
        elif self._device_wait is None or self._device_wait[0] != self.bytes_in:
            self._device_wait = (self.bytes_in, now)

    def _check_abort(self) -> None:
        if self._abort_reason is not None:
            raise JobError(self._abort_reason, kind="aborted")


def _register(poll: select.poll, fd: int, events: int) -> None:
    if events:
        poll.register(fd, events)
    else:
        with contextlib.suppress(KeyError):
            poll.unregister(fd)


def _poll_now(fd: int, events: int) -> bool:
    """Is `fd` ready for `events` right now?"""
    probe = select.poll()
    probe.register(fd, events)
    return bool(probe.poll(0))


def _describe(exc: OSError) -> str:
    name = errno.errorcode.get(exc.errno or 0, "error")
    return f"{name} ({exc.strerror or exc})"
