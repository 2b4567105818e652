"""`supervisorctl logs`: filters, human format, rotated files, garbage, -f across rotations."""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from harness import as_nobody

from supervisor.ctl import logview
from supervisor.ctl.cli import main
from supervisor.ctl.logview import Filter, Follower, format_human, parse_since
from supervisor.observe.log import get_logger
from supervisor.observe.logs import configure_logging, reset_logging

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
WAIT_S = 15.0
# Two test records (~110 bytes each) per file, so a few records rotate the log more than once.
SMALL_MAX_BYTES = 300


# -- helpers -------------------------------------------------------------------------------------
def rec(seq: int, *, at: datetime = NOW, level: str = "info", event: str = "tick",
        printer: str | None = "laserjet", **fields: object) -> str:
    """A hand-written log line as the service writes it."""
    record: dict[str, object] = {"timestamp": at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                                 "level": level, "event": event}
    if printer is not None:
        record["printer"] = printer
    return json.dumps({**record, "seq": seq, **fields})


def write_lines(path: Path, lines: list[str], *, mode: str = "w") -> None:
    with open(path, mode, encoding="utf-8") as handle:
        handle.writelines(line + "\n" for line in lines)


def config(tmp_path: Path, log_file: Path | str) -> str:
    path = tmp_path / "config.toml"
    path.write_text(f'[daemon]\nlog_file = "{log_file}"\n', encoding="utf-8")
    return str(path)


def seqs(lines: list[str] | str) -> list[int]:
    if isinstance(lines, str):
        lines = lines.splitlines()
    return [json.loads(line)["seq"] for line in lines]


@pytest.fixture
def log_path(tmp_path: Path) -> Path:
    return tmp_path / "log" / "events.jsonl"


@pytest.fixture
def logs(tmp_path: Path, log_path: Path,
         capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    """Run `supervisorctl --config … logs ARGS` in-process: (exit code, stdout, stderr)."""
    cfg = config(tmp_path, log_path)

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(["--config", cfg, "logs", *args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


@contextmanager
def real_log(path: Path, *, max_bytes: int) -> Iterator[Callable[..., None]]:
    """The service's own logging setup; yields `write(seqs, **fields)`."""
    configure_logging(path, max_bytes=max_bytes, stderr=io.StringIO())
    log = get_logger("supervisor.test").bind(printer="laserjet")

    def write(numbers: range, **fields: object) -> None:
        for seq in numbers:
            log.info("tick", seq=seq, **fields)

    try:
        yield write
    finally:
        reset_logging()


# -- the human format ----------------------------------------------------------------------------
def test_real_log_in_the_human_format(log_path: Path, logs: Callable[..., tuple[int, str, str]],
                                      ) -> None:
    configure_logging(log_path, max_bytes=0, stderr=io.StringIO())
    try:
        log = get_logger("supervisor.forwarder").bind(printer="laserjet")
        log.info("job_finished", client="127.0.0.1:45704", bytes_in=184, bytes_out=0,
                 seconds=0.25)
        try:
            raise ValueError("device gone")
        except ValueError:
            log.exception("job_failed", error="I/O error on /dev/usb/lp0")
    finally:
        reset_logging()
    code, out, err = logs()
    assert (code, err) == (0, "")
    finished, failed = out.splitlines()
    stamp = datetime.fromisoformat(json.loads(log_path.read_text().splitlines()[0])["timestamp"])
    assert finished.startswith(stamp.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " INFO ")
    assert finished.split() == [*finished.split()[:2], "INFO", "laserjet", "job_finished",
                                "client=127.0.0.1:45704", "bytes_in=184", "bytes_out=0",
                                "seconds=0.25"]
    assert failed.split(maxsplit=5)[2:5] == ["ERROR", "laserjet", "job_failed"]
    assert failed.endswith('error="I/O error on /dev/usb/lp0" '
                           'exception="ValueError: device gone"')


@pytest.mark.parametrize(("record", "expected"), [
    ({"timestamp": "2026-11-24T00:22:47.123456Z", "level": "info", "event": "job_finished",
      "printer": "laserjet", "client": "127.0.0.1:45704", "bytes_in": 184, "seconds": 0.25},
     "2026-11-24 00:22:47.123 INFO     laserjet   job_finished          "
     "client=127.0.0.1:45704 bytes_in=184 seconds=0.25"),
    ({"timestamp": "2026-11-24T01:22:47+01:00", "level": "warning", "event": "daemon_started",
      "printer": None},
     "2026-11-24 00:22:47.000 WARNING  -          daemon_started"),
    ({"event": "state_changed", "printer": "hp", "from": "absent", "to": "firmware-needed",
      "ok": True, "error": None, "bind": ["0.0.0.0", "::"]},
     '- - hp state_changed from=absent to=firmware-needed ok=true error=null '
     'bind=["0.0.0.0","::"]'),
    ({"level": "error", "event": "x", "printer": "p", "error": "two\nlines", "empty": "",
      "eq": "a=b", "ansi": "\x1b[31mred", "bidi": "\u202egnp.exe", "uni": "café"},
     '- ERROR p x error="two\\nlines" empty="" eq="a=b" ansi="\\u001b[31mred" '
     'bidi="\\u202egnp.exe" uni=café'),
])
def test_format_human_is_one_line_of_unambiguous_tokens(record: logview.Record,
                                                        expected: str) -> None:
    line = format_human(record)
    assert "\n" not in line and line.isprintable()
    assert " ".join(line.split()) == " ".join(expected.split())
    if "timestamp" in record:
        assert line == expected


# -- filters -------------------------------------------------------------------------------------
MIXED = [
    {"seq": 0, "level": "debug", "event": "hotplug_received", "printer": "laserjet"},
    {"seq": 1, "level": "info", "event": "job_started", "printer": "laserjet"},
    {"seq": 2, "level": "warning", "event": "listener_failed", "printer": "deskjet"},
    {"seq": 3, "level": "error", "event": "job_failed", "printer": "laserjet"},
    {"seq": 4, "level": "critical", "event": "daemon_stopping"},
    {"seq": 5, "level": "info", "event": "job_finished", "printer": "deskjet"},
    {"seq": 6, "level": "notice", "event": "odd_level", "printer": "laserjet"},
]


@pytest.mark.parametrize(("view", "expected"), [
    (Filter(), [0, 1, 2, 3, 4, 5, 6]),
    (Filter(printer="laserjet"), [0, 1, 3, 6]),
    (Filter(printer="*jet"), [0, 1, 2, 3, 5, 6]),
    (Filter(event="job_failed"), [3]),
    (Filter(event="job_*"), [1, 3, 5]),
    (Filter(min_level=logview.parse_level("info")), [1, 2, 3, 4, 5, 6]),
    (Filter(min_level=logview.parse_level("WARNING")), [2, 3, 4]),
    (Filter(min_level=logview.parse_level("warn")), [2, 3, 4]),
    (Filter(min_level=logview.parse_level("error")), [3, 4]),
    (Filter(min_level=logview.parse_level("critical")), [4]),
    (Filter(printer="deskjet", event="job_*"), [5]),
    (Filter(printer="laserjet", min_level=logview.parse_level("error")), [3]),
])
def test_filter(view: Filter, expected: list[int]) -> None:
    assert [r["seq"] for r in MIXED if view.matches(dict(r))] == expected


def test_filters_through_the_command(log_path: Path,
                                     logs: Callable[..., tuple[int, str, str]]) -> None:
    log_path.parent.mkdir()
    write_lines(log_path, [json.dumps({"timestamp": "2026-11-24T00:00:00Z", **r}) for r in MIXED])
    assert seqs(logs("--json", "--printer", "laserjet")[1]) == [0, 1, 3, 6]
    assert seqs(logs("--json", "--event", "job_*")[1]) == [1, 3, 5]
    assert seqs(logs("--json", "--level", "warning")[1]) == [2, 3, 4]
    assert seqs(logs("--json", "--printer", "deskjet", "--level", "info")[1]) == [2, 5]
    assert logs("--printer", "nobody") == (0, "", "")


def test_json_passes_the_lines_through_unchanged(log_path: Path,
                                                 logs: Callable[..., tuple[int, str, str]],
                                                 ) -> None:
    with real_log(log_path, max_bytes=0) as write:
        write(range(3), note="a b", nested={"k": [1, 2]})
    code, out, _ = logs("--json")
    assert code == 0
    assert out.splitlines() == log_path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["nested"] for line in out.splitlines()] == [{"k": [1, 2]}] * 3


# -- --since -------------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "expected"), [
    ("2026-11-24T10:30:00Z", datetime(2026, 11, 24, 10, 30, tzinfo=UTC)),
    ("2026-11-24T10:30:00+02:00", datetime(2026, 11, 24, 8, 30, tzinfo=UTC)),
    ("2026-11-24T10:30:00.5", datetime(2026, 11, 24, 10, 30, 0, 500000, tzinfo=UTC)),
    ("2026-11-24 10:30", datetime(2026, 11, 24, 10, 30, tzinfo=UTC)),
    ("2026-11-24", datetime(2026, 11, 24, tzinfo=UTC)),
    ("30s", NOW - timedelta(seconds=30)),
    ("10m", NOW - timedelta(minutes=10)),
    ("2h", NOW - timedelta(hours=2)),
    ("1d", NOW - timedelta(days=1)),
    (" 15m ", NOW - timedelta(minutes=15)),
])
def test_parse_since(text: str, expected: datetime) -> None:
    assert parse_since(text, NOW) == expected


@pytest.mark.parametrize("text", ["", "yesterday", "10", "10x", "-5m", "1.5h", "10 min",
                                  "2026-13-01", "5M"])
def test_parse_since_rejects(text: str) -> None:
    with pytest.raises(ValueError, match=r"--since .* neither an ISO 8601 time"):
        parse_since(text, NOW)


def test_since_both_forms_through_the_command(log_path: Path,
                                               logs: Callable[..., tuple[int, str, str]],
                                               ) -> None:
    now = datetime.now(UTC)
    log_path.parent.mkdir()
    write_lines(log_path, [rec(0, at=now - timedelta(days=2)), rec(1, at=now - timedelta(hours=3)),
                           rec(2, at=now - timedelta(minutes=90)),
                           rec(3, at=now - timedelta(minutes=5)), rec(4, at=now)])
    assert seqs(logs("--json", "--since", "2h")[1]) == [2, 3, 4]
    assert seqs(logs("--json", "--since", "10m")[1]) == [3, 4]
    assert seqs(logs("--json", "--since", "1d")[1]) == [1, 2, 3, 4]
    since = (now - timedelta(hours=4)).strftime("%Y-%m-%dT%H:%M:%S")  # no zone: UTC
    assert seqs(logs("--json", "--since", since)[1]) == [1, 2, 3, 4]
    local = (now - timedelta(minutes=100)).astimezone(
        timezone(timedelta(hours=5, minutes=30))).isoformat()
    assert seqs(logs("--json", "--since", local)[1]) == [2, 3, 4]


@pytest.mark.parametrize(("args", "message"), [
    (["--since", "last tuesday"], "--since 'last tuesday' is neither an ISO 8601 time"),
    (["--level", "loud"], "--level 'loud' is not one of debug, info, warning, error, critical"),
])
def test_bad_since_or_level_exits_2(log_path: Path, logs: Callable[..., tuple[int, str, str]],
                                    args: list[str], message: str) -> None:
    code, out, err = logs(*args)
    assert (code, out) == (2, "")
    assert err.startswith(f"supervisorctl logs: {message}")


def test_bad_line_count_is_a_usage_error(logs: Callable[..., tuple[int, str, str]],
                                         capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        logs("-n", "many")
    assert exit_.value.code == 2
    assert "'many' is not a number of lines (or 'all')" in capsys.readouterr().err


# -- -n ------------------------------------------------------------------------------------------
def test_last_n(log_path: Path, logs: Callable[..., tuple[int, str, str]]) -> None:
    now = datetime.now(UTC)
    log_path.parent.mkdir()
    # seq i is 59.5 - i minutes old: no boundary falls on a whole minute
    write_lines(log_path, [rec(i, at=now - timedelta(minutes=60 - i, seconds=-30))
                           for i in range(50)])
    assert seqs(logs("--json")[1]) == list(range(30, 50))  # default: the last 20
    assert seqs(logs("--json", "-n", "5")[1]) == list(range(45, 50))
    assert seqs(logs("--json", "-n", "all")[1]) == list(range(50))
    assert seqs(logs("--json", "-n", "500")[1]) == list(range(50))
    assert logs("-n", "0") == (0, "", "")
    # --since without -n shows all of that time; with -n, the last N of it
    assert seqs(logs("--json", "--since", "30m")[1]) == list(range(30, 50))
    assert seqs(logs("--json", "--since", "40m")[1]) == list(range(20, 50))
    assert seqs(logs("--json", "--since", "40m", "-n", "3")[1]) == [47, 48, 49]
    assert seqs(logs("--json", "--event", "tick", "-n", "2")[1]) == [48, 49]


# -- rotated files -------------------------------------------------------------------------------
def test_rotated_files_are_read_oldest_first_gz_included(
        log_path: Path, logs: Callable[..., tuple[int, str, str]]) -> None:
    now = datetime.now(UTC)
    at = [now - timedelta(hours=9.5 - i) for i in range(10)]  # seq i is 9.5 - i hours old
    log_path.parent.mkdir()
    with gzip.open(log_path.with_name("events.jsonl.3.gz"), "wt") as archive:
        archive.write(rec(0, at=at[0]) + "\n" + rec(1, at=at[1]) + "\n")
    with gzip.open(log_path.with_name("events.jsonl.2.gz"), "wt") as archive:
        archive.write(rec(2, at=at[2]) + "\n" + rec(3, at=at[3]) + "\n")
    write_lines(log_path.with_name("events.jsonl.1"), [rec(i, at=at[i]) for i in (4, 5, 6)])
    write_lines(log_path, [rec(i, at=at[i]) for i in (7, 8, 9)])
    write_lines(log_path.with_name("events.jsonl.old"), [rec(99)])  # not a rotation: ignored
    assert seqs(logs("--json", "-n", "all")[1]) == list(range(10))
    assert seqs(logs("--json", "--since", "9h")[1]) == list(range(1, 10))  # into .3.gz
    assert seqs(logs("--json", "--since", "7h")[1]) == list(range(3, 10))  # into .2.gz
    assert seqs(logs("--json", "-n", "5")[1]) == [5, 6, 7, 8, 9]
    assert seqs(logs("--json", "--since", (at[5] - timedelta(seconds=1)).isoformat())[1]) \
        == [5, 6, 7, 8, 9]


def test_since_stops_at_a_file_older_than_it(log_path: Path,
                                             logs: Callable[..., tuple[int, str, str]]) -> None:
    now = datetime.now(UTC)
    log_path.parent.mkdir()
    # .2 would match if read; the reader stops at .1, whose first record is before --since
    write_lines(log_path.with_name("events.jsonl.2"), [rec(0, at=now)])
    write_lines(log_path.with_name("events.jsonl.1"),
                [rec(1, at=now - timedelta(hours=3)), rec(2, at=now - timedelta(minutes=5))])
    write_lines(log_path, [rec(3, at=now)])
    assert seqs(logs("--json", "--since", "1h")[1]) == [2, 3]


def test_files_from_rotating_file_handler(log_path: Path,
                                          logs: Callable[..., tuple[int, str, str]]) -> None:
    with real_log(log_path, max_bytes=SMALL_MAX_BYTES) as write:
        write(range(30))
    assert log_path.with_name("events.jsonl.3").exists()
    kept = []
    for name in ("events.jsonl.3", "events.jsonl.2", "events.jsonl.1", "events.jsonl"):
        kept += log_path.with_name(name).read_text(encoding="utf-8").splitlines()
    code, out, _ = logs("--json", "-n", "all")
    assert code == 0
    assert out.splitlines() == kept  # oldest first, unchanged
    assert seqs(out) == list(range(30 - len(kept), 30))
    assert seqs(logs("--json", "-n", "7")[1]) == list(range(23, 30))


# -- garbage and missing files -------------------------------------------------------------------
def test_garbage_is_skipped(log_path: Path, logs: Callable[..., tuple[int, str, str]]) -> None:
    log_path.parent.mkdir()
    log_path.with_name("events.jsonl.3.gz").write_bytes(b"not gzip at all")
    whole = gzip.compress((rec(0) + "\n" + rec(1, noise=os.urandom(1000).hex()) + "\n").encode())
    log_path.with_name("events.jsonl.2.gz").write_bytes(whole[:len(whole) - 12])  # truncated
    log_path.with_name("events.jsonl.1").write_bytes(
        rec(2).encode() + b"\n\xff\xfe\x00 binary\n" + b"[" * 100_000 + b"\n")
    log_path.write_bytes(b"\n".join([
        b"", b"   ", b"not json", b"[1, 2]", b'"a string"', b"42", b"null",
        rec(3).encode(), json.dumps({"event": "no time or level"}).encode(),
        rec(4, note="caf\u00e9").encode()[:-2] + b"\xff\"}",  # bad UTF-8 inside a string
        rec(5).encode(),
        rec(6).encode()[:40],  # the line being written
    ]))
    code, out, err = logs("--json", "-n", "all")
    assert (code, err) == (0, "")
    # .3.gz is no archive, .2.gz ends inside seq 1, .1 has binary and a too deep array
    assert [json.loads(line).get("seq") for line in out.splitlines()] == [0, 2, 3, None, 4, 5]
    code, out, _ = logs("-n", "all")
    assert code == 0 and len(out.splitlines()) == 6
    assert "no time or level" in out
    assert seqs(logs("--json", "--since", "2000-01-01")[1]) == [0, 2, 3, 4, 5]


def test_log_file_empty_means_stderr_only(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", config(tmp_path, ""), "logs"]) == 2
    err = capsys.readouterr().err
    assert "logs to stderr only" in err and "journalctl" in err


def test_missing_log_file_is_not_an_error(log_path: Path,
                                          logs: Callable[..., tuple[int, str, str]]) -> None:
    code, out, err = logs()
    assert (code, out) == (0, "")
    assert f"no log at {log_path} yet" in err


def test_only_rotated_files_left(log_path: Path,
                                 logs: Callable[..., tuple[int, str, str]]) -> None:
    log_path.parent.mkdir()
    write_lines(log_path.with_name("events.jsonl.1"), [rec(0), rec(1)])
    assert logs("--json")[:2] == (0, "\n".join([rec(0), rec(1)]) + "\n")


# -- following, one poll at a time ---------------------------------------------------------------
def test_follow_across_size_rotations(log_path: Path) -> None:
    with real_log(log_path, max_bytes=SMALL_MAX_BYTES) as write, Follower(log_path) as follower:
        write(range(2))                      # before
        seen = follower.poll()
        write(range(2, 6))                   # during: two rotations between two polls
        assert log_path.with_name("events.jsonl.2").exists()
        seen += follower.poll()
        write(range(6, 9))                   # after
        seen += follower.poll()
        seen += follower.poll()
    assert seqs(seen) == list(range(9))


def test_follow_across_a_logrotate_rename(log_path: Path) -> None:
    clock = [0.0]
    old = log_path.with_name("events.jsonl.1")
    with real_log(log_path, max_bytes=0) as write, \
            Follower(log_path, clock=lambda: clock[0]) as follower:
        write(range(2))                      # before
        seen = follower.poll()
        write(range(2, 4))
        os.rename(log_path, old)             # logrotate renames; the service has not logged yet
        write_lines(old, [rec(4)], mode="a")  # a record written as the file was renamed
        seen += follower.poll()              # no live file: the old one is still read
        assert seqs(seen) == list(range(5))
        write(range(5, 7))                   # WatchedFileHandler reopens events.jsonl
        assert log_path.exists()
        seen += follower.poll()              # switched to the new file
        assert follower.poll() == []
        write_lines(old, [rec(7)], mode="a")  # late into the old file, within the grace time
        seen += follower.poll()
        clock[0] += logview.ROTATION_GRACE_S
        seen += follower.poll()              # the old file is closed now
        write_lines(old, [rec(99)], mode="a")
        write(range(8, 10))                  # after
        seen += follower.poll()
    assert seqs(seen) == list(range(10))


def test_follow_waits_for_the_file_and_keeps_partial_lines(log_path: Path) -> None:
    with Follower(log_path) as follower:
        assert follower.poll() == []
        log_path.parent.mkdir()
        line = rec(0)
        log_path.write_text(line[:25], encoding="utf-8")
        assert follower.poll() == []
        write_lines(log_path, [line[25:], rec(1)], mode="a")
        assert follower.poll() == [rec(0), rec(1)]
        assert follower.poll() == []


def test_follow_after_copytruncate(log_path: Path) -> None:
    log_path.parent.mkdir()
    write_lines(log_path, [rec(i, note="x" * 50) for i in range(3)])
    with Follower(log_path) as follower:
        assert seqs(follower.poll()) == [0, 1, 2]
        with open(log_path, "r+", encoding="utf-8") as handle:
            handle.truncate(0)
        write_lines(log_path, [rec(3)], mode="a")
        assert seqs(follower.poll()) == [3]


# -- following through the command (a subprocess: Ctrl-C ends it) --------------------------------
def rotate_like_logrotate(path: Path) -> None:
    for n in (2, 1):
        older = path.with_name(f"{path.name}.{n}")
        if older.exists():
            older.rename(path.with_name(f"{path.name}.{n + 1}"))
    path.rename(path.with_name(f"{path.name}.1"))


@pytest.mark.timeout(60)
@pytest.mark.parametrize("rotation", ["size", "logrotate"])
def test_follow_command_across_rotations(tmp_path: Path, log_path: Path, rotation: str) -> None:
    cfg = config(tmp_path, log_path)
    max_bytes = SMALL_MAX_BYTES if rotation == "size" else 0
    with real_log(log_path, max_bytes=max_bytes) as write:
        write(range(3))                                              # before
        ctl = subprocess.Popen(
            [sys.executable, "-m", "supervisor", "--config", cfg, "logs", "-f", "-n", "all",
             "--json", "--event", "tick"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        lines: queue.Queue[str] = queue.Queue()
        reader = threading.Thread(target=lambda: [lines.put(x) for x in ctl.stdout or []],
                                  daemon=True)
        reader.start()
        seen: list[str] = []

        def wait_for(count: int) -> None:
            deadline = time.monotonic() + WAIT_S
            while len(seen) < count and time.monotonic() < deadline:
                with suppress(queue.Empty):
                    seen.append(lines.get(timeout=0.1).removesuffix("\n"))
            assert len(seen) >= count, (seen, ctl.poll())

        try:
            wait_for(3)
            for batch in range(3, 19, 4):                            # during and after
                if rotation == "logrotate":
                    rotate_like_logrotate(log_path)
                write(range(batch, batch + 4))  # size: up to two rotations between two polls
                wait_for(batch + 4)
            ctl.send_signal(signal.SIGINT)
            assert ctl.wait(WAIT_S) == 0
        finally:
            if ctl.poll() is None:
                ctl.kill()
                ctl.wait()
        reader.join(WAIT_S)
        while not lines.empty():
            seen.append(lines.get().removesuffix("\n"))
    assert seqs(seen) == list(range(19))
    assert log_path.with_name("events.jsonl.2").exists()  # it did rotate, more than once


def test_a_log_directory_that_cannot_be_entered_is_a_sentence_not_a_traceback() -> None:
    base = Path(tempfile.mkdtemp(prefix="printer-supervisor-logs-"))
    base.chmod(0o755)
    try:
        log_dir = base / "log"
        log_dir.mkdir(mode=0o700)  # as the service makes it under its umask
        (log_dir / "events.jsonl").write_text('{"event": "daemon_started"}\n', "utf-8")
        config = base / "c.toml"
        config.write_text(f'[daemon]\nlog_file = "{log_dir / "events.jsonl"}"\n', "utf-8")
        config.chmod(0o644)

        def logs_as_nobody() -> str:
            err = io.StringIO()
            with contextlib.redirect_stderr(err):
                code = main(["--config", str(config), "logs"])
            return f"{code}:{err.getvalue()}"

        answer = as_nobody(logs_as_nobody)
        assert answer.startswith("1:supervisorctl logs: not allowed to read"), answer
    finally:
        shutil.rmtree(base, ignore_errors=True)
