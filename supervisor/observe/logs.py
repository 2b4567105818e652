"""Logging: structlog and stdlib records through one pipeline, JSON lines to the log file."""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path
from typing import TextIO

import structlog
from structlog.typing import Processor

ROTATED_FILES = 3  # events.jsonl.1 … .3 kept beside the live file when size-capped

_SHARED: list[Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
]


def configure_logging(log_file: Path | None, *, max_bytes: int, stderr: TextIO | None = None,
                      level: int = logging.INFO) -> None:
    """Route every log record to `log_file` as JSON and to stderr for a person to read.

    `max_bytes > 0` rotates by size (tmpfs routers have no logrotate); 0 follows an external
    logrotate's rename. The log directory is created if missing.
    """
    structlog.configure(
        processors=[*_SHARED, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        # Not cached: a few µs per line (this service logs per job and event, not per byte), and
        # loggers then follow a later configure (tests, `demo`).
        cache_logger_on_first_use=False,
    )
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    root.setLevel(level)
    stream = stderr if stderr is not None else sys.stderr
    console = logging.StreamHandler(stream)
    console.setFormatter(_formatter(structlog.dev.ConsoleRenderer(
        colors=stream.isatty(), timestamp_key="timestamp")))
    root.addHandler(console)
    if log_file is not None:
        root.addHandler(_file_handler(log_file, max_bytes))
    for noisy in ("transitions", "asyncio", "pyudev"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _file_handler(log_file: Path, max_bytes: int) -> logging.Handler:
    log_file.parent.mkdir(parents=True, exist_ok=True)
    handler: logging.Handler
    if max_bytes > 0:
        handler = logging.handlers.RotatingFileHandler(
            log_file, maxBytes=max_bytes, backupCount=ROTATED_FILES, encoding="utf-8")
    else:
        handler = logging.handlers.WatchedFileHandler(log_file, encoding="utf-8")
    handler.setFormatter(_formatter(structlog.processors.dict_tracebacks,
                                    structlog.processors.JSONRenderer()))
    return handler


def _formatter(*processors: Processor) -> structlog.stdlib.ProcessorFormatter:
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*_SHARED, structlog.stdlib.add_logger_name],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *processors],
    )


def reset_logging() -> None:
    """Close the handlers `configure_logging` installed (tests, and `demo` when it ends)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    structlog.reset_defaults()
