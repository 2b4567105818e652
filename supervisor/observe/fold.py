"""Folded log lines: under a flood, one line per kind and client address per interval.

The first line of a kind from an address is written at once and opens a window; the same
kind from the same address within the window is only counted; when the window ends, one line
carries the count (`count`, `interval_s`) and opens the next window, until a window passes
with nothing to count. A port scan or a flood of idle connections so costs a few lines, never
one per connection.
"""

from __future__ import annotations

import asyncio
from typing import Any, Final

FOLD_INTERVAL_S: Final = 10.0


class FoldedLog:
    """Folds repeated lines of one event from one client address (`host`)."""

    def __init__(self, log: Any, interval_s: float = FOLD_INTERVAL_S) -> None:
        self._log = log
        self._interval_s = interval_s
        self._counts: dict[tuple[str, str, str], int] = {}  # (level, event, host) → folded
        self._timers: dict[tuple[str, str, str], asyncio.TimerHandle] = {}

    def log(self, level: str, event: str, host: str, **fields: Any) -> None:
        key = (level, event, host)
        if key in self._counts:
            self._counts[key] += 1
            return
        getattr(self._log, level)(event, **fields)
        self._open(key)

    def _open(self, key: tuple[str, str, str]) -> None:
        self._counts[key] = 0
        self._timers[key] = asyncio.get_running_loop().call_later(
            self._interval_s, self._close, key)

    def _close(self, key: tuple[str, str, str]) -> None:
        if self._emit(key):
            self._open(key)

    def _emit(self, key: tuple[str, str, str]) -> bool:
        """The window's count as one line, if anything was counted; the window ends."""
        count = self._counts.pop(key, 0)
        self._timers.pop(key, None)
        if count:
            level, event, host = key
            getattr(self._log, level)(event, client_address=host, count=count,
                                      interval_s=self._interval_s, folded=True)
        return count > 0

    def flush(self) -> None:
        """Write what is counted now (the forwarder stops): no count is lost."""
        for key, timer in list(self._timers.items()):
            timer.cancel()
            self._emit(key)
