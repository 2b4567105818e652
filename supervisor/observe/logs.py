"""Logging: every line rendered once as JSON, written once per event-loop turn.

structlog renders each line to JSON itself (no stdlib handler chain, no second rendering to
measure it for rotation) and hands it to one sink. The sink writes to the log file when the
event loop's turn ends (one write for all the lines of the turn; at once outside a loop or from
another thread), rotates by its own byte count (`max_bytes`, for tmpfs routers without
logrotate: .1 .2 .3 beside it) or follows an external logrotate's rename (`max_bytes = 0`: one
stat per write). stderr (the journal, logd) gets the human form of warnings and errors when a
log file is kept, and of every line when it is not. Records of stdlib loggers (asyncio,
transitions, pyudev) reach the same sink.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
from collections import deque
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

ROTATED_FILES = 3  # events.jsonl.1 … .3 kept beside the live file when size-capped
RECENT_EVENTS = 20  # info and above kept in memory for the status page
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
           "error": logging.ERROR, "critical": logging.CRITICAL, "exception": logging.ERROR}


class LogSink:
    """The log file and stderr; lines are collected and written once per loop turn."""

    def __init__(self, log_file: Path | None, *, max_bytes: int, stderr: TextIO,
                 stderr_level: int) -> None:
        self.path = log_file
        self.max_bytes = max_bytes
        self._stderr = stderr
        self._stderr_level = stderr_level
        self._console = structlog.dev.ConsoleRenderer(colors=stderr.isatty(),
                                                      timestamp_key="timestamp")
        self._json = structlog.processors.JSONRenderer()
        self._tracebacks = structlog.processors.dict_tracebacks
        self._lines: list[str] = []
        self._errs: list[str] = []
        self._lock = threading.Lock()
        self._scheduled_on: asyncio.AbstractEventLoop | None = None
        self._file: Any = None
        self._size = 0
        self._inode: tuple[int, int] | None = None
        self.recent: deque[EventDict] = deque(maxlen=RECENT_EVENTS)
        if log_file is not None:
            log_file.parent.mkdir(parents=True, exist_ok=True)
            self._open()

    # -- the last processor of structlog's chain -------------------------------------------
    def __call__(self, _logger: WrappedLogger, method: str, event_dict: EventDict) -> str:
        level = _LEVELS.get(method, logging.INFO)
        event_dict.setdefault("level", "error" if method == "exception" else method)
        self.emit(event_dict, level)
        raise structlog.DropEvent

    def emit(self, event_dict: EventDict, level: int) -> None:
        """One record: JSON for the file; the human form for stderr when it is wanted."""
        line = None
        if self.path is not None:
            flat = (self._tracebacks(None, "", dict(event_dict)) if "exc_info" in event_dict
                    else event_dict)
            line = str(self._json(None, "", flat))
        err = (str(self._console(None, "", dict(event_dict)))
               if level >= self._stderr_level else None)
        with self._lock:
            if level >= logging.INFO:  # the record itself: structlog makes one per call
                self.recent.append(event_dict)
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

    def recent_events(self) -> list[EventDict]:
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
            try:
                self._write(lines)
            except OSError as exc:
                print(f"printer-supervisor: cannot write the log {self.path}: {exc}",
                      file=self._stderr)

    def _write(self, lines: list[str]) -> None:
        if self.max_bytes == 0:
            self._follow_rename()
            self._file.write("".join(f"{line}\n" for line in lines))
        else:
            chunk: list[str] = []
            for line in lines:
                data = f"{line}\n"
                size = len(data.encode("utf-8")) if not data.isascii() else len(data)
                if self._size and self._size + size > self.max_bytes:
                    self._file.write("".join(chunk))
                    chunk = []
                    self._rotate()
                chunk.append(data)
                self._size += size
            self._file.write("".join(chunk))
        self._file.flush()

    def _open(self) -> None:
        assert self.path is not None
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (kept open)
        info = os.fstat(self._file.fileno())
        self._size, self._inode = info.st_size, (info.st_dev, info.st_ino)

    def _rotate(self) -> None:
        """As logging's RotatingFileHandler names them: .1 is the newest of the old ones."""
        assert self.path is not None
        self._file.close()
        for n in range(ROTATED_FILES - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{n}")
            if older.exists():
                os.replace(older, self.path.with_name(f"{self.path.name}.{n + 1}"))
        if self.path.exists():
            os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
        self._open()

    def _follow_rename(self) -> None:
        """logrotate moved the file away (or deleted it): write to a new one at the path."""
        assert self.path is not None
        try:
            info = os.stat(self.path)
            current: tuple[int, int] | None = (info.st_dev, info.st_ino)
        except FileNotFoundError:
            current = None
        if current != self._inode:
            self._file.close()
            self._open()

    def close(self) -> None:
        self.flush()
        if self._file is not None:
            self._file.close()
            self._file = None


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
        event: EventDict = {"event": record.getMessage(), "logger": record.name,
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
    processors: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
        sink,
    ]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.ReturnLoggerFactory(),
        # Not cached: loggers then follow a later configure (tests, `demo`).
        cache_logger_on_first_use=False,
    )
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
    structlog.reset_defaults()


def recent_events() -> list[EventDict]:
    """The last info-and-above records, oldest first (the status page shows them)."""
    return _sink.recent_events() if _sink is not None else []


def flush_logging() -> None:
    """Write what the current loop turn has collected (before the process exits)."""
    if _sink is not None:
        _sink.flush()
