"""The composition root: printers, their state machine and forwarders; start-up and shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from typing import Final

import structlog

from supervisor import __version__
from supervisor.config import PrinterSettings, Settings
from supervisor.core.machine import LISTENING_STATES, Printer, StateChange, build_machine
from supervisor.core.ports import assign_ports
from supervisor.workers.forwarder import Forwarder, JobOutcome

SHUTDOWN_GRACE_S: Final = 10.0  # a running job may finish this long after SIGTERM
FORWARDER_RESTART_S: Final = 1.0

log = structlog.get_logger("supervisor")


class PrinterRuntime:
    """One configured printer at run time: its model and the forwarder task it owns."""

    def __init__(self, settings: PrinterSettings, port: int, *, bind: tuple[str, ...],
                 rescan: Callable[[], None]) -> None:
        self.settings = settings
        self.port = port
        self.bind = bind
        self.model = Printer(settings.name, listener=self._on_change)
        self._rescan = rescan
        self._forwarder: Forwarder | None = None
        self._task: asyncio.Task[None] | None = None
        self._stops: set[asyncio.Task[None]] = set()  # stops in flight, kept from the GC
        self._log = log.bind(printer=settings.name)

    # -- state changes ----------------------------------------------------------------------
    def _on_change(self, change: StateChange) -> None:
        self._log.info("state_changed", **{"from": change.source}, to=change.dest,
                       trigger=change.trigger)
        listening = change.dest in LISTENING_STATES
        if listening and self._task is None:
            self._task = asyncio.create_task(self._serve(), name=f"forwarder-{self.model.name}")
        elif not listening and self._task is not None:
            task, forwarder = self._task, self._forwarder
            self._task = self._forwarder = None
            stopping = asyncio.create_task(_stop(task, forwarder, grace_s=0.0,
                                                 reason=f"printer {change.trigger}"))
            self._stops.add(stopping)
            stopping.add_done_callback(self._stops.discard)

    async def _serve(self) -> None:
        """The forwarder, restarted after an unexpected failure (a bug must not end the service)."""
        assert self.settings.device is not None
        while True:
            self._forwarder = Forwarder(self.settings, device=self.settings.device,
                                        port=self.port, bind=self.bind, owner=self)
            try:
                await self._forwarder.run()
                return
            except Exception as exc:
                self._log.exception("forwarder_crashed", error=repr(exc))
                self.model.error = f"internal error: {exc!r}"
                await asyncio.sleep(FORWARDER_RESTART_S)

    async def shutdown(self, grace_s: float) -> None:
        """Stop accepting, let a running job finish within `grace_s`, then end the forwarder."""
        task, forwarder = self._task, self._forwarder
        self._task = self._forwarder = None
        if task is not None:
            await _stop(task, forwarder, grace_s=grace_s, reason="service stopping")
        if self._stops:
            await asyncio.gather(*self._stops)

    # -- what the forwarder reports ---------------------------------------------------------
    async def job_started(self, client: str) -> None:
        await self.model.job_started()

    async def job_ended(self, outcome: JobOutcome) -> None:
        if outcome.ok:
            self.model.jobs += 1
            self.model.bytes += outcome.bytes_in
        await self.model.job_ended()
        if outcome.device_lost:
            self._rescan()

    def listener_error(self, error: str | None) -> None:
        self.model.error = error

    def queue_length(self, waiting: int) -> None:
        self.model.queued = waiting

    # -- presence ---------------------------------------------------------------------------
    async def check_static_presence(self) -> None:
        """A printer with a fixed node and no match is present while the node exists."""
        if not self.settings.is_static or self.settings.device is None:
            return
        present = self.settings.device.exists()
        if present and self.model.state == "absent":
            await self.model.plug()
        elif not present and self.model.state != "absent":
            await self.model.unplug()


async def _stop(task: asyncio.Task[None], forwarder: Forwarder | None, *, grace_s: float,
                reason: str) -> None:
    if forwarder is not None:
        await forwarder.stop(grace_s=grace_s, reason=reason)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


class Service:
    """`supervisorctl run`: everything the service does, until `stop` is set."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.printers: dict[str, PrinterRuntime] = {}
        self._rescan_wanted = asyncio.Event()

    async def run(self, stop: asyncio.Event, *, grace_s: float = SHUTDOWN_GRACE_S) -> None:
        machine = build_machine()
        daemon = self.settings.daemon
        ports = assign_ports(self.settings.printers, daemon.base_port)
        for ps in self.settings.printers:
            runtime = PrinterRuntime(ps, ports[ps.name], bind=daemon.bind,
                                     rescan=self._rescan_wanted.set)
            machine.add_model(runtime.model)
            self.printers[ps.name] = runtime
        log.info("daemon_started", version=__version__, pid=os.getpid(),
                 config=str(self.settings.source) if self.settings.source else None,
                 printers=len(self.printers))
        await self._rescan()
        rescans = asyncio.create_task(self._rescan_loop())
        try:
            await stop.wait()
        finally:
            rescans.cancel()
            log.info("daemon_stopping", grace_s=grace_s)
            await asyncio.gather(*(p.shutdown(grace_s) for p in self.printers.values()))
            for runtime in self.printers.values():
                machine.remove_model(runtime.model)

    async def _rescan(self) -> None:
        for runtime in self.printers.values():
            await runtime.check_static_presence()

    async def _rescan_loop(self) -> None:
        while True:
            await self._rescan_wanted.wait()
            self._rescan_wanted.clear()
            await self._rescan()
