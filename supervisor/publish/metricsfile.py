"""The Prometheus textfile (`metrics_file`), for node_exporter's textfile collector.

Written atomically (a dot-file beside it, then a rename, so the collector never reads half a
file and never sees the temporary one: it reads only `*.prom`) when a value in it changes, at
most once per MIN_INTERVAL_S (a burst makes one write), and otherwise once per HEARTBEAT_S.
Removed when the service stops: node_exporter then stops exposing stale values.

It sits on flash or an SD card (Debian and Pi boxes; on OpenWrt /var is RAM), so an idle
service leaves it alone: values that change without anything happening (the process's uptime,
memory and CPU, and the rescans the hourly safety net counts) are no reason to write; they are
as of the last write. The heartbeat is what tells an idle service from a dead one (a killed
service leaves its file; node_exporter keeps exposing it and its `node_textfile_mtime_seconds`):
an hour, the service's longest idle timer, so an idle day costs 24 writes of a few KiB (every
30 s before: 2,880), and an alert on a file older than an hour and a quarter (README) fires
within that of a death. A failed write is tried again at the next change or heartbeat.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

from supervisor.core.metrics import PREFIX
from supervisor.observe.log import get_logger

MIN_INTERVAL_S: Final = 1.0
HEARTBEAT_S: Final = 3600.0
FILE_MODE: Final = 0o644
#: Families whose change alone is no reason to write (see the module's doc).
SELF_CHANGING: Final = frozenset(f"{PREFIX}_{name}" for name in (
    "uptime_seconds", "resident_memory_bytes", "cpu_seconds_total", "reconciles_total"))

log = get_logger("supervisor.metrics")


class MetricsFile:
    """Keeps `path` equal to what `render` returns, within a second of each change."""

    def __init__(self, path: Path, render: Callable[[], str], *,
                 on_error: Callable[[str | None], None]) -> None:
        self.path = path
        self._render = render
        self._on_error = on_error
        self._temp = path.with_name(f".{path.name}.tmp")
        self._pending: asyncio.TimerHandle | None = None
        self._heartbeat: asyncio.TimerHandle | None = None
        self._last = -MIN_INTERVAL_S  # time.monotonic() of the last write
        self._written: str | None = None  # what was written, without SELF_CHANGING
        self._error: str | None = None
        self._started = False
        self.writes = 0

    def start(self) -> None:
        self._started = True
        self.write()

    def changed(self) -> None:
        """Something the file shows may have changed: write it now, or a second after the
        last write, if it did."""
        if self._pending is not None or not self._started:
            return
        delay = max(0.0, self._last + MIN_INTERVAL_S - time.monotonic())
        self._pending = asyncio.get_running_loop().call_later(delay, self._check)

    def _check(self) -> None:
        self._pending = None
        text = self._render()
        if _lasting(text) != self._written:
            self.write(text)

    def write(self, text: str | None = None) -> None:
        """Write `text` (what `render` returns now, by default), whatever changed."""
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
        self._last = time.monotonic()
        if self._started:
            if self._heartbeat is not None:
                self._heartbeat.cancel()
            self._heartbeat = asyncio.get_running_loop().call_later(HEARTBEAT_S, self.write)
        try:
            if text is None:
                text = self._render()
            data = text.encode()
            fd = os.open(self._temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC,
                         FILE_MODE)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                os.fchmod(fd, FILE_MODE)  # whatever the umask
            finally:
                os.close(fd)
            os.replace(self._temp, self.path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(self._temp)
            self._written = None  # the next change writes, whatever it is
            self._failed(f"cannot write the metrics file {self.path}: "
                         f"{exc.strerror or exc}")
            return
        self._written = _lasting(text)
        self.writes += 1
        if self._error is not None:
            self._error = None
            self._on_error(None)
            log.info("metrics_file_written", path=str(self.path))

    def _failed(self, error: str) -> None:
        if error != self._error:  # once per distinct problem, not once a second
            log.error("metrics_file_failed", path=str(self.path), error=error,
                      retry_s=HEARTBEAT_S)
            self._error = error
            self._on_error(error)

    async def close(self) -> None:
        """Stop writing and remove the file (and a temporary one a crash may have left)."""
        self._started = False
        for timer in (self._pending, self._heartbeat):
            if timer is not None:
                timer.cancel()
        self._pending = self._heartbeat = None
        for path in (self.path, self._temp):
            try:
                path.unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                log.warning("metrics_file_failed", path=str(path),
                            error=f"cannot remove it: {exc.strerror or exc}")


def _lasting(text: str) -> str:
    """The exposition without the samples of SELF_CHANGING families (HELP and TYPE stay)."""
    return "\n".join(line for line in text.split("\n")
                     if line.partition(" ")[0].partition("{")[0] not in SELF_CHANGING)
