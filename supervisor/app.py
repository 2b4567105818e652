"""The composition root: sources → registry → printers' tasks; start-up and shutdown order."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from supervisor import __version__
from supervisor.config.loader import load_settings
from supervisor.config.settings import ConfigError, Settings
from supervisor.core.announce import Subject, loopback_only
from supervisor.core.catalog import load_catalog
from supervisor.core.devices import NODE_REFUSAL_HINT, Snapshot
from supervisor.core.events import EventError, parse_event
from supervisor.core.exposition import render
from supervisor.core.machine import build_machine
from supervisor.core.metrics import ProcessView, ServiceCounters, families
from supervisor.core.registry import Gone, Present, Registry, Update
from supervisor.core.status import DaemonStatus, PrinterStatus, status_document, status_line
from supervisor.observe.log import get_logger
from supervisor.observe.logs import log_trouble, recent_events
from supervisor.observe.process import cpu_seconds, rss_bytes
from supervisor.observe.systemd import Notifier
from supervisor.publish.announcer import Announcer
from supervisor.publish.umdns import UMDNS_DIR
from supervisor.runtime import PrinterRuntime
from supervisor.sources.control import ControlServer, RequestError
from supervisor.sources.monitor import MonitorSource, open_monitor
from supervisor.sources.statefile import load_ports, save_ports
from supervisor.sources.sysfs import inspect_nodes, scan
from supervisor.workers.forwarder import Waiting

if TYPE_CHECKING:  # imported when configured: a router that uses neither does not pay for them
    from supervisor.publish.httpd import StatusServer
    from supervisor.publish.metricsfile import MetricsFile

SHUTDOWN_GRACE_S: Final = 10.0  # a running job may finish this long after SIGTERM
RESCAN_SETTLE_S: Final = 0.01  # events this close together make one rescan
NODE_POLL_S: Final = 0.1  # a printer seen without its lp node is looked at again this often
NODE_WAIT_S: Final = 10.0  # ...for this long after it was first seen
BACKGROUND_STOP_S: Final = 2.0  # cancelled loops end at once; this bounds a bug
#: The safety net for events lost without a trace, once an hour (see `_rescan_loop`).
PERIODIC_RESCAN_S: Final = 3600.0

log = get_logger("supervisor")

MonitorOpener = Callable[[str], Any]
#: Daemon settings a reload cannot change in a running service: they need a restart.
RESTART_ONLY: Final = ("control_socket", "log_file", "log_max_bytes", "state_dir",
                       "event_source", "sysfs", "devfs", "metrics_file", "http_listen")


class StartupError(Exception):
    """The service cannot start; the message says why and what to do."""


class Service:
    """`supervisorctl run`: everything the service does, until `stop` is set."""

    def __init__(self, settings: Settings, *, open_monitor: MonitorOpener = open_monitor,
                 notifier: Notifier | None = None, umdns_dir: Path = UMDNS_DIR) -> None:
        self.settings = settings
        self.notifier = notifier or Notifier()
        self.registry = Registry(settings, load_ports(settings.daemon.state_dir))
        self.printers: dict[str, PrinterRuntime] = {}
        self._open_monitor = open_monitor
        self._machine = build_machine()
        self._rescan_wanted = asyncio.Event()
        self._incomplete: dict[str, float] = {}  # port path → first seen without its node
        self._started = time.monotonic()
        self._started_at = time.time()
        self._memory = dict(self.registry.remembered)
        self._reload_wanted = asyncio.Event()
        self._changing = asyncio.Lock()  # one reconcile or reload at a time
        self._leaving: set[asyncio.Task[list[Waiting]]] = set()  # printers a reload stops
        self.counters = ServiceCounters()
        self.announcer = Announcer(settings.daemon, self._mdns_subjects, umdns_dir=umdns_dir)
        self._status_pending = False
        self._errors: dict[str, str] = {}  # daemon-level problems that still hold, by source
        self.metrics_file: MetricsFile | None = None
        self.http: StatusServer | None = None
        if settings.daemon.metrics_file:
            from supervisor.publish.metricsfile import MetricsFile  # noqa: PLC0415

            self.metrics_file = MetricsFile(settings.daemon.metrics_file, self.metrics_text,
                                            on_error=self._error_setter("metrics_file"))
        if (address := settings.daemon.http_address) is not None:
            from supervisor.publish.httpd import StatusServer  # noqa: PLC0415

            self.http = StatusServer(address, self, on_error=self._error_setter("http"),
                                     allow=lambda: self.settings.daemon.http_allow)

    @property
    def reconciles(self) -> int:
        return self.counters.reconciles

    # -- lifecycle ---------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event, *, grace_s: float = SHUTDOWN_GRACE_S) -> None:
        daemon = self.settings.daemon
        for entry in self.registry.entries.values():
            self._add_runtime(entry.name)
        control = ControlServer(daemon.control_socket, self._handle_request,
                                on_rejected=self._rejected)
        try:
            await control.start()
        except Exception as exc:
            raise StartupError(f"cannot listen on the control socket {daemon.control_socket}: "
                               f"{exc}") from exc
        try:
            source = self._open_source()
        except StartupError:
            await control.close()
            raise
        background: list[asyncio.Task[None]] = []
        try:
            await self._reconcile()
            # Up: the control socket listens, the event source is open, the first scan is done.
            for warning in self.settings.warnings:
                log.warning("config_warning", warning=warning)
            log.info("daemon_started", version=__version__, pid=os.getpid(),
                     config=str(self.settings.source) if self.settings.source else None,
                     event_source=daemon.event_source, printers=len(self.printers))
            self.notifier.ready()
            self._status_changed()
            self.announcer.start()
            if self.http is not None:
                self.http.start()
            if self.metrics_file is not None:
                self.metrics_file.start()
            background = [asyncio.create_task(self._rescan_loop(), name="rescan"),
                          asyncio.create_task(self._reload_loop(grace_s), name="reload")]
            if self.notifier.watchdog_interval_s:
                background.append(asyncio.create_task(
                    self._watchdog_loop(self.notifier.watchdog_interval_s), name="watchdog"))
            await stop.wait()
        finally:
            log.info("daemon_stopping", grace_s=grace_s)
            self.notifier.stopping()
            if source is not None:
                source.close()
            for task in background:
                task.cancel()
            if background:
                _, stuck = await asyncio.wait(background, timeout=BACKGROUND_STOP_S)
                for task in stuck:  # a bug: say so, and do not let it hold up the shutdown
                    log.error("task_did_not_stop", task=task.get_name())
            await self.announcer.close()  # withdrawn as the listeners close, not after jobs
            if self.http is not None:
                await self.http.close()
            # Printers a cut-short reload was stopping finish within the same grace.
            await asyncio.gather(*(p.shutdown(grace_s) for p in self.printers.values()),
                                 *self._leaving)
            await control.close()
            if self.metrics_file is not None:
                await self.metrics_file.close()
            for runtime in self.printers.values():
                self._machine.remove_model(runtime.model)

    def _open_source(self) -> MonitorSource | None:
        kind = self.settings.daemon.event_source
        if kind == "none":
            return None
        try:
            monitor = self._open_monitor(kind)
        except Exception as exc:
            raise StartupError(f"cannot open the {kind} event source: {exc}; "
                               'set [daemon] event_source = "none" to rely on '
                               "`supervisorctl notify`") from exc
        source = MonitorSource(monitor, lambda env: self.hotplug(env, origin=kind),
                               lost=self._rescan_wanted.set)
        source.attach(asyncio.get_running_loop())
        return source

    def _add_runtime(self, name: str,
                     after: asyncio.Task[list[Waiting]] | None = None) -> PrinterRuntime:
        daemon = self.settings.daemon
        runtime = PrinterRuntime(self.registry.entries[name], bind=daemon.bind,
                                 firmware_dirs=daemon.firmware_dirs, catalog=load_catalog,
                                 rescan=self._rescan_wanted.set,
                                 on_change=self._status_changed,
                                 counters=self.counters.printer(name),
                                 on_counted=self._metrics_changed, after=after,
                                 stall_default=lambda: self.settings.daemon.stall_timeout)
        self._machine.add_model(runtime.model)
        self.printers[name] = runtime
        return runtime

    # -- events ------------------------------------------------------------------------------
    def hotplug(self, env: Mapping[str, str], *, origin: str) -> None:
        """A uevent from any source: a hint to rescan, if it concerns USB printers."""
        try:
            event = parse_event(env, self.settings.daemon.devfs)
        except EventError as exc:
            self._count_hotplug(origin, "invalid")
            if origin == "notify":
                raise
            log.warning("hotplug_invalid", source=origin, error=str(exc))
            return
        if not event.relevant:
            self._count_hotplug(origin, "ignored")
            log.debug("hotplug_ignored", source=origin, **event.describe())
            return
        self._count_hotplug(origin, "relevant")
        log.info("hotplug_received", source=origin, **event.describe())
        self._rescan_wanted.set()

    def _count_hotplug(self, origin: str, relevance: str) -> None:
        key = (origin, relevance)
        self.counters.hotplug[key] = self.counters.hotplug.get(key, 0) + 1
        self._metrics_changed()

    async def _rescan_loop(self) -> None:
        """Rescan after each event (a burst makes one), while a node is awaited, and hourly.

        Where events can be missed, and what covers it:
        - netlink (udev, kernel): the kernel drops events on a full socket buffer, and says so
          (ENOBUFS: `hotplug_events_lost`, a rescan at once: MonitorSource's `lost`).
        - notify (OpenWrt's hotplug shim, `event_source = "none"`): a notify while the service
          is down is covered by the scan at start; a notify that failed while it runs (the
          client's 2 s timeout on a busy router) is only in logd, and only the periodic
          rescan finds what it said. usblp detaching a printer removes its node, which the shim
          passes on: no state change comes without an event.
        - a printer seen before its lp node exists (the USB device's event comes first) is
          looked at every NODE_POLL_S for NODE_WAIT_S: right after an event, never while idle.
        So the periodic rescan is a net under notifies lost without a trace (and bugs), not how
        changes are found: hourly, the only timer of an idle service with neither a watchdog
        nor a metrics file (whose heartbeat is hourly too).
        """
        while True:
            try:
                timeout = NODE_POLL_S if self._waiting_for_nodes() else PERIODIC_RESCAN_S
                # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation
                # that arrives as the event is set, and shutdown would wait on us forever.
                async with asyncio.timeout(timeout):
                    await self._rescan_wanted.wait()
                await asyncio.sleep(RESCAN_SETTLE_S)  # let the rest of a burst arrive
            except TimeoutError:
                pass
            self._rescan_wanted.clear()
            try:
                await self._reconcile()
            except Exception as exc:  # a bug, or a tree we cannot read: log, try next time
                log.exception("rescan_failed", error=repr(exc))

    async def _reconcile(self) -> None:
        async with self._changing:
            await self._reconcile_now()

    async def _reconcile_now(self) -> None:
        """Scan the device tree and act on the difference: the one place printers change."""
        snapshot = await asyncio.to_thread(self._scan)
        self.counters.reconciles += 1
        self._metrics_changed()
        for decision in self.registry.reconcile(snapshot):
            runtime = self.printers.get(decision.name) or self._add_runtime(decision.name)
            try:
                if isinstance(decision, Present):
                    await runtime.plugged()
                elif isinstance(decision, Gone):
                    await runtime.unplugged()
            except Exception as exc:  # one printer's failure never stops another
                log.exception("printer_failed", printer=decision.name, error=repr(exc))
                runtime.model.error = f"internal error: {exc!r}"
        for runtime in self.printers.values():
            runtime.resume_firmware()
        self._track_incomplete(snapshot)
        self._remember()

    def _scan(self) -> Snapshot:
        """The device tree now (in a worker thread): USB printers, and which nodes are there.

        A configured `device` that is there but is no printer node (a file, a directory) keeps
        its printer from being present, and the printer's error says why while that holds. The
        scan sets it, as no decision reaches a printer that is not present (a plain attribute;
        such a printer has no task that would set it meanwhile).
        """
        daemon = self.settings.daemon
        fixed = {p.device: p.name for p in self.settings.printers if p.device}
        found = scan(daemon.sysfs, daemon.devfs)
        existing, refused = inspect_nodes(
            [*fixed, *(p.node for p in found.printers if p.node is not None)])
        for node, name in fixed.items():
            if (runtime := self.printers.get(name)) is None:
                continue
            if node in refused:
                runtime.model.error = refused[node]
            elif (runtime.model.error or "").endswith(NODE_REFUSAL_HINT):
                runtime.model.error = None  # gone, or a printer's node again
        return Snapshot(found.printers, existing, refused)

    def _track_incomplete(self, snapshot: Snapshot) -> None:
        """Printers seen without a usable lp node are polled briefly, never slept on."""
        now = time.monotonic()
        seen = {p.port_path for p in snapshot.printers
                if p.node is None or p.node not in snapshot.existing_nodes}
        # Kept while incomplete, so that an expired wait does not start over at the next scan.
        self._incomplete = {path: self._incomplete.get(path, now) for path in seen}

    def _waiting_for_nodes(self) -> bool:
        now = time.monotonic()
        return any(now - since < NODE_WAIT_S for since in self._incomplete.values())

    def _remember(self) -> None:
        memory = self.registry.memory()
        if memory == self._memory:
            return
        try:
            save_ports(self.settings.daemon.state_dir, memory)
            self._memory = memory
        except OSError as exc:
            log.error("state_file_unwritable", path=str(self.settings.daemon.state_dir),
                      error=str(exc))

    # -- reload -----------------------------------------------------------------------------
    def request_reload(self) -> None:
        """SIGHUP: re-read the configuration (in the reload task, one reload at a time)."""
        self._reload_wanted.set()

    async def _reload_loop(self, grace_s: float) -> None:
        while True:
            await self._reload_wanted.wait()
            self._reload_wanted.clear()
            self.notifier.reloading()
            try:
                await self.reload(grace_s)
            except Exception as exc:  # the old configuration stays in force
                self._count_reload("failed")
                log.exception("config_reloaded", ok=False, error=repr(exc))
            finally:
                self.notifier.ready()

    async def reload(self, grace_s: float = SHUTDOWN_GRACE_S) -> Update | None:
        """Apply the configuration file again; printers whose settings did not change keep
        serving untouched, even mid-job. A broken file changes nothing."""
        source = self.settings.source
        if source is None:
            self._count_reload("failed")
            log.warning("config_reloaded", ok=False, error="started without a configuration "
                        "file: nothing to re-read")
            return None
        try:
            new = load_settings(source, required=True)
        except ConfigError as exc:
            self._count_reload("failed")
            log.error("config_reloaded", ok=False, error=str(exc),
                      action="the running configuration stays in force")
            return None
        old_daemon, new_daemon = self.settings.daemon, new.daemon
        ignored = [key for key in RESTART_ONLY
                   if getattr(old_daemon, key) != getattr(new_daemon, key)]
        new = dataclasses.replace(new, daemon=dataclasses.replace(
            new_daemon, **{key: getattr(old_daemon, key) for key in RESTART_ONLY}))
        async with self._changing:
            update = self.registry.plan_update(new)
            leaving = {name: runtime for name in (*update.removed, *update.changed)
                       if (runtime := self.printers.pop(name, None)) is not None}
            # Leaving printers finish their jobs (within the grace) while everything else goes
            # on: rescans are not held up, and a changed printer's successor starts its work
            # once its predecessor has let go of the port and the node, and takes over its
            # waiting clients (checked against the new settings).
            stopping = {name: asyncio.create_task(
                            runtime.shutdown(grace_s, hand_over=name in update.changed))
                        for name, runtime in leaving.items()}
            self._leaving.update(stopping.values())
            self.registry.apply_update(new, update)
            self.settings = new
            self.announcer.reconfigure(new.daemon)
            for name in (*update.changed, *update.added):
                self._add_runtime(name, after=stopping.get(name))
            await self._reconcile_now()
            for runtime in self.printers.values():
                runtime.resume_firmware(reloaded=True)
        await asyncio.gather(*stopping.values())
        self._leaving.difference_update(stopping.values())
        for runtime in leaving.values():
            self._machine.remove_model(runtime.model)
        for warning in new.warnings:
            log.warning("config_warning", warning=warning)
        self._count_reload("ok")
        log.info("config_reloaded", ok=True, added=list(update.added),
                 removed=list(update.removed), changed=list(update.changed),
                 unchanged=list(update.unchanged), needs_restart=ignored or None)
        self._status_changed()
        return update

    # -- systemd -----------------------------------------------------------------------------
    async def _watchdog_loop(self, interval_s: float) -> None:
        """WATCHDOG=1 from the event loop itself: a stuck loop stops the pings."""
        while True:
            self.notifier.watchdog()
            await asyncio.sleep(interval_s)

    def _status_changed(self) -> None:
        """A printer changed: STATUS= and the announcements follow, once per loop turn (a job
        changes two states; a rescan may change every printer)."""
        if self._status_pending:
            return
        self._status_pending = True
        asyncio.get_running_loop().call_soon(self._publish_status)

    def _publish_status(self) -> None:
        self._status_pending = False
        if self.notifier.active:
            self.notifier.status(status_line([p.status() for p in self.printers.values()]))
        self.announcer.changed()
        self._metrics_changed()

    # -- metrics and the status page ---------------------------------------------------------
    def _metrics_changed(self) -> None:
        if self.metrics_file is not None:
            self.metrics_file.changed()

    def _count_reload(self, result: str) -> None:
        self.counters.reloads[result] += 1
        self._metrics_changed()

    def _error_setter(self, source: str) -> Callable[[str | None], None]:
        def set_error(error: str | None) -> None:
            if error is None:
                self._errors.pop(source, None)
            else:
                self._errors[source] = error
        return set_error

    def metrics_text(self) -> str:
        """The Prometheus exposition of everything (the textfile and /metrics)."""
        uptime = time.monotonic() - self._started
        process = ProcessView(version=__version__,
                              python="{}.{}.{}".format(*sys.version_info[:3]),
                              start_time_s=self._started_at, uptime_s=uptime,
                              rss_bytes=rss_bytes(), cpu_s=cpu_seconds())
        views = [runtime.metrics_view() for runtime in self.printers.values()]
        return render(families(views, self.counters, process))

    def status_page(self, host: str) -> str:
        from supervisor.core.page import render_page  # noqa: PLC0415 (only when asked)

        return render_page(self.status(), recent_events(), host)

    def _mdns_subjects(self) -> list[Subject]:
        """The printers to announce now: listening, and listening beyond loopback."""
        daemon = self.settings.daemon
        if loopback_only(daemon.bind):
            return []
        return [subject for runtime in self.printers.values()
                if (subject := runtime.mdns_subject(daemon.location)) is not None]

    # -- control socket ----------------------------------------------------------------------
    async def _handle_request(self, request: dict[str, Any]) -> dict[str, Any]:
        cmd = request["cmd"]
        if cmd == "status":
            return {"ok": True, **self.status()}
        if cmd == "notify":
            event = request.get("event")
            if not isinstance(event, dict) or not all(
                    isinstance(k, str) and isinstance(v, str) for k, v in event.items()):
                raise RequestError('"event" must be an object of string KEY: VALUE pairs')
            try:
                self.hotplug(event, origin="notify")
            except EventError as exc:
                raise RequestError(str(exc)) from None
            return {"ok": True}
        raise RequestError(f"unknown command {cmd!r}; known: status, notify")

    def _daemon_errors(self) -> list[str]:
        trouble = log_trouble()
        return [*self._errors.values(), *([trouble] if trouble else [])]

    def _rejected(self, error: str) -> None:
        log.warning("notify_rejected", error=error)

    def status(self) -> dict[str, Any]:
        daemon = DaemonStatus(version=__version__, pid=os.getpid(),
                              event_source=self.settings.daemon.event_source,
                              uptime_s=round(time.monotonic() - self._started, 1),
                              mdns=self.announcer.state,
                              http=self.http.shown if self.http and self.http.listening else None,
                              metrics_file=str(self.metrics_file.path) if self.metrics_file
                              else None,
                              error="; ".join(self._daemon_errors()) or None)
        names = self.announcer.names
        printers: list[PrinterStatus] = [p.status(names.get(p.name))
                                         for p in self.printers.values()]
        return status_document(daemon, printers)
