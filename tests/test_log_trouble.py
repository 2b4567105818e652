"""The log file's own trouble — a full, deleted, read-only or replaced log directory — on a real
small tmpfs (routers keep /var/log on one): whole lines or none, folded reports, recovery with
the count of lines lost; and the real service printing on, idle, while its log disk is full."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from harness import ON_CI, Log, free_port, request, send_job, service_process, wait_until

from supervisor.lab.virtual import VirtualPrinter
from supervisor.observe.logfile import FIRST_RETRY_S, REPORT_EVERY_S, LogFile

TMPFS_BYTES = 256 * 1024  # as small as a router's /var/log may be
IDLE_WINDOW_S = 2.0


@pytest.fixture
def log_disk(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB tmpfs of our own (root only: mount)."""
    if os.geteuid() != 0:
        message = "mounting a small tmpfs needs root"
        if ON_CI:
            pytest.fail(message + " (CI runs as root)")
        pytest.skip(message)
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_BYTES}", "tmpfs", str(mount)],
                   check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def fill(disk: Path) -> Path:
    """Take every free block of `disk`; unlink the file returned to free them."""
    filler = disk / "filler"
    with open(filler, "ab", buffering=0) as handle:
        try:
            while True:
                handle.write(b"\0" * 4096)
        except OSError:
            pass
    # A page may still have room in the log's last page: that is what tears a write.
    return filler


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def line(n: int, pad: int = 80) -> str:
    return json.dumps({"event": "tick", "n": n, "pad": "x" * pad})


def records(path: Path) -> list[dict[str, Any]]:
    """Every line of the file as JSON: a torn or partial line fails the test."""
    data = path.read_bytes()
    assert data == b"" or data.endswith(b"\n"), f"a torn last line in {path}: {data[-80:]!r}"
    return [json.loads(text) for text in data.decode("utf-8").splitlines()]


def ticks(path: Path) -> list[int]:
    return [r["n"] for r in records(path) if r.get("event") == "tick"]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def reports() -> list[dict[str, Any]]:
    return []


@pytest.fixture
def open_log(clock: Clock, reports: list[dict[str, Any]]) -> Callable[..., LogFile]:
    def open_(path: Path, max_bytes: int = 0) -> LogFile:
        return LogFile(path, max_bytes=max_bytes, report=reports.append, render=json.dumps,
                       clock=clock)
    return open_


# -- the file ------------------------------------------------------------------------------------
def test_a_full_disk_keeps_lines_whole_folds_its_reports_and_counts_what_it_lost(
        log_disk: Path, open_log: Callable[..., LogFile], clock: Clock,
        reports: list[dict[str, Any]]) -> None:
    path = log_disk / "events.jsonl"
    log = open_log(path)
    log.write([line(n) for n in range(3)])
    filler = fill(log_disk)

    sent = list(range(3, 403))  # ~40 KB: more than the room left in the log's last page
    log.write([line(n) for n in sent])
    kept = ticks(path)
    assert kept[:3] == [0, 1, 2] and kept == list(range(len(kept)))  # whole lines, in order
    lost_first = 403 - len(kept)
    assert lost_first > 0
    assert [r["event"] for r in reports] == ["log_write_failed"]
    assert "No space left on device" in reports[0]["error"]
    assert reports[0]["lines_lost"] == lost_first

    for n in range(403, 503):  # within the back-off: dropped without trying, not told again
        log.write([line(n)])
    clock.now += FIRST_RETRY_S  # the retry fails too: told only once a minute
    log.write([line(503)])
    assert len(reports) == 1
    clock.now += REPORT_EVERY_S
    log.write([line(504)])
    assert [r["event"] for r in reports] == ["log_write_failed"] * 2
    assert reports[1]["failures"] == 2 and reports[1]["lines_lost"] == 505 - len(kept)
    assert ticks(path) == kept

    filler.unlink()
    log.write([line(505)])  # still within the doubled back-off
    clock.now += 3600
    log.write([line(506)])
    got = records(path)
    resumed = got[len(kept)]
    assert resumed["event"] == "log_write_resumed"
    assert resumed["lines_lost"] == 506 - len(kept)
    assert ticks(path) == [*kept, 506]
    assert reports[-1]["event"] == "log_write_resumed"
    assert not log.failing
    log.write([line(507)])
    assert ticks(path)[-1] == 507 and len(reports) == 3
    log.close()


def test_rotation_on_a_full_disk_loses_no_written_line(
        log_disk: Path, open_log: Callable[..., LogFile], clock: Clock,
        reports: list[dict[str, Any]]) -> None:
    path = log_disk / "events.jsonl"
    log = open_log(path, max_bytes=4000)
    log.write([line(n) for n in range(30)])  # rotated once already
    filler = fill(log_disk)
    for n in range(30, 200):
        log.write([line(n)])
    assert reports and reports[0]["event"] == "log_write_failed"
    filler.unlink()
    clock.now += 3600
    log.write([line(200)])
    files = sorted(log_disk.glob("events.jsonl*"))
    seen = sorted(n for f in files for n in ticks(f))
    resumed = [r for f in files for r in records(f) if r["event"] == "log_write_resumed"]
    assert len(resumed) == 1
    assert resumed[0]["lines_lost"] > 0 and seen[-1] == 200
    assert all(f.stat().st_size <= 4000 for f in files if f.name != "filler")
    log.close()


def test_a_deleted_log_directory_is_made_again_without_losing_a_line(
        tmp_path: Path, open_log: Callable[..., LogFile], reports: list[dict[str, Any]]) -> None:
    path = tmp_path / "log" / "events.jsonl"
    log = open_log(path)
    log.write([line(0)])
    shutil.rmtree(path.parent)
    log.write([line(1)])
    assert ticks(path) == [1] and reports == []
    log.close()


def test_a_replaced_log_directory_is_followed(
        tmp_path: Path, open_log: Callable[..., LogFile], reports: list[dict[str, Any]]) -> None:
    path = tmp_path / "log" / "events.jsonl"
    log = open_log(path, max_bytes=1 << 20)
    log.write([line(0)])
    path.parent.rename(tmp_path / "log.old")
    path.parent.mkdir()
    log.write([line(1)])
    assert ticks(tmp_path / "log.old" / "events.jsonl") == [0]
    assert ticks(path) == [1] and reports == []
    log.close()


def test_a_read_only_log_directory_is_waited_out(
        log_disk: Path, open_log: Callable[..., LogFile], clock: Clock,
        reports: list[dict[str, Any]]) -> None:
    """The file open before keeps taking lines; its rotation cannot happen (EROFS)."""
    directory = log_disk / "log"
    path = directory / "events.jsonl"
    log = open_log(path, max_bytes=1000)
    log.write([line(0)])
    subprocess.run(["mount", "--bind", str(directory), str(directory)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(directory)], check=True)
        log.write([line(n) for n in range(1, 20)])  # past max_bytes: a rotation
        assert [r["event"] for r in reports] == ["log_write_failed"]
        assert "Read-only file system" in reports[0]["error"]
        before = ticks(path)
        log.write([line(20)])
    finally:
        subprocess.run(["umount", str(directory)], check=True)
    clock.now += FIRST_RETRY_S
    log.write([line(21)])
    current = records(path)
    assert current[0]["event"] == "log_write_resumed"
    assert current[0]["lines_lost"] == 21 - len(before)
    assert ticks(path) == [21]
    assert before == list(range(len(before)))
    log.close()


# -- the service ---------------------------------------------------------------------------------
def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_the_service_prints_on_idle_while_its_log_disk_is_full_and_then_logs_again(
        tmp_path: Path, log_disk: Path, printer: VirtualPrinter) -> None:
    port = free_port()
    log_path = log_disk / "events.jsonl"
    log = Log(log_path)
    with service_process(tmp_path, [{"name": "lp", "device": str(printer.path), "port": port}],
                         log_file=str(log_path), log_max_bytes=16384) as proc:
        log.wait_for("listener_started")
        filler = fill(log_disk)
        jobs = [bytes([n]) * 5000 for n in range(1, 4)]
        notify = {"v": 1, "cmd": "notify", "event": {"ACTION": "add", "SUBSYSTEM": "usb",
                                                     "DEVTYPE": "usb_device",
                                                     "DEVPATH": "/devices/usb1/1-1",
                                                     "PRODUCT": "3f0/4117/100"}}
        for job in jobs:
            send_job(port, job)
            for _ in range(30):  # lines enough to rotate while full
                assert request(str(tmp_path / "control.sock"), notify)["ok"]
        wait_until(lambda: printer.paper == b"".join(jobs), what="the jobs on paper")
        daemon = request(str(tmp_path / "control.sock"), {"v": 1, "cmd": "status"})["daemon"]
        assert f"cannot write the log {log_path}: No space left on device" in daemon["error"]

        # Idle on a full disk: nothing to do, so nothing done (it spun at 85-98 % before). Not
        # a synchronisation: the window being measured. A busy machine only lowers the figure.
        before = cpu_seconds(proc.pid)
        time.sleep(IDLE_WINDOW_S)
        assert cpu_seconds(proc.pid) - before < 0.1 * IDLE_WINDOW_S

        filler.unlink()
        third = bytes([9]) * 100

        def logged_again() -> bool:
            send_job(port, third)
            return any(r["event"] == "log_write_resumed" for r in log.events())

        wait_until(logged_again, what="a line saying how many lines were lost")
        resumed = log.events("log_write_resumed")[0]
        assert resumed["lines_lost"] > 0 and "No space left" in resumed["error"]
        log.wait_for("job_finished", bytes_in=100)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    for path in log_disk.glob("events.jsonl*"):
        records(path)  # every line whole
    stderr = (tmp_path / "stderr.txt").read_text(encoding="utf-8", errors="replace")
    assert "Traceback" not in stderr
    assert stderr.count("log_write_failed") <= 2, stderr[-2000:]
    assert stderr.count("log_write_resumed") == 1
