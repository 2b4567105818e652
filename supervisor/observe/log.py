"""Structured logging: named loggers with bound fields; each call is one record for the sink.

The part of structlog this service used — `get_logger`, `bind`, the level methods, level
filtering, ISO 8601 UTC timestamps, exceptions as data — in one small module, because importing
structlog cost a router 2.3 MiB of its RAM and about 20 ms of every start (bench, router
section). A record is what structlog's chain (TimeStamper, dict_tracebacks, JSONRenderer) made:
the bound fields, the call's fields, then `event`, `timestamp` and `level`; an exception is
`exception`, a list of {exc_type, exc_value, is_cause, frames: [{filename, lineno, name}]}, the
raised one first. tests/test_log.py holds the two against each other.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Final

DEBUG: Final = 10
INFO: Final = 20
WARNING: Final = 30
ERROR: Final = 40
CRITICAL: Final = 50
LEVELS: Final = {"debug": DEBUG, "info": INFO, "warning": WARNING, "error": ERROR,
                 "critical": CRITICAL}

Record = dict[str, Any]
#: Where records go: the record and its level number (observe.logs' sink).
Sink = Callable[[Record, int], None]

_sink: Sink | None = None
_threshold = INFO


def configure(sink: Sink | None, level: int = INFO) -> None:
    """Send every record at `level` and above to `sink` (None: records are dropped)."""
    global _sink, _threshold
    _sink, _threshold = sink, level


def get_logger(name: str = "") -> Logger:
    """A logger; `name` says which part logs (for a reader of the code, not in the record)."""
    return Logger(name, {})


class Logger:
    """Bound fields, and one method per level; `exception` adds the exception being handled."""

    __slots__ = ("_context", "name")

    def __init__(self, name: str, context: Record) -> None:
        self.name = name
        self._context = context

    def bind(self, **fields: Any) -> Logger:
        return Logger(self.name, {**self._context, **fields})

    def debug(self, event: str, **fields: Any) -> None:
        if _threshold <= DEBUG:
            self._emit(DEBUG, "debug", event, fields)

    def info(self, event: str, **fields: Any) -> None:
        if _threshold <= INFO:
            self._emit(INFO, "info", event, fields)

    def warning(self, event: str, **fields: Any) -> None:
        if _threshold <= WARNING:
            self._emit(WARNING, "warning", event, fields)

    def error(self, event: str, **fields: Any) -> None:
        if _threshold <= ERROR:
            self._emit(ERROR, "error", event, fields)

    def critical(self, event: str, **fields: Any) -> None:
        if _threshold <= CRITICAL:
            self._emit(CRITICAL, "critical", event, fields)

    def exception(self, event: str, **fields: Any) -> None:
        """An error with the exception being handled (as structlog's exception())."""
        if _threshold <= ERROR:
            self._emit(ERROR, "error", event, {**fields, "exc_info": True})

    def _emit(self, level: int, name: str, event: str, fields: Record) -> None:
        sink = _sink
        if sink is None:
            return
        record = {**self._context, **fields}
        exc_info = record.pop("exc_info", None)
        record["event"] = event
        record["timestamp"] = iso_now()
        record["level"] = name
        if exc_info:
            error = sys.exc_info()[1] if exc_info is True else exc_info
            if isinstance(error, BaseException):
                record["exception"] = exception_data(error)
        sink(record, level)


def iso_now() -> str:
    """Now as ISO 8601 in UTC with microseconds and a Z (as structlog's TimeStamper wrote it)."""
    now = time.time()
    seconds = int(now)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + \
        f".{int((now - seconds) * 1_000_000):06d}Z"


def exception_data(error: BaseException) -> list[Record]:
    """The exception and its causes as data: the raised one first (structlog's order)."""
    chain: list[Record] = []
    seen: set[int] = set()
    current: BaseException | None = error
    is_cause = False
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append({"exc_type": type(current).__name__, "exc_value": str(current),
                      "is_cause": is_cause, "frames": _frames(current.__traceback__)})
        cause = current.__cause__ or (None if current.__suppress_context__
                                      else current.__context__)
        is_cause = current.__cause__ is not None
        current = cause
    return chain


def _frames(tb: TracebackType | None) -> list[Record]:
    frames = []
    while tb is not None:
        code = tb.tb_frame.f_code
        frames.append({"filename": code.co_filename, "lineno": tb.tb_lineno,
                       "name": code.co_name})
        tb = tb.tb_next
    return frames
