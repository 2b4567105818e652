"""The announcer: keeps the host responder's services equal to the printers that are ready.

It finds a responder (`[daemon] mdns`: avahi, umdns, or auto = avahi, else umdns), then
reconciles on every status change: the wanted set is computed afresh from the printers (level,
not edge), and the responder adds what is new and withdraws what went. Without a responder it
says so once (`mdns_unavailable`) and keeps printing.

Idle, it never polls (a router sleeps 99 % of the day). A responder that can say when it comes
is listened to: on a system bus without avahi-daemon, the bus's NameOwnerChanged for avahi
(also how a present avahi's restart is seen). One that cannot (umdns, which has no signal a
service user may hear; a system bus that is not there) is looked for again when a printer
becomes announceable, on a reload, and otherwise once an hour (RETRY_MAX_S). A search is never
repeated within TRIGGER_MIN_S, so a flapping printer cannot make a storm of them. Only right
after a responder was lost (it is likely restarting) are the first pauses short, doubling from
RETRY_FIRST_S up to the hour. A present umdns is never polled either: a failed `reload` is how
its loss is found.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from supervisor.config.settings import DaemonSettings
from supervisor.core.announce import SERVICE_TYPE, Announcement, Subject, plan
from supervisor.observe.log import get_logger
from supervisor.publish.responder import Responder, ResponderLost, Unavailable, Watching
from supervisor.publish.umdns import UMDNS_DIR, Umdns

RETRY_FIRST_S: Final = 2.0  # a responder lost (restarting?) is looked for after this...
RETRY_MAX_S: Final = 3600.0  # ...doubling up to this, the pause while nothing happens
TRIGGER_MIN_S: Final = 5.0  # a printer's change or a reload searches at most this often
CLOSE_TIMEOUT_S: Final = 3.0  # withdrawing everything at shutdown
DEFAULT_SYSTEM_BUS: Final = "/var/run/dbus/system_bus_socket"

log = get_logger("supervisor.mdns")


class _Changed:
    """The printers changed: compute the wanted set again."""


class _Reloaded:
    """A reload that kept the mode: announce to match, or look for a responder at once."""


CHANGED: Final = _Changed()
RELOADED: Final = _Reloaded()


@dataclass(frozen=True)
class _Reconfigured:
    """`[daemon] mdns` or `bind` changed on a reload: find the responder again."""


class Announcer:
    """Announces ready printers through the host's mDNS responder; see the module's doc."""

    def __init__(self, daemon: DaemonSettings, subjects: Callable[[], list[Subject]], *,
                 umdns_dir: Path = UMDNS_DIR) -> None:
        self.mode = daemon.mdns
        self.names: dict[str, str] = {}  # printer → the name it is announced under now
        self.responder: str | None = None  # the responder in use, while it is reachable
        self.searches = 0  # how often a responder was looked for
        self.retry_s: float | None = None  # the pause before the next search, while searching
        self._bind = daemon.bind
        self._subjects = subjects
        self._umdns_dir = umdns_dir
        self._events: asyncio.Queue[object] = asyncio.Queue()
        self._current: Responder | None = None
        self._said_unavailable = False
        self._task: asyncio.Task[None] | None = None
        self._searched = float("-inf")  # loop time of the last search
        self._searched_for: list[Subject] = []  # what was to be announced then

    @property
    def state(self) -> str:
        """For `status`: off, unavailable, or the responder in use."""
        if self.mode == "off":
            return "off"
        return self.responder or "unavailable"

    # -- what the service tells it -----------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="mdns")

    def changed(self) -> None:
        """A printer changed state, port or error: announce and withdraw to match."""
        self._events.put_nowait(CHANGED)

    def reconfigure(self, daemon: DaemonSettings) -> None:
        """A reload: a new mode or bind list means finding the responder again; without a
        responder, any reload looks for one (`reload` after starting umdns announces at once)."""
        if (daemon.mdns, daemon.bind) != (self.mode, self._bind):
            self.mode, self._bind = daemon.mdns, daemon.bind
            self._events.put_nowait(_Reconfigured())
        else:
            self._events.put_nowait(RELOADED)

    async def close(self) -> None:
        """Stop, withdrawing every announcement (avahi would on our exit anyway; umdns not)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        responder, self._current = self._current, None
        if responder is None:
            return
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT_S):
                await responder.close("service stopping")
        except Exception as exc:  # the responder went at the same time: nothing to withdraw
            log.warning("mdns_failed", error=f"withdrawing at shutdown: {exc!r}")

    # -- the loop ---------------------------------------------------------------------------
    async def _run(self) -> None:
        # At start a responder is there, or says when it comes (avahi on the bus), or is most
        # likely not installed at all: no quick retries then, only triggers and the hour.
        pause = RETRY_MAX_S
        while True:
            if self.mode == "off":
                await self._idle(None)
                continue
            responder = await self._find()
            if responder is None:
                if await self._idle(pause):
                    pause = min(pause * 2, RETRY_MAX_S)
                continue
            lost = await self._serve(responder)
            pause = RETRY_FIRST_S if lost else RETRY_MAX_S

    async def _idle(self, pause_s: float | None) -> bool:
        """Wait for the next search: True when it is `pause_s` since the last one; False when
        sooner, for a trigger (a printer to announce that was not at the last search, or a
        reload: never within TRIGGER_MIN_S of the last search) or a reload changing the mode."""
        loop = asyncio.get_running_loop()
        self.retry_s = pause_s
        due = None if pause_s is None else self._searched + pause_s
        try:
            while True:
                async with asyncio.timeout_at(due):
                    event = await self._events.get()
                if isinstance(event, _Reconfigured):
                    return False
                if self.mode != "off" and (event is RELOADED or (
                        event is CHANGED and self._subjects() != self._searched_for)):
                    soon = max(loop.time(), self._searched + TRIGGER_MIN_S)
                    if due is None or soon < due:
                        due, pause_s = soon, None
        except TimeoutError:
            return pause_s is not None
        finally:
            self.retry_s = None

    async def _find(self) -> Responder | None:
        """The first responder present; else one that will say when it comes (avahi on a bus
        it is not on), or None."""
        self.searches += 1
        self._searched = asyncio.get_running_loop().time()
        self._searched_for = self._subjects()
        tried: list[str] = []
        watching: Responder | None = None
        for kind in ("avahi", "umdns") if self.mode == "auto" else (self.mode,):
            try:
                responder = self._responder(kind)
                await responder.connect()
            except Watching as exc:
                tried.append(f"{kind}: {exc}")
                watching = watching or responder
                continue
            except Unavailable as exc:
                tried.append(f"{kind}: {exc}")
                continue
            if watching is not None:
                await watching.close("another responder is there")
            self.available(kind, responder.host)
            return responder
        self.unavailable(tried)
        return watching

    def _responder(self, kind: str) -> Responder:
        if kind == "avahi":
            bus = system_bus_socket()
            if not os.path.exists(bus):  # checked before jeepney is imported at all
                raise Unavailable(f"no system bus at {bus}")
            from supervisor.publish.avahi import Avahi  # noqa: PLC0415 (only with a bus)

            return Avahi(self, self._events, self._bind)
        return Umdns(self, self._umdns_dir)

    async def _serve(self, responder: Responder) -> bool:
        """Reconcile on every change until the responder is lost (True) or the mode changes."""
        self._current = responder
        try:
            await responder.apply(self._wanted(responder.host))
            while True:
                event = await self._events.get()
                if isinstance(event, _Reconfigured):
                    await responder.close("mDNS reconfigured")
                    self.responder = None
                    self._current = None
                    return False
                if isinstance(event, ResponderLost):
                    raise event
                if event is CHANGED or event is RELOADED or await responder.handle(event):
                    await responder.apply(self._wanted(responder.host))
        except asyncio.CancelledError:
            raise  # close() withdraws what `_current` holds
        except Exception as exc:  # the responder went, or a bug: printing is never affected
            await self._lost(responder, exc)
            return True

    async def _lost(self, responder: Responder, exc: Exception) -> None:
        reason = str(exc) if isinstance(exc, ResponderLost) else repr(exc)
        if not isinstance(exc, ResponderLost):
            log.error("mdns_failed", error=reason)
        with contextlib.suppress(Exception):  # it reports what it could still withdraw
            async with asyncio.timeout(CLOSE_TIMEOUT_S):
                await responder.close(reason)
        for printer, name in sorted(self.names.items()):  # gone with the responder
            log.info("mdns_withdrawn", printer=printer, name=name, reason=reason)
        self.names.clear()
        self._current = None
        self.unavailable([f"{responder.kind}: {reason}"])

    def _wanted(self, host: str) -> dict[str, Announcement]:
        return plan(self._subjects(), host)

    # -- what responders report (Report) ------------------------------------------------------
    def announced(self, printer: str, name: str, announcement: Announcement) -> None:
        self.names[printer] = name
        log.info("mdns_announced", printer=printer, name=name, service=SERVICE_TYPE,
                 port=announcement.port, responder=self.responder)

    def withdrawn(self, printer: str, name: str | None, reason: str) -> None:
        self.names.pop(printer, None)
        if name is not None:
            log.info("mdns_withdrawn", printer=printer, name=name, reason=reason)

    def collision(self, printer: str, name: str, alternative: str) -> None:
        log.warning("mdns_collision", printer=printer, name=name, alternative=alternative)

    def failed(self, printer: str, error: str) -> None:
        log.error("mdns_failed", printer=printer, error=error)

    def unavailable(self, tried: list[str]) -> None:
        self.responder = None
        if not self._said_unavailable:  # once per outage, not once per search
            self._said_unavailable = True
            log.warning("mdns_unavailable", mode=self.mode, tried=tried,
                        action="printing goes on; announcing once a responder is reachable")

    def available(self, kind: str, host: str) -> None:
        self.responder = kind
        self._said_unavailable = False
        log.info("mdns_responder", responder=kind, host=host)


def system_bus_socket() -> str:
    """The system bus's socket path, as D-Bus clients find it ($DBUS_SYSTEM_BUS_ADDRESS)."""
    address = os.environ.get("DBUS_SYSTEM_BUS_ADDRESS", "")
    for part in address.split(";"):
        transport, _, options = part.partition(":")
        if transport == "unix":
            for option in options.split(","):
                key, _, value = option.partition("=")
                if key == "path":
                    return value
    return DEFAULT_SYSTEM_BUS
