"""One printer at run time: its model, and the tasks it owns (firmware push, forwarder)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Coroutine, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from supervisor.core.announce import Subject
from supervisor.core.catalog import FirmwareEntry, firmware_for, firmware_loaded
from supervisor.core.machine import (
    ABSENT,
    FIRMWARE_NEEDED,
    LISTENING_STATES,
    READY,
    SERVING,
    Printer,
    StateChange,
)
from supervisor.core.metrics import PrinterCounters, PrinterView
from supervisor.core.registry import Entry
from supervisor.core.stall import DEFAULT_STALL_TIMEOUT_S
from supervisor.core.status import JobStatus, PrinterStatus, iso_utc
from supervisor.observe.log import get_logger
from supervisor.workers.firmware import (
    FirmwareError,
    FirmwareMissing,
    find_firmware,
    push_firmware,
    read_device_id,
)
from supervisor.workers.forwarder import Forwarder, JobOutcome, RunningJob, Waiting

FORWARDER_RESTART_S: Final = 1.0
FIRMWARE_DEADLINE_S: Final = 120.0  # retries of a transient failure stop after this long
FIRMWARE_FIRST_RETRY_S: Final = 1.0
FIRMWARE_MAX_RETRY_S: Final = 15.0

_JOB_STATES: Final = frozenset({READY, SERVING})

log = get_logger("supervisor.printer")


class PrinterRuntime:
    """Drives one printer: plug/unplug decisions in, state changes out to its tasks."""

    def __init__(self, entry: Entry, *, bind: tuple[str, ...], firmware_dirs: Sequence[Path],
                 catalog: Callable[[], Sequence[FirmwareEntry]], rescan: Callable[[], None],
                 on_change: Callable[[], None], counters: PrinterCounters | None = None,
                 on_counted: Callable[[], None] = lambda: None,
                 after: asyncio.Task[list[Waiting]] | None = None,
                 stall_default: Callable[[], float] = lambda: DEFAULT_STALL_TIMEOUT_S) -> None:
        self.entry = entry
        self.bind = bind
        self.firmware_dirs = firmware_dirs
        self.catalog = catalog  # read when a printer is first plugged
        self.model = Printer(entry.name, listener=self._on_change)
        self.firmware: str | None = None  # the file this printer gets, once it is known
        self._rescan = rescan
        self._changed = on_change  # state or error changed: the service's one-line status
        self._predecessor = after  # a reload's old runtime of this printer, still stopping
        self._inherited: list[Waiting] = []  # its waiting clients, handed over once it stopped
        self._retired = False  # shut down (by a reload or the service): it starts nothing again
        self._parked: FirmwareError | None = None  # why the last push gave up
        self._forwarder: Forwarder | None = None
        self.listening = False  # its port is bound (not merely wanted)
        self.listener_failed = False  # its port cannot be bound now (the error says why)
        self.counters = counters or PrinterCounters()  # the service's, kept across reloads
        self._counted = on_counted  # a counter changed and nothing else did: the metrics only
        self._stall_default = stall_default  # [daemon] stall_timeout, as configured now
        self._job: RunningJob | None = None  # the job its forwarder serves now
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._stops: set[asyncio.Task[list[Waiting]]] = set()
        self._log = log.bind(printer=entry.name)

    @property
    def name(self) -> str:
        return self.entry.name

    # -- decisions from the registry ----------------------------------------------------------
    async def plugged(self) -> None:
        """The registry found this printer at `entry.node`: decide on firmware and plug."""
        usb, node = self.entry.usb, self.entry.node
        assert node is not None
        product = usb.product if usb else None
        self.firmware = firmware_for(self.entry.settings.firmware, product, self.catalog())
        needs = False
        if self.firmware is not None:
            device_id = await asyncio.to_thread(read_device_id, node)
            if device_id is None and usb is not None:
                device_id = usb.device_id  # usblp's cached copy: fine before a push
            needs = firmware_loaded(device_id) is not True
        self.model.firmware_required = needs
        self.model.error = None
        self.model.plug()

    async def unplugged(self) -> None:
        self.model.unplug()

    def resume_firmware(self, *, reloaded: bool = False) -> None:
        """Try a parked push again: after a transient failure on any rescan; after a missing
        file once it is there; after any other permanent failure on a reload (SIGHUP)."""
        parked = self._parked
        if parked is None or self.model.state != FIRMWARE_NEEDED or "firmware" in self._tasks:
            return
        if parked.permanent and not reloaded:
            if not isinstance(parked, FirmwareMissing) or self.firmware is None:
                return
            try:
                find_firmware(self.firmware, self.firmware_dirs)
            except FirmwareMissing:
                return  # still missing: no retry storm
        self._parked = None
        self._start("firmware", self._push_firmware())

    # -- state changes ----------------------------------------------------------------------
    def _on_change(self, change: StateChange) -> None:
        # ready <-> serving is every job's: job_started and job_finished say it already, so at
        # info level it would only double the lines (and the cost) of each job.
        level = "debug" if {change.source, change.dest} == _JOB_STATES else "info"
        getattr(self._log, level)("state_changed", **{"from": change.source}, to=change.dest,
                                  trigger=change.trigger)
        if change.dest == FIRMWARE_NEEDED:
            self._parked = None
            self._start("firmware", self._push_firmware())
        elif change.dest == ABSENT:
            self._cancel("firmware")
        if change.dest in LISTENING_STATES:
            if "forwarder" not in self._tasks:  # (ready <-> serving: it runs already)
                self._start("forwarder", self._serve())
        else:
            self.listening = self.listener_failed = False
        if change.dest not in LISTENING_STATES and "forwarder" in self._tasks:
            self._stop_forwarder(grace_s=0.0, reason=f"printer {change.trigger}")
        self._changed()

    def _start(self, kind: str, work: Coroutine[Any, Any, None]) -> None:
        if kind in self._tasks or self._retired:  # a retired printer's job end starts nothing
            work.close()
            return
        task = asyncio.create_task(work, name=f"{kind}-{self.name}")
        self._tasks[kind] = task
        task.add_done_callback(lambda t: self._tasks.pop(kind, None) if
                               self._tasks.get(kind) is t else None)

    def _cancel(self, kind: str) -> None:
        task = self._tasks.pop(kind, None)
        if task is not None:
            task.cancel()

    def _stop_forwarder(self, *, grace_s: float, reason: str, hand_over: bool = False) -> None:
        task, forwarder = self._tasks.pop("forwarder", None), self._forwarder
        self._forwarder = None
        if task is None:
            return
        stopping = asyncio.create_task(_stop(task, forwarder, grace_s=grace_s, reason=reason,
                                             hand_over=hand_over))
        self._stops.add(stopping)
        stopping.add_done_callback(self._stops.discard)

    async def shutdown(self, grace_s: float, *, hand_over: bool = False) -> list[Waiting]:
        """Stop accepting, let a running job finish within `grace_s`, end every task; nothing
        starts again. With `hand_over` (a reload changed this printer) its waiting clients are
        returned open, in their order, for its successor; otherwise they are closed."""
        self._retired = True
        self._cancel("firmware")
        self._stop_forwarder(grace_s=grace_s, reason="service stopping", hand_over=hand_over)
        kept = [client for clients in await asyncio.gather(*self._stops)
                for client in clients]
        await self._predecessor_gone()  # its waiting clients are ours to pass on or close
        inherited, self._inherited = self._inherited, []
        if not hand_over:
            for waiting in inherited:
                waiting.sock.close()
            return []
        return [*inherited, *kept]

    # -- the tasks --------------------------------------------------------------------------
    async def _predecessor_gone(self) -> None:
        """Wait until a reload's old runtime of this printer has released port and node; its
        waiting clients are then ours."""
        predecessor = self._predecessor
        if predecessor is None:
            return
        with contextlib.suppress(Exception):  # a bug there is logged there
            await asyncio.shield(predecessor)  # cancelling us must not cancel it
        if self._predecessor is predecessor:  # (shutdown may be waiting on it as well)
            self._predecessor = None
            if not predecessor.cancelled() and predecessor.exception() is None:
                self._inherited += predecessor.result()

    async def _serve(self) -> None:
        """The forwarder, restarted after an unexpected failure (a bug must not end the service)."""
        node = self.entry.node
        assert node is not None
        await self._predecessor_gone()
        while True:
            inherited, self._inherited = self._inherited, []
            self._forwarder = Forwarder(self.entry.settings, device=node,
                                        port=self.entry.port, bind=self.bind, owner=self,
                                        inherited=inherited)
            try:
                await self._forwarder.run()
                return
            except Exception as exc:
                self.listening = False
                self._log.exception("forwarder_crashed", error=repr(exc))
                self.model.error = f"internal error: {exc!r}"
                await asyncio.sleep(FORWARDER_RESTART_S)

    async def _push_firmware(self) -> None:
        """Push until loaded, retrying transient failures; a permanent one parks the printer."""
        node, name = self.entry.node, self.firmware
        assert node is not None and name is not None
        await self._predecessor_gone()
        deadline = time.monotonic() + FIRMWARE_DEADLINE_S
        delay = FIRMWARE_FIRST_RETRY_S
        while True:
            try:
                blob = find_firmware(name, self.firmware_dirs)
                self._log.info("firmware_push_started", firmware=str(blob), device=str(node))
                result = await push_firmware(node, blob,
                                             deadline_s=max(1.0, deadline - time.monotonic()))
            except FirmwareError as exc:
                missing = isinstance(exc, FirmwareMissing)
                self.counters.firmware["missing" if missing else "failed"] += 1
                self.model.error = str(exc)
                retry = not exc.permanent and time.monotonic() + delay < deadline
                self._log.error("firmware_failed", error=str(exc), permanent=exc.permanent,
                                retry_s=delay if retry else None)
                self._changed()
                if not retry:
                    self._parked = exc
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 2, FIRMWARE_MAX_RETRY_S)
                continue
            self._log.info("firmware_pushed", firmware=str(blob), bytes=result.bytes_written,
                           seconds=round(result.seconds, 3), verified_by=result.verified_by)
            self.counters.firmware["ok"] += 1
            self.model.error = None
            self.model.firmware_loaded()
            return

    # -- what the forwarder reports ---------------------------------------------------------
    async def job_started(self, job: RunningJob) -> None:
        self._job = job
        if self.model.state == READY:
            self.model.job_started()

    async def job_ended(self, outcome: JobOutcome) -> None:
        # Its bytes move from the running job to the counters in one step: /metrics never
        # sees them twice nor goes back.
        job, self._job = self._job, None
        self.counters.job(seconds=outcome.seconds, written=outcome.bytes_in,
                          read=outcome.bytes_out, failure=None if outcome.ok else
                          outcome.failure or "client")
        if outcome.ok:
            self.model.jobs += 1
            self.model.bytes += outcome.bytes_in
        if self.model.state == SERVING:  # not when the job ended because the printer went
            self.model.job_ended()
        if outcome.device_lost:
            self._rescan()
        if job is not None and job.stall_began is not None:
            self._changed()  # the stall ends with its job

    def job_progressed(self) -> None:
        self._counted()

    def stall_changed(self, *, began: bool) -> None:
        if began and self._job is not None and self._job.stall_reason is not None:
            self.counters.stalls[self._job.stall_reason] += 1
        self._changed()

    def stall_timeout(self) -> float:
        """Seconds without a byte taken before the printer counts as stalled, as set now."""
        own = self.entry.settings.stall_timeout
        return own if own is not None else self._stall_default()

    def listener_error(self, error: str | None) -> None:
        self.model.error = error
        self.listening = error is None
        self.listener_failed = error is not None
        self._changed()

    def queue_length(self, waiting: int) -> None:
        self.model.queued = waiting

    def refused(self, reason: str) -> None:
        self.counters.refused[reason] += 1
        self._counted()

    # -- announcing -------------------------------------------------------------------------
    def mdns_subject(self, location: str | None) -> Subject | None:
        """What to announce while it listens, or None (not ready, port taken, `mdns = false`).

        `firmware-needed` is never announced: a printer without firmware swallows jobs.
        """
        settings, usb = self.entry.settings, self.entry.usb
        if not (settings.mdns and self.listening and self.model.state in LISTENING_STATES):
            return None
        return Subject(
            printer=self.name, port=self.entry.port,
            device_id=usb.device_id if usb else None,
            manufacturer=usb.manufacturer if usb else None, model=usb.model if usb else None,
            identity=usb.identity if usb else None, serial=usb.serial if usb else None,
            mdns_name=settings.mdns_name, location=settings.location or location)

    # -- status -----------------------------------------------------------------------------
    def status(self, announced: str | None = None) -> PrinterStatus:
        usb, settings = self.entry.usb, self.entry.settings
        device = self.entry.node or settings.device
        return PrinterStatus(
            name=self.name, state=self.model.state,
            product=usb.product if usb else None,
            serial=usb.serial if usb else settings.serial,
            device=str(device) if device else None,
            port=self.entry.port, bidirectional=settings.bidirectional,
            firmware=Path(self.firmware).name if self.firmware else None,
            jobs=self.model.jobs, bytes=self.model.bytes, queued=self.model.queued,
            error=self.model.error, since=iso_utc(self.model.since), mdns=announced,
            error_since=iso_utc(self.model.error_since) if self.model.error_since else None,
            job=_job_status(job) if (job := self._job) is not None else None,
            stalled_since=_unix_iso(job.stalled_since) if job and job.stalled_since else None,
            stall_reason=job.stall_reason if job else None,
        )

    def metrics_view(self) -> PrinterView:
        """The printer as its metrics show it now."""
        usb, settings = self.entry.usb, self.entry.settings
        present = None
        job = self._job
        if self.firmware is not None:  # known once it was plugged
            try:
                find_firmware(self.firmware, self.firmware_dirs)
                present = True
            except FirmwareMissing:
                present = False
        return PrinterView(
            name=self.name, state=self.model.state, state_since_s=self.model.since.timestamp(),
            port=self.entry.port, product=usb.product if usb else None,
            serial=usb.serial if usb else settings.serial, waiting=self.model.queued,
            listener_failed=self.listener_failed, firmware_present=present,
            counters=self.counters, stalled=job is not None and job.stall_began is not None,
            job_written=job.bytes_written if job else 0, job_read=job.bytes_read if job else 0)


def _unix_iso(moment: float) -> str:
    return iso_utc(datetime.fromtimestamp(moment, UTC))


def _job_status(job: RunningJob) -> JobStatus:
    return JobStatus(client=job.client, since=_unix_iso(job.started),
                     bytes_in=job.bytes_received, bytes_written=job.bytes_written)


async def _stop(task: asyncio.Task[None], forwarder: Forwarder | None, *, grace_s: float,
                reason: str, hand_over: bool) -> list[Waiting]:
    kept = []
    if forwarder is not None:
        kept = await forwarder.stop(grace_s=grace_s, reason=reason, hand_over=hand_over)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return kept

