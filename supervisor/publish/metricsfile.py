"""The Prometheus textfile (`metrics_file`), for node_exporter's textfile collector.

Written atomically (a dot-file beside it, then a rename, so the collector never reads half a
file and never sees the temporary one: it reads only `*.prom`), on every change but at most
once per MIN_INTERVAL_S, and every REFRESH_S anyway so that uptime, memory and CPU stay
current. Removed when the service stops: node_exporter then stops exposing stale values.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

from supervisor.observe.log import get_logger

MIN_INTERVAL_S: Final = 1.0
REFRESH_S: Final = 30.0
FILE_MODE: Final = 0o644

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
        self._last = -MIN_INTERVAL_S  # time.monotonic() of the last write
        self._refresh: asyncio.Task[None] | None = None
        self._error: str | None = None
        self.writes = 0

    def start(self) -> None:
        self.write()
        self._refresh = asyncio.create_task(self._refresh_loop(), name="metrics-file")

    def changed(self) -> None:
        """Something the file shows changed: write it now, or a second after the last write."""
        if self._pending is not None or self._refresh is None:
            return
        delay = max(0.0, self._last + MIN_INTERVAL_S - time.monotonic())
        self._pending = asyncio.get_running_loop().call_later(delay, self.write)

    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(REFRESH_S)
            self.changed()

    def write(self) -> None:
        self._pending = None
        self._last = time.monotonic()
        try:
            data = self._render().encode()
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
            self._failed(f"cannot write the metrics file {self.path}: "
                         f"{exc.strerror or exc}")
            return
        self.writes += 1
        if self._error is not None:
            self._error = None
            self._on_error(None)
            log.info("metrics_file_written", path=str(self.path))

    def _failed(self, error: str) -> None:
        if error != self._error:  # once per distinct problem, not once a second
            log.error("metrics_file_failed", path=str(self.path), error=error,
                      retry_s=REFRESH_S)
            self._error = error
            self._on_error(error)

    async def close(self) -> None:
        """Stop writing and remove the file (and a temporary one a crash may have left)."""
        if self._refresh is not None:
            self._refresh.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresh
            self._refresh = None
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
        for path in (self.path, self._temp):
            try:
                path.unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                log.warning("metrics_file_failed", path=str(path),
                            error=f"cannot remove it: {exc.strerror or exc}")
