"""The JSON log file: whole lines appended, rotated, and its own trouble kept from spreading.

Lines go out with one `os.write` on an O_APPEND descriptor; a write the disk cuts short is
truncated back to its last whole line, so a reader never sees half a JSON object. The file is
rotated by its own byte count (`max_bytes`, for tmpfs routers without logrotate) or followed to a
new one after logrotate renamed it away (`max_bytes = 0`). A file, directory or disk that fails
(full, deleted, read-only, replaced) never raises to the caller: the lines are counted as lost,
the trouble is reported once and then at most once a minute (folded, with counts), writing is
tried again with back-off when the next lines come (no timer: an idle service stays idle), and
the first line written after it says how many lines were lost.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

ROTATED_FILES: Final = 3  # events.jsonl.1 … .3 kept beside the live file when size-capped
FIRST_RETRY_S: Final = 1.0  # after a failed write, lines are dropped this long before a retry
MAX_RETRY_S: Final = 60.0  # ...doubling up to this
REPORT_EVERY_S: Final = 60.0  # the trouble is told on stderr at most this often
FILE_MODE: Final = 0o666  # less the umask, as open(…, "a") made it

#: How the sink's own trouble is told: an event dict for stderr (the journal, logd).
Report = Callable[[dict[str, Any]], None]
#: A record of the sink's own as a JSON line (without the newline): the line saying how many
#: lines were lost, written first once writing works again.
Render = Callable[[dict[str, Any]], str]


class LogFile:
    """One JSON-lines log file that is written whole lines at a time and never raises."""

    def __init__(self, path: Path, *, max_bytes: int, report: Report, render: Render,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self._report = report
        self._render = render
        self._clock = clock
        self._fd: int | None = None  # None between a failure and its retry
        self._size = 0
        self._inode: tuple[int, int] | None = None
        # Trouble: since when writing fails, why, and what it has cost.
        self._failing_since: float | None = None
        self._error = ""
        self._lost = 0  # lines dropped since the trouble began
        self._failed = 0  # failed attempts since the trouble was last told
        self._retry_at = 0.0
        self._retry_s = FIRST_RETRY_S
        self._report_at = 0.0
        self._open()  # at start-up a failure is the caller's: the service cannot start

    @property
    def failing(self) -> bool:
        return self._failing_since is not None

    @property
    def trouble(self) -> str | None:
        """Why lines are being lost now, in a sentence (None while writing works)."""
        if self._failing_since is None:
            return None
        return f"cannot write the log {self.path}: {self._error} ({self._lost} lines lost)"

    def write(self, lines: list[str]) -> None:
        """Append `lines` (JSON, no newline) whole, or count them as lost; never raises."""
        if not lines:
            return
        now = self._clock()
        pending = list(lines)  # what is not written yet: the helpers take from its front
        resumed = self._failing_since is not None
        if resumed:
            if now < self._retry_at:
                self._lost += len(pending)
                return
            pending.insert(0, self._render(self._resumed_fields(now)))
        try:
            if self._fd is None:
                self._open()
            else:
                self._follow()
            self._append_all(pending)
        except OSError as exc:
            if resumed and len(pending) > len(lines):
                pending.pop(0)  # our own line: not one of the service's
            elif resumed:
                self._lost = 0  # the count made it to the file; the rest is a new loss
            self._fail(exc, now, lost=len(pending))
            return
        if resumed:
            self._recovered(now)

    def close(self) -> None:
        """Close the file; lines still lost are reported, never raised."""
        if self._failing_since is not None and self._lost:
            self._tell("log_write_failed", "error", final=True)
        self._close_fd()

    # -- writing -------------------------------------------------------------------------------
    def _append_all(self, pending: list[str]) -> None:
        if self.max_bytes == 0:
            self._append(pending, len(pending))
            return
        count = batch = 0
        for line in list(pending):
            size = len(line) + 1 if line.isascii() else len(line.encode("utf-8")) + 1
            if self._size + batch + size > self.max_bytes and self._size + batch:
                self._append(pending, count)
                count = batch = 0
                self._rotate()
            count += 1
            batch += size
        self._append(pending, count)

    def _append(self, pending: list[str], count: int) -> None:
        """The first `count` lines of `pending` in one write, taken from it once written. A
        write the disk cuts short is truncated back to its last whole line."""
        if not count:
            return
        assert self._fd is not None
        data = "".join(f"{line}\n" for line in pending[:count]).encode("utf-8")
        written = 0
        try:
            while written < len(data):
                written += os.write(self._fd, data[written:])
        except OSError:
            if written:
                kept = data.rfind(b"\n", 0, written) + 1  # 0 when not one line is whole
                end = os.fstat(self._fd).st_size - (written - kept)
                os.ftruncate(self._fd, end)
                self._size = end
                del pending[:data.count(b"\n", 0, kept)]
            raise
        del pending[:count]
        self._size += len(data)

    def _open(self) -> None:
        self._close_fd()
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
        try:
            fd = os.open(self.path, flags, FILE_MODE)
        except FileNotFoundError:  # its directory was deleted: make it again (where we may)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, flags, FILE_MODE)
        info = os.fstat(fd)
        self._fd, self._size, self._inode = fd, info.st_size, (info.st_dev, info.st_ino)

    def _follow(self) -> None:
        """The file at the path is not ours any more (logrotate renamed it, someone deleted
        it or its directory, or put a new directory in its place): write to a new one."""
        try:
            info = os.stat(self.path)
            current: tuple[int, int] | None = (info.st_dev, info.st_ino)
        except FileNotFoundError:
            current = None
        if current != self._inode:
            self._open()

    def _rotate(self) -> None:
        """As logging's RotatingFileHandler names them: .1 is the newest of the old ones. The
        old file stays open until the new one is, so a failure loses nothing written."""
        name = self.path.name
        for n in range(ROTATED_FILES - 1, 0, -1):
            older = self.path.with_name(f"{name}.{n}")
            if older.exists():
                os.replace(older, self.path.with_name(f"{name}.{n + 1}"))
        if self.path.exists():
            os.replace(self.path, self.path.with_name(f"{name}.1"))
        self._open()

    def _close_fd(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):  # nothing is buffered: a close loses nothing
                os.close(fd)

    # -- trouble -------------------------------------------------------------------------------
    def _fail(self, exc: OSError, now: float, *, lost: int) -> None:
        """Writing failed: drop what was pending, try again later, tell it folded."""
        self._close_fd()  # the retry opens afresh: the directory may be a new one by then
        first = self._failing_since is None
        if first:
            self._failing_since = now
            self._retry_s = FIRST_RETRY_S
        else:
            self._retry_s = min(self._retry_s * 2, MAX_RETRY_S)
        self._lost += lost
        self._failed += 1
        self._error = _describe(exc)
        self._retry_at = now + self._retry_s
        if first or now >= self._report_at:
            self._tell("log_write_failed", "error")
            self._report_at = now + REPORT_EVERY_S

    def _recovered(self, now: float) -> None:
        self._report(self._resumed_fields(now))
        self._failing_since = None
        self._lost = self._failed = 0
        self._retry_s = FIRST_RETRY_S

    def _resumed_fields(self, now: float) -> dict[str, Any]:
        assert self._failing_since is not None
        return {"event": "log_write_resumed", "level": "warning", "path": str(self.path),
                "lines_lost": self._lost, "error": self._error,
                "seconds": round(now - self._failing_since, 3)}

    def _tell(self, event: str, level: str, *, final: bool = False) -> None:
        fields: dict[str, Any] = {"event": event, "level": level, "path": str(self.path),
                                  "error": self._error, "lines_lost": self._lost,
                                  "failures": self._failed}
        if not final:
            fields["retry_s"] = round(self._retry_at - self._clock(), 3)
        self._failed = 0
        self._report(fields)


def _describe(exc: OSError) -> str:
    return f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else "")
