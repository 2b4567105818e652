"""`supervisorctl logs`: filter, render and follow the service's JSON log across its rotations."""

from __future__ import annotations

import fnmatch
import gzip
import json
import os
import re
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

Record = dict[str, object]

LEVELS = ("debug", "info", "warning", "error", "critical")  # --level L shows L and above
_LEVEL_ALIASES = {"warn": "warning", "exception": "error", "fatal": "critical"}
DEFAULT_LINES = 20
POLL_S = 0.2
# A record whose writer checked the name just before logrotate renamed it lands in the old file:
# a rotated file stays open this long after the switch so such a record is still shown.
ROTATION_GRACE_S = 2.0

_DURATION = re.compile(r"(\d+)([smhd])", re.ASCII)
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_NUMBERED = re.compile(r"\.(\d+)(\.gz)?", re.ASCII)       # events.jsonl.1, .2.gz (both handlers)
_DATED = re.compile(r"-[0-9_-]+(\.gz)?", re.ASCII)         # events.jsonl-20261124 (dateext)
_SHOWN_APART = ("timestamp", "level", "printer", "event")  # columns of the human format
PRINTER_WIDTH = 10
EVENT_WIDTH = 21  # firmware_push_started


# -- pure: options, filter, rendering ------------------------------------------------------------
def parse_since(text: str, now: datetime) -> datetime:
    """`--since`: ISO 8601 (no zone means UTC), or a duration before `now`: 30s, 10m, 2h, 1d."""
    text = text.strip()
    if match := _DURATION.fullmatch(text):
        return now - timedelta(seconds=int(match[1]) * _UNIT_S[match[2]])
    try:
        return _utc(datetime.fromisoformat(text))
    except ValueError:
        raise ValueError(f"--since {text!r} is neither an ISO 8601 time (2026-11-24T00:22:47Z, "
                         "2026-11-24 00:22, 2026-11-24; UTC unless a zone is given) nor a "
                         "duration (30s, 10m, 2h, 1d)") from None


def parse_level(text: str) -> int:
    """`--level`: the rank of the lowest level shown."""
    name = _LEVEL_ALIASES.get(text.lower(), text.lower())
    if name not in LEVELS:
        raise ValueError(f"--level {text!r} is not one of {', '.join(LEVELS)}")
    return LEVELS.index(name)


def level_rank(value: object) -> int:
    """A record's level as a rank; a level this tool does not know ranks as info."""
    name = value.lower() if isinstance(value, str) else ""
    name = _LEVEL_ALIASES.get(name, name)
    return LEVELS.index(name) if name in LEVELS else LEVELS.index("info")


def parse_record(line: str) -> Record | None:
    """One log line as a record; None for anything else (garbage, a line being written)."""
    try:
        value = json.loads(line)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def record_time(record: Record) -> datetime | None:
    """The record's `timestamp` in UTC, None when it has none that parses."""
    stamp = record.get("timestamp")
    if not isinstance(stamp, str):
        return None
    try:
        return _utc(datetime.fromisoformat(stamp))
    except ValueError:
        return None


def _utc(when: datetime) -> datetime:
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


@dataclass(frozen=True)
class Filter:
    """Which records `logs` shows; names are exact or shell globs (`job_*`)."""

    printer: str | None = None
    event: str | None = None
    min_level: int = 0
    since: datetime | None = None

    @classmethod
    def from_options(cls, *, printer: str | None, event: str | None, level: str | None,
                     since: str | None, now: datetime) -> Filter:
        """The filter of the command-line options; ValueError says which one is wrong."""
        return cls(printer=printer, event=event,
                   min_level=parse_level(level) if level is not None else 0,
                   since=parse_since(since, now) if since is not None else None)

    def matches(self, record: Record) -> bool:
        if self.printer is not None and not _glob(record.get("printer"), self.printer):
            return False
        if self.event is not None and not _glob(record.get("event"), self.event):
            return False
        if level_rank(record.get("level")) < self.min_level:
            return False
        if self.since is not None:
            when = record_time(record)
            return when is not None and when >= self.since
        return True


def _glob(value: object, pattern: str) -> bool:
    return isinstance(value, str) and fnmatch.fnmatchcase(value, pattern)


def format_human(record: Record) -> str:
    """One line: UTC time, level, printer, event, then the other fields as key=value."""
    when = record_time(record)
    stamp = (when.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] if when is not None
             else _column(record, "timestamp"))
    level = _column(record, "level").upper()
    printer = _column(record, "printer")
    event = _column(record, "event")
    fields = " ".join(f"{_token(key)}={_field(key, value)}" for key, value in record.items()
                      if key not in _SHOWN_APART)
    return (f"{stamp} {level:<8} {printer:<{PRINTER_WIDTH}} {event:<{EVENT_WIDTH}} "
            f"{fields}").rstrip()


def _column(record: Record, key: str) -> str:
    value = record.get(key)
    return "-" if value is None else _token(value)


def _field(key: str, value: object) -> str:
    if key == "exception" and isinstance(value, list) and value and isinstance(value[0], dict):
        # an exception as data (observe.log): the raised one first, then its causes
        value = f"{value[0].get('exc_type')}: {value[0].get('exc_value')}"
    return _token(value)


def _token(value: object) -> str:
    """A value as one printable token: plain when unambiguous, else JSON-quoted."""
    if isinstance(value, str):
        if value and value.isprintable() and not any(c in value for c in ' "=\\'):
            return value
        text = json.dumps(value, ensure_ascii=False)
    else:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    # escapes what JSON leaves raw (U+2028, bidi controls), so a line stays one harmless line
    return text if text.isprintable() else json.dumps(value, separators=(",", ":"))


# -- reading the files ---------------------------------------------------------------------------
def rotated_files(path: Path) -> list[Path]:
    """The rotated logs beside `path`, oldest first (…, .3.gz, .2, .1); a plain file wins
    over its .gz twin (logrotate deletes the plain one once the archive is complete)."""
    numbered: dict[int, Path] = {}
    dated: list[Path] = []
    try:
        names = os.listdir(path.parent)
    except OSError:
        return []
    for name in names:
        if not name.startswith(path.name):
            continue
        rest = name[len(path.name):]
        if match := _NUMBERED.fullmatch(rest):
            number = int(match[1])
            if number not in numbered or not match[2]:
                numbered[number] = path.parent / name
        elif _DATED.fullmatch(rest):
            dated.append(path.parent / name)
    return sorted(dated) + [numbered[n] for n in sorted(numbered, reverse=True)]


def log_exists(path: Path) -> bool:
    """Whether there is anything to read: the live file or a rotated one."""
    return path.exists() or bool(rotated_files(path))


def read_lines(path: Path) -> Iterator[str]:
    """The lines of one log file (.gz transparently); a truncated archive ends early."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rt", encoding="utf-8", errors="replace") as archive:
                for line in archive:
                    yield line.removesuffix("\n")
        else:
            with open(path, encoding="utf-8", errors="replace") as plain:
                for line in plain:
                    yield line.removesuffix("\n")
    except FileNotFoundError:
        return  # rotated away while we looked
    except (EOFError, gzip.BadGzipFile, zlib.error):
        return  # an archive logrotate is still writing, or a damaged one


def matching(lines: Iterable[str], view: Filter) -> Iterator[tuple[str, Record]]:
    """The lines `view` keeps, each with its record."""
    for line in lines:
        record = parse_record(line)
        if record is not None and view.matches(record):
            yield line, record


def history(path: Path, view: Filter, limit: int | None,
            live: Iterable[str] | None = None) -> list[tuple[str, Record]]:
    """The last `limit` lines `view` keeps (all when None), oldest first, from the live file
    and the rotated ones. Stops early: enough lines, or a file that starts before `since`.
    `live` stands for the live file when the caller has read it (follow goes on from there)."""
    if limit == 0:
        return []
    sources = [live if live is not None else read_lines(path)]
    sources += [read_lines(rotated) for rotated in reversed(rotated_files(path))]
    found: list[deque[tuple[str, Record]]] = []
    count = 0
    for lines in sources:
        kept: deque[tuple[str, Record]] = deque(maxlen=None if limit is None else limit - count)
        starts: datetime | None = None
        for line in lines:
            record = parse_record(line)
            if record is None:
                continue
            starts = starts or record_time(record)
            if view.matches(record):
                kept.append((line, record))
        found.append(kept)
        count += len(kept)
        if limit is not None and count >= limit:
            break
        if view.since is not None and starts is not None and starts < view.since:
            break  # older files hold only older records
    return [entry for kept in reversed(found) for entry in kept]


# -- following -----------------------------------------------------------------------------------
Identity = tuple[int, int]  # (st_dev, st_ino): a file, whatever its name now


def _identity(path: Path) -> Identity | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


class _OpenLog:
    """One log file open for reading: the descriptor survives renames; keeps a partial line."""

    def __init__(self, handle: BinaryIO) -> None:
        self.handle = handle
        st = os.fstat(handle.fileno())
        self.identity: Identity = (st.st_dev, st.st_ino)
        self._partial = b""

    @classmethod
    def at(cls, path: Path) -> _OpenLog | None:
        try:
            return cls(open(path, "rb"))  # held across polls, closed by close()
        except FileNotFoundError:
            return None

    @property
    def offset(self) -> int:
        return self.handle.tell()

    def read(self) -> list[str]:
        """The lines completed since the last read."""
        *complete, self._partial = (self._partial + self.handle.read()).split(b"\n")
        return [line.decode("utf-8", "replace") for line in complete]

    def rewind(self) -> None:
        self.handle.seek(0)
        self._partial = b""

    def close(self) -> list[str]:
        """The last lines, an unterminated one included (nothing will complete it now)."""
        lines = self.read()
        if self._partial:
            lines.append(self._partial.decode("utf-8", "replace"))
        self.handle.close()
        return lines


class Follower:
    """The lines appended to the live log, across a size rotation (RotatingFileHandler), a
    logrotate rename (WatchedFileHandler reopens), a truncation (copytruncate) and a file
    that does not exist yet. Each line once, in order. Poll it; close it."""

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.path = path
        self._clock = clock
        self._current: _OpenLog | None = None
        self._retired: list[tuple[_OpenLog, float]] = []  # rotated away, read until the deadline

    def poll(self) -> list[str]:
        """The lines completed since the last poll; the first poll reads the file from its start."""
        lines = self._read_retired()
        if self._current is None:
            self._current = _OpenLog.at(self.path)
            if self._current is None:
                return lines  # not there yet
        lines += self._current.read()
        live = _identity(self.path)
        if live is None:
            return lines  # renamed away; the service creates the new file with its next record
        if live != self._current.identity:
            lines += self._switch()
        elif os.fstat(self._current.handle.fileno()).st_size < self._current.offset:
            self._current.rewind()  # truncated in place
            lines += self._current.read()
        return lines

    def _switch(self) -> list[str]:
        """The live name points to another file: finish the old one, read any file that came
        and went between two polls, then start the new one from its beginning."""
        assert self._current is not None
        old = self._current
        new = _OpenLog.at(self.path)
        if new is None:
            return []  # renamed again meanwhile: the next poll looks again
        lines = old.read()
        for between in self._rotated_between(old.identity, new.identity):
            lines += read_lines(between)
        self._retired.append((old, self._clock() + ROTATION_GRACE_S))
        self._current = new
        return lines + new.read()

    def _rotated_between(self, old: Identity, new: Identity) -> list[Path]:
        chain = [(p, _identity(p)) for p in rotated_files(self.path) if p.suffix != ".gz"]
        chain.append((self.path, new))
        ids = [identity for _, identity in chain]
        if old not in ids or new not in ids:
            return []  # the old file is gone (deleted or compressed): nothing to place it by
        return [p for p, _ in chain[ids.index(old) + 1:ids.index(new)]]

    def _read_retired(self) -> list[str]:
        lines: list[str] = []
        now = self._clock()
        for entry in list(self._retired):
            old, deadline = entry
            if now < deadline:
                lines += old.read()
            else:
                lines += old.close()
                self._retired.remove(entry)
        return lines

    def close(self) -> None:
        for old, _ in self._retired:
            old.handle.close()
        self._retired.clear()
        if self._current is not None:
            self._current.handle.close()
            self._current = None

    def __enter__(self) -> Follower:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()


def follow(follower: Follower, *, stop: Callable[[], bool],
           poll_s: float = POLL_S) -> Iterator[str]:
    """The new lines as they come, until `stop()` is true (asked once per poll)."""
    while not stop():
        yield from follower.poll()
        time.sleep(poll_s)
