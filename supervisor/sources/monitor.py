"""The netlink event source: a pyudev Monitor (udev or raw kernel events) read by the loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any, Final

from supervisor.observe.log import get_logger

MAX_EVENTS_PER_WAKEUP: Final = 512  # then yield to the loop; the rest are read next time
RECEIVE_BUFFER_BYTES: Final = 4 << 20  # room for a burst; reconcile covers what is dropped

log = get_logger("supervisor.monitor")

EventSink = Callable[[Mapping[str, str]], None]


def open_monitor(source: str) -> Any:
    """A started pyudev Monitor for `source` ("udev" or "kernel"), filtered to USB printers.

    Started before the first sysfs scan, so no event falls between the two.
    """
    import pyudev  # only a service with a netlink source needs it

    monitor = pyudev.Monitor.from_netlink(pyudev.Context(), source=source)
    monitor.filter_by("usb")
    monitor.filter_by("usbmisc")
    try:
        monitor.set_receive_buffer_size(RECEIVE_BUFFER_BYTES)
    except Exception as exc:  # not fatal: without CAP_NET_ADMIN the default size stays
        log.debug("monitor_buffer_unchanged", error=repr(exc))
    monitor.start()
    return monitor


class MonitorSource:
    """Feeds each received uevent's properties to `sink` from the event loop's reader;
    `lost` hears when events may have been dropped (then only a rescan knows the truth)."""

    def __init__(self, monitor: Any, sink: EventSink, lost: Callable[[], None]) -> None:
        self._monitor = monitor
        self._sink = sink
        self._lost = lost
        self._loop: asyncio.AbstractEventLoop | None = None

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        loop.add_reader(self._monitor.fileno(), self._drain)

    def close(self) -> None:
        if self._loop is not None:
            self._loop.remove_reader(self._monitor.fileno())
            self._loop = None

    def _drain(self) -> None:
        for _ in range(MAX_EVENTS_PER_WAKEUP):
            try:
                device = self._monitor.poll(timeout=0)
            except ValueError as exc:  # a malformed message: skip it, read on
                log.warning("hotplug_unreadable", error=str(exc))
                continue
            except OSError as exc:  # ENOBUFS: the kernel dropped events for us
                log.warning("hotplug_events_lost", error=str(exc))
                self._lost()
                continue
            if device is None:
                return
            self._sink(dict(device.properties))
