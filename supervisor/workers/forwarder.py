"""The AppSocket/JetDirect forwarder of a printer: listeners, client queue, one job at a time."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import mmap
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol, TypeVar

from supervisor.config.settings import PrinterSettings
from supervisor.core.stall import Resumed, Stalled, StallWatch
from supervisor.observe.fold import FoldedLog
from supervisor.observe.log import get_logger
from supervisor.sources.listeners import bind_listeners, format_address
from supervisor.workers.device import DeviceOpenError, open_device
from supervisor.workers.portstatus import read_reason
from supervisor.workers.pump import CHUNK_BYTES, JobError, Pump, PumpResult

ACCEPT_BATCH: Final = 256  # accepted per wake-up before other work gets a turn
ACCEPT_PAUSE_S: Final = 0.5  # out of file descriptors (EMFILE): accept again after this
INLINE_BUDGET_BYTES: Final = 1 << 20  # a job this small may be served on the loop itself
BIND_FIRST_DELAY_S: Final = 1.0
BIND_MAX_DELAY_S: Final = 30.0
#: While a job runs in its thread: how often its progress is looked at (the metrics file's
#: byte counters move this often) and a stall looked for. No tick while no job runs.
PROGRESS_TICK_S: Final = 1.0
#: While a stall lasts, the printer's port status is asked again this often.
STALL_ASK_S: Final = 5.0

T = TypeVar("T")


@dataclass(frozen=True)
class JobOutcome:
    """How a job ended, for the printer's counters and state."""

    client: str
    bytes_in: int  # written to the printer
    ok: bool
    device_lost: bool = False
    bytes_out: int = 0  # read from the printer and relayed
    seconds: float = 0.0
    failure: str | None = None  # why it failed (JobError.kind), None when it finished


@dataclass(eq=False)
class Waiting:
    """An accepted client waiting for the printer; it is a job once it has sent a byte."""

    sock: socket.socket
    client: str  # "address:port", for the log
    host: str  # its address: the per-address cap, folded log lines
    address: str  # as accepted (IPv4-mapped, scope id): what `allow` is checked against
    accepted: float  # time.monotonic(): its idle clock starts here
    sent: bool = False  # its first byte is here (peeked, not read): it waits for its turn


class RunningJob:
    """The job a forwarder serves now: who, since when, how far, and a stall if there is one.

    The byte counts are the pump's own integers, read when asked (status, a scrape, the tick).
    """

    def __init__(self, client: str) -> None:
        self.client = client
        self.started = time.time()  # Unix time
        self.pump: Pump | None = None  # once the device is open
        self.stall_began: float | None = None  # time.monotonic(): the printer took nothing since
        self.stalled_since: float | None = None  # the same as Unix time, for people
        self.stall_reason: str | None = None

    @property
    def bytes_received(self) -> int:
        """From the client so far."""
        return self.pump.bytes_received if self.pump else 0

    @property
    def bytes_written(self) -> int:
        """Accepted by the printer so far."""
        return self.pump.bytes_in if self.pump else 0

    @property
    def bytes_read(self) -> int:
        """Read from the printer and relayed to the client so far."""
        return self.pump.bytes_out if self.pump else 0

    @property
    def pending(self) -> int:
        """Received from the client and not yet taken by the printer."""
        return self.bytes_received - self.bytes_written


class ForwarderOwner(Protocol):
    """What a forwarder reports to the printer that owns it."""

    async def job_started(self, job: RunningJob) -> None: ...
    async def job_ended(self, outcome: JobOutcome) -> None: ...
    def job_progressed(self) -> None: ...
    def stall_changed(self, *, began: bool) -> None: ...
    def stall_timeout(self) -> float: ...
    def listener_error(self, error: str | None) -> None: ...
    def queue_length(self, waiting: int) -> None: ...
    def refused(self, reason: str) -> None: ...


class Forwarder:
    """Serves one printer's port; `run` until cancelled, `stop` for a graceful end."""

    def __init__(self, settings: PrinterSettings, *, device: Path, port: int,
                 bind: tuple[str, ...], owner: ForwarderOwner,
                 inherited: Sequence[Waiting] = ()) -> None:
        self.settings = settings
        self.device = device
        self.port = port
        self.bind = bind
        self._owner = owner
        self._log = get_logger("supervisor.forwarder").bind(printer=settings.name)
        self._folded = FoldedLog(self._log)
        self._waiting: list[Waiting] = []  # in accept order: the order jobs are served in
        # Clients a reload's predecessor had waiting: checked against these settings and
        # watched once the port listens (they keep their place and their idle clock).
        self._inherited = list(inherited)
        self._someone_sent = asyncio.Event()
        self._new_waiting = asyncio.Event()  # the idle sweep has a new deadline
        self._listeners: list[socket.socket] = []
        self._accepting: list[asyncio.Task[None]] = []
        self._pump: Pump | None = None
        # The pump's 1 MiB, mapped at the first job and lent to each; emptied after each.
        self._buffer: mmap.mmap | None = None
        self._jobs: asyncio.Task[None] | None = None
        self._no_job = asyncio.Event()
        self._no_job.set()
        self._stopping = False
        self._stop_reason = "service stopping"

    # -- lifecycle ---------------------------------------------------------------------------
    async def run(self) -> None:
        """Bind (retrying while the port is taken), then accept and serve until cancelled."""
        try:
            await self._bind_with_retry()
            if self._stopping:
                return
            self._accept_on()
            self._take_inherited()
            self._accepting = [asyncio.create_task(self._idle_sweep())]
            self._jobs = asyncio.create_task(self._job_loop())
            await self._jobs
        finally:
            self._close_listeners()
            self._drop_waiting()

    async def stop(self, *, grace_s: float, reason: str,
                   hand_over: bool = False) -> list[Waiting]:
        """Stop accepting now; let a running job finish within `grace_s`, then abort it.

        With `hand_over` (a reload changed this printer) the waiting clients are not closed but
        returned, in their order, for the printer's next forwarder to check and serve."""
        self._stopping = True
        self._stop_reason = reason
        self._close_listeners()
        kept = self._release_waiting() if hand_over else []
        self._drop_waiting()
        if not self._no_job.is_set():
            try:
                async with asyncio.timeout(grace_s):  # not wait_for: it can swallow a cancel
                    await self._no_job.wait()
            except TimeoutError:
                if self._pump is not None:
                    self._pump.abort(reason)
                elif self._jobs is not None:  # still waiting for the device to open
                    self._jobs.cancel()
                await self._no_job.wait()
        return kept

    # -- listening ---------------------------------------------------------------------------
    async def _bind_with_retry(self) -> None:
        delay = BIND_FIRST_DELAY_S
        last_error = None
        while not self._stopping:
            try:
                self._listeners = bind_listeners(self.bind, self.port)
            except OSError as exc:
                error = _bind_error(exc, self.port)
                if error != last_error:
                    self._log.error("listener_failed", port=self.port, error=error,
                                    retry_s=delay)
                    self._owner.listener_error(error)
                    last_error = error
                await asyncio.sleep(delay)
                delay = min(delay * 2, BIND_MAX_DELAY_S)
                continue
            self._owner.listener_error(None)
            self._log.info("listener_started", port=self.port, bind=list(self.bind),
                           device=str(self.device))
            return

    def _close_listeners(self) -> None:
        if self._listeners:
            self._accept_off()
        for task in self._accepting:
            task.cancel()
        self._accepting = []
        if self._listeners:
            for sock in self._listeners:
                sock.close()
            self._listeners = []
            self._log.info("listener_stopped", port=self.port)

    def _accept_on(self) -> None:
        loop = asyncio.get_running_loop()
        for listener in self._listeners:
            loop.add_reader(listener.fileno(), self._accept, listener)

    def _accept_off(self) -> None:
        loop = asyncio.get_running_loop()
        for listener in self._listeners:
            loop.remove_reader(listener.fileno())

    def _accept(self, listener: socket.socket) -> None:
        """Accept every pending connection at once, so that the kernel backlog never fills;
        one over a cap is closed at once. The listener stays registered (no add and remove of
        a reader per connection)."""
        for _ in range(ACCEPT_BATCH):
            try:
                conn, address = listener.accept()
            except BlockingIOError:
                return
            except OSError as exc:  # EMFILE and friends: pause instead of spinning
                self._log.warning("accept_failed", error=str(exc), retry_s=ACCEPT_PAUSE_S)
                self._accept_off()
                asyncio.get_running_loop().call_later(ACCEPT_PAUSE_S, self._accept_again)
                return
            conn.setblocking(False)
            self._admit(conn, address)

    def _accept_again(self) -> None:
        if self._listeners:  # not closed meanwhile
            self._accept_on()

    def _admit(self, conn: socket.socket, address: tuple[str, int] | tuple[str, int, int, int],
               ) -> None:
        client = format_address(address)
        host = client.rpartition(":")[0].strip("[]")
        self._enqueue(Waiting(conn, client, host, address[0], time.monotonic()))

    def _enqueue(self, waiting: Waiting) -> None:
        """A client joins the end of the queue, unless `allow` or a cap refuses it."""
        refused = self._refusal(waiting.address, waiting.host)
        if refused is not None:
            event, level, kind, reason = refused
            self._folded.log(level, event, waiting.host, client=waiting.client, reason=reason)
            waiting.sock.close()
            self._owner.refused(kind)
            return
        if not any(not w.sent for w in self._waiting):
            self._new_waiting.set()  # the idle sweep had no deadline; later ones come after
        self._waiting.append(waiting)
        self._owner.queue_length(len(self._waiting))
        if waiting.sent:  # inherited with its first byte already here
            self._someone_sent.set()
        elif not self._peek(waiting):  # most clients send right away: no reader to add then
            asyncio.get_running_loop().add_reader(waiting.sock.fileno(), self._first_byte,
                                                  waiting)

    def _take_inherited(self) -> None:
        """The predecessor's waiting clients, in their order, checked as if they came now."""
        inherited, self._inherited = self._inherited, []
        for waiting in inherited:
            self._enqueue(waiting)

    def _refusal(self, address: str, host: str) -> tuple[str, str, str, str] | None:
        """Why a new client is closed at once (event, level, setting, reason), or None to
        keep it."""
        if not self.settings.allows(address):
            return "client_rejected", "warning", "allow", "not in allow"
        if len(self._waiting) >= self.settings.max_clients:
            return ("client_refused", "warning", "max_clients",
                    f"{len(self._waiting)} clients are waiting already (max_clients)")
        if sum(w.host == host for w in self._waiting) >= self.settings.max_clients_per_address:
            return ("client_refused", "warning", "max_clients_per_address",
                    f"{self.settings.max_clients_per_address} clients from this address are "
                    "waiting already (max_clients_per_address)")
        return None

    def _first_byte(self, waiting: Waiting) -> None:
        """A waiting client became readable."""
        if self._peek(waiting):
            asyncio.get_running_loop().remove_reader(waiting.sock.fileno())

    def _peek(self, waiting: Waiting) -> bool:
        """Its first byte (a job: it waits for its turn) or its close (a probe: dropped);
        False while it has sent nothing yet."""
        try:
            data = waiting.sock.recv(1, socket.MSG_PEEK)
        except BlockingIOError:
            return False
        except OSError:
            data = b""  # reset before it sent anything: as good as a probe
        if data:
            waiting.sent = True
            self._someone_sent.set()
        else:
            self._drop(waiting)
            self._folded.log("debug", "client_probe", waiting.host, client=waiting.client,
                             seconds=round(time.monotonic() - waiting.accepted, 3))
        if not any(not w.sent for w in self._waiting):
            self._new_waiting.set()  # no deadline left: the idle sweep drops its timer
        return True

    def _drop(self, waiting: Waiting) -> None:
        if not waiting.sent:
            asyncio.get_running_loop().remove_reader(waiting.sock.fileno())
        self._waiting.remove(waiting)
        waiting.sock.close()
        self._owner.queue_length(len(self._waiting))

    async def _idle_sweep(self) -> None:
        """Close every waiting client that sent nothing within idle_timeout of its accept."""
        idle_s = self.settings.idle_timeout
        while True:
            now = time.monotonic()
            for waiting in [w for w in self._waiting if not w.sent and
                            now - w.accepted >= idle_s]:
                self._drop(waiting)
                self._folded.log("info", "client_idle", waiting.host, client=waiting.client,
                                 reason=f"sent nothing for {idle_s:g} s (idle_timeout)")
            self._new_waiting.clear()
            deadlines = [w.accepted + idle_s for w in self._waiting if not w.sent]
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(deadlines) - now if deadlines else None):
                    await self._new_waiting.wait()

    def _drop_waiting(self) -> None:
        for waiting in [*self._waiting, *self._inherited]:
            if waiting in self._waiting:
                self._drop(waiting)
            else:
                waiting.sock.close()
        self._inherited = []
        self._folded.flush()
        self._owner.queue_length(0)

    def _release_waiting(self) -> list[Waiting]:
        """The waiting clients, unwatched and out of the queue but open, in their order."""
        loop = asyncio.get_running_loop()
        released = [*self._inherited, *self._waiting]
        for waiting in self._waiting:
            if not waiting.sent:
                loop.remove_reader(waiting.sock.fileno())
        self._waiting, self._inherited = [], []
        self._owner.queue_length(0)
        return released

    # -- jobs --------------------------------------------------------------------------------
    async def _job_loop(self) -> None:
        """Serve, in accept order, the clients that have sent something, one at a time."""
        while True:
            waiting = next((w for w in self._waiting if w.sent), None)
            if waiting is None:
                self._someone_sent.clear()
                await self._someone_sent.wait()
                continue
            self._waiting.remove(waiting)
            self._owner.queue_length(len(self._waiting))
            self._no_job.clear()
            try:
                with waiting.sock:
                    await self._serve(waiting.sock, waiting.client)
            finally:
                self._no_job.set()

    async def _serve(self, conn: socket.socket, client: str) -> None:
        log = self._log.bind(client=client)
        log.info("job_started", device=str(self.device))
        job = RunningJob(client)
        await self._owner.job_started(job)
        started = time.monotonic()
        outcome = JobOutcome(client, 0, ok=False)
        try:
            result = await self._run(job, conn, log)
        except asyncio.CancelledError:
            seconds = time.monotonic() - started
            log.error("job_failed", error=self._stop_reason if job.pump else
                      f"{self._stop_reason} while waiting for the device",
                      bytes_in=job.bytes_written, bytes_out=job.bytes_read,
                      seconds=round(seconds, 3), stall_reason=job.stall_reason)
            outcome = JobOutcome(client, job.bytes_written, ok=False, bytes_out=job.bytes_read,
                                 seconds=seconds, failure="aborted")
            raise
        except (DeviceOpenError, JobError) as exc:
            seconds = time.monotonic() - started
            log.error("job_failed", error=str(exc), bytes_in=job.bytes_written,
                      bytes_out=job.bytes_read, seconds=round(seconds, 3),
                      stall_reason=job.stall_reason)
            device_lost = isinstance(exc, JobError) and exc.device_lost
            outcome = JobOutcome(client, job.bytes_written, ok=False, device_lost=device_lost,
                                 bytes_out=job.bytes_read, seconds=seconds,
                                 failure=exc.kind if isinstance(exc, JobError) else "device")
        else:
            conn.close()  # the client (CUPS waits for this close) need not wait for our books
            seconds = time.monotonic() - started
            if job.stall_began is not None:  # it took the rest after all: no more a stall
                log.info("printer_resumed",
                         seconds=round(time.monotonic() - job.stall_began, 1))
            log.info("job_finished", bytes_in=result.bytes_in, bytes_out=result.bytes_out,
                     seconds=round(seconds, 3))
            outcome = JobOutcome(client, result.bytes_in, ok=True, bytes_out=result.bytes_out,
                                 seconds=seconds)
        finally:
            await self._owner.job_ended(outcome)

    async def _run(self, job: RunningJob, conn: socket.socket, log: Any) -> PumpResult:
        """Open the device and pump the job: inline if nothing blocks, else in a thread,
        watched meanwhile."""
        device = await open_device(self.device, bidirectional=self.settings.bidirectional)
        if self._buffer is None:
            self._buffer = mmap.mmap(-1, CHUNK_BYTES)
        try:
            pump = self._pump = job.pump = Pump(
                conn, device.fd, backchannel=device.readable,
                idle_timeout_s=self.settings.idle_timeout, buffer=memoryview(self._buffer))
            if self._stopping:
                pump.abort(self._stop_reason)
            result = pump.try_inline(INLINE_BUDGET_BYTES)  # no thread if nothing blocks
            if result is not None:
                return result
            watching = asyncio.create_task(self._watch(job, pump, device.fd, log),
                                           name=f"watch-{self.settings.name}")
            try:
                return await _in_thread(pump.run, pump.abort, f"job-{self.settings.name}")
            finally:
                watching.cancel()  # it lets an ioctl on the node end before the close
                await asyncio.wait([watching])
                if not watching.cancelled() and watching.exception() is not None:
                    log.error("job_watch_failed", error=repr(watching.exception()))
        finally:
            self._pump = None
            os.close(device.fd)
            # Its pages back to the system: a printer that printed holds no more memory than one
            # that never did (the next job faults in only the pages it fills).
            self._buffer.madvise(mmap.MADV_DONTNEED)

    # -- a running job, watched ----------------------------------------------------------------
    async def _watch(self, job: RunningJob, pump: Pump, device_fd: int,
                     log: Any) -> None:
        """Once a second while the job runs in its thread: its progress (the metrics follow)
        and stalls, detected, explained by the printer and reported; never acted on (the job
        goes on when the printer takes data again, the clients behind it keep their place)."""
        watch = StallWatch(self._owner.stall_timeout())
        moved = (0, 0, 0)
        asked = 0.0
        while True:
            await asyncio.sleep(PROGRESS_TICK_S)
            now_moved = (pump.bytes_received, pump.bytes_in, pump.bytes_out)
            if now_moved != moved:
                moved = now_moved
                self._owner.job_progressed()
            watch.timeout_s = self._owner.stall_timeout()  # a reload may change it
            now = time.monotonic()
            change = watch.observe(now, pump.device_blocked_since())
            if isinstance(change, Stalled):
                reason = await _ask_printer(device_fd)
                asked = time.monotonic()
                job.stall_began, job.stall_reason = change.since, reason
                job.stalled_since = time.time() - (now - change.since)
                log.warning("printer_stalled", reason=reason, pending_bytes=job.pending,
                            seconds=round(now - change.since, 1),
                            bytes_written=job.bytes_written)
                self._owner.stall_changed(began=True)
            elif isinstance(change, Resumed):
                job.stall_began = job.stalled_since = job.stall_reason = None
                log.info("printer_resumed", seconds=round(change.seconds, 1))
                self._owner.stall_changed(began=False)
            elif watch.stalled and now - asked >= STALL_ASK_S:
                reason = await _ask_printer(device_fd)
                asked = time.monotonic()
                if watch.stalled and reason != job.stall_reason:  # e.g. paper in, still offline
                    job.stall_reason = reason
                    self._owner.stall_changed(began=False)


async def _ask_printer(device_fd: int) -> str:
    """Why the printer takes no data, in its own words (LPGETSTATUS), asked in a thread: usblp
    asks the printer over USB and may take seconds. Cancelled, it still waits for the answer,
    so that the node is never closed (and its fd reused) under the ioctl."""
    asking = asyncio.get_running_loop().run_in_executor(None, read_reason, device_fd)
    try:
        return await asyncio.shield(asking)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await asking
        raise


async def _in_thread(fn: Callable[[], T], abort: Callable[[str], None], name: str) -> T:
    """Run blocking `fn` in its own thread; on cancellation abort it and wait for it to end."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(result: T | None, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]

    def target() -> None:
        try:
            result = fn()
        except BaseException as exc:  # handed to the awaiting task, not lost
            loop.call_soon_threadsafe(settle, None, exc)
        else:
            loop.call_soon_threadsafe(settle, result, None)

    threading.Thread(target=target, name=name, daemon=True).start()
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        abort("service stopping")
        with contextlib.suppress(Exception):
            await future
        raise


def _bind_error(exc: OSError, port: int) -> str:
    if exc.errno == errno.EADDRINUSE:
        hint = " (Prometheus node_exporter listens on 9100 by default)" if port == 9100 else ""
        return f"port {port} is already in use by another program{hint}"
    if exc.errno == errno.EACCES:
        return f"port {port} needs privileges this service does not have; use a port >= 1024"
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"a bind address is not configured on this host (port {port})"
    return f"cannot listen on port {port}: {exc.strerror or exc}"
