"""Logging: every line rendered once as JSON, written once per event-loop turn.

Every record (observe.log's loggers, and the records of stdlib loggers: asyncio, transitions,
pyudev) is rendered to JSON once, with no handler chain and no second rendering to measure it
for rotation, by one sink. The sink hands the lines to the log file (observe.logfile: whole
lines, rotation, its own trouble folded and never raised) when the event loop's turn ends (one
write for all the lines of the turn; at once outside a loop or from another thread). stderr (the
journal, logd) gets the human form of warnings and errors when a log file is kept, and of every
line when it is not.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import threading
from collections import deque
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from supervisor.observe import log
from supervisor.observe.log import Record
from supervisor.observe.logfile import LogFile

RECENT_EVENTS = 20  # info and above kept in memory for the status page
EVENT_WIDTH = 30  # the human form's event column


class LogSink:
    """The log file and stderr; lines are collected and written once per loop turn."""

    def __init__(self, log_file: Path | None, *, max_bytes: int, stderr: TextIO,
                 stderr_level: int) -> None:
        self.path = log_file
        self.max_bytes = max_bytes
        self._stderr = stderr
        self._stderr_level = stderr_level
        self._lines: list[str] = []
        self._errs: list[str] = []
        self._lock = threading.Lock()
        self._scheduled_on: asyncio.AbstractEventLoop | None = None
        self.recent: deque[Record] = deque(maxlen=RECENT_EVENTS)
        self._file = (LogFile(log_file, max_bytes=max_bytes, report=self._report,
                              render=self._render) if log_file is not None else None)

    def emit(self, record: Record, level: int) -> None:
        """One record: JSON for the file; the human form for stderr when it is wanted."""
        line = json.dumps(record, default=repr) if self.path is not None else None
        err = human(record) if level >= self._stderr_level else None
        with self._lock:
            if level >= logging.INFO:  # the record itself: a logger makes one per call
                self.recent.append(record)
            if line is not None:
                self._lines.append(line)
            if err is not None:
                self._errs.append(err)
            loop = _running_loop()
            if loop is None or (self._scheduled_on not in (None, loop)):
                # Outside a loop, in another thread, or a loop ended with lines pending: at once.
                self._flush_locked()
                return
            if self._scheduled_on is loop:
                return  # this turn's write is scheduled already
            self._scheduled_on = loop
        loop.call_soon(self.flush)

    def trouble(self) -> str | None:
        return self._file.trouble if self._file is not None else None

    def recent_events(self) -> list[Record]:
        with self._lock:
            return list(self.recent)

    # -- writing -----------------------------------------------------------------------------
    def flush(self) -> None:
        with self._lock:
            self._flush_locked()

    def _flush_locked(self) -> None:
        self._scheduled_on = None
        lines, self._lines = self._lines, []
        errs, self._errs = self._errs, []
        if errs:
            try:
                self._stderr.write("\n".join(errs) + "\n")
                self._stderr.flush()
            except (OSError, ValueError):
                pass  # stderr closed: the file still has every line
        if lines and self._file is not None:
            self._file.write(lines)

    def _render(self, fields: dict[str, Any]) -> str:
        """A record of the sink's own, as a logger's would be."""
        return json.dumps({"timestamp": log.iso_now(), **fields}, default=repr)

    def _report(self, fields: dict[str, Any]) -> None:
        """The log file's own trouble: on stderr only (the file is what fails)."""
        try:
            self._stderr.write(human({"timestamp": log.iso_now(), **fields}) + "\n")
            self._stderr.flush()
        except (OSError, ValueError):
            pass  # stderr closed too: nowhere left to tell

    def close(self) -> None:
        self.flush()
        if self._file is not None:
            self._file.close()
            self._file = None


def human(record: Record) -> str:
    """The record for a person: time, level, event, then the other fields by name (an
    exception as its type and message, each cause on a line of its own)."""
    rest = {k: v for k, v in record.items()
            if k not in ("timestamp", "level", "event", "exception")}
    fields = " ".join(f"{key}={_token(value)}" for key, value in sorted(rest.items()))
    text = (f"{record.get('timestamp', '')} [{record.get('level', ''):<9}] "
            f"{record.get('event', ''):<{EVENT_WIDTH}} {fields}").rstrip()
    error = record.get("exception")
    if isinstance(error, list):
        text += "".join(f"\n  {e.get('exc_type')}: {e.get('exc_value')}" for e in error)
    elif error:
        text += "\n" + str(error).rstrip()
    return text


def _token(value: object) -> str:
    if isinstance(value, str) and value and value.isprintable() and not any(
            c in value for c in " '\"="):
        return value
    return repr(value)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class _StdlibBridge(logging.Handler):
    """Records of stdlib loggers (asyncio, transitions, pyudev) into the same sink."""

    def __init__(self, sink: LogSink) -> None:
        super().__init__()
        self._sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        event: Record = {"event": record.getMessage(), "logger": record.name,
                            "level": record.levelname.lower(),
                            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat()
                            .replace("+00:00", "Z")}
        if record.exc_info:
            event["exception"] = logging.Formatter().formatException(record.exc_info)
        self._sink.emit(event, record.levelno)


_sink: LogSink | None = None


def configure_logging(log_file: Path | None, *, max_bytes: int, stderr: TextIO | None = None,
                      level: int = logging.INFO) -> None:
    """Route every log record to `log_file` as JSON, and to stderr for a person to read.

    `max_bytes > 0` rotates by size (tmpfs routers have no logrotate); 0 follows an external
    logrotate's rename. The log directory is created if missing.
    """
    global _sink  # noqa: PLW0603 (one logging setup per process, as stdlib's)
    reset_logging()
    stream = stderr if stderr is not None else sys.stderr
    sink = _sink = LogSink(log_file, max_bytes=max_bytes, stderr=stream,
                           stderr_level=logging.WARNING if log_file is not None else level)
    log.configure(sink.emit, level)
    root = logging.getLogger()
    root.setLevel(level)
    root.addHandler(_StdlibBridge(sink))
    for noisy in ("transitions", "asyncio", "pyudev"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def reset_logging() -> None:
    """Write what is pending and close the log (tests, and `demo` when it ends)."""
    global _sink  # noqa: PLW0603
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, _StdlibBridge):
            root.removeHandler(handler)
            handler.close()
    if _sink is not None:
        _sink.close()
        _sink = None
    log.configure(None)


def recent_events() -> list[Record]:
    """The last info-and-above records, oldest first (the status page shows them)."""
    return _sink.recent_events() if _sink is not None else []


def log_trouble() -> str | None:
    """Why the log file cannot be written now, or None (`status` shows it)."""
    return _sink.trouble() if _sink is not None else None


def flush_logging() -> None:
    """Write what the current loop turn has collected (before the process exits)."""
    if _sink is not None:
        _sink.flush()
