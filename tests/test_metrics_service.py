"""The metrics the running service exposes, driven through real plugs, jobs, clients, events
and reloads; and the textfile writer on its own (atomic, at most once a second, removed)."""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
import stat
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from harness import ServiceThread, free_port, send_job, wait_until

from supervisor.lab.virtual import VirtualPrinter, VirtualUsbPrinter
from supervisor.publish import metricsfile
from supervisor.publish.metricsfile import MetricsFile

StartService = Callable[..., ServiceThread]
BLOB = b"\x1b%-12345X@PJL ENTER LANGUAGE=ACL\r\n" + os.urandom(1000)
LJ1018 = "hp-laserjet-1018"
HOUR_S = 3600.0  # the longest timer of an idle service; the heartbeat


def scrape(http_port: int) -> dict[str, float]:
    """`name{labels}` → value from /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=15) as answer:
        text = answer.read().decode()
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
            for line in text.splitlines() if line and not line.startswith("#")}


def metric(http_port: int, key: str) -> float:
    return scrape(http_port).get(key, -1.0)


def test_jobs_clients_events_and_reloads_are_counted(
        printer: VirtualPrinter, start_service: StartService, tmp_path: Path) -> None:
    port, http_port = free_port(), free_port()
    lp = {"name": "lp", "device": str(printer.path), "port": port, "idle_timeout": 0.5,
          "allow": ["127.0.0.1"]}
    service = start_service([lp], http_listen=f"127.0.0.1:{http_port}")
    service.log.wait_for("listener_started")
    send_job(port, b"12345")
    with socket.create_connection(("127.0.0.1", port)) as quiet:  # a job that goes quiet
        quiet.sendall(b"x")
        service.log.wait_for("job_failed")
    with socket.socket() as outsider:  # not in allow
        outsider.bind(("127.0.0.2", 0))
        outsider.connect(("127.0.0.1", port))
        service.log.wait_for("client_rejected")
    for env in ({"ACTION": "add", "SUBSYSTEM": "usbmisc", "DEVNAME": "usb/lp3",
                 "DEVPATH": "/devices/pci0000:00/usb2/2-1/2-1:1.0/usbmisc/lp3"},
                {"ACTION": "add", "SUBSYSTEM": "input",
                 "DEVPATH": "/devices/virtual/input/input9"}):
        service.notify(env)
    assert service.notify({"ACTION": "add", "SUBSYSTEM": "usbmisc",
                           "DEVNAME": "../../etc/passwd"})["ok"] is False
    wait_until(lambda: metric(http_port, 'printer_supervisor_jobs_failed_total{printer="lp",'
                                         'kind="timeout"}') == 1)
    shown = scrape(http_port)
    assert shown['printer_supervisor_jobs_finished_total{printer="lp"}'] == 1
    assert shown['printer_supervisor_device_written_bytes_total{printer="lp"}'] == 6
    assert shown['printer_supervisor_job_duration_seconds_count{printer="lp"}'] == 2
    assert shown['printer_supervisor_connections_refused_total{printer="lp",reason="allow"}'] == 1
    for relevance in ("relevant", "ignored", "invalid"):
        key = f'printer_supervisor_hotplug_events_total{{source="notify",relevance="{relevance}"}}'
        assert shown[key] == 1, key
    assert shown["printer_supervisor_reconciles_total"] >= 1

    # A reload that restarts the printer keeps its counters; a broken file counts as failed.
    config = service.config.read_text()
    service.config.write_text(config.replace("idle_timeout = 0.5", "idle_timeout = 0.75"))
    service.reload()
    service.log.wait_for("config_reloaded", ok=True)
    service.config.write_text(config + "\n[daemon.nonsense]\n")
    service.reload()
    service.log.wait_for("config_reloaded", ok=False)
    service.log.wait_for("listener_started", count=2)
    shown = scrape(http_port)
    assert shown['printer_supervisor_reloads_total{result="ok"}'] == 1
    assert shown['printer_supervisor_reloads_total{result="failed"}'] == 1
    assert shown['printer_supervisor_jobs_finished_total{printer="lp"}'] == 1  # not reset
    send_job(port, b"after")
    wait_until(lambda: metric(http_port,
                              'printer_supervisor_jobs_finished_total{printer="lp"}') == 2)


def test_firmware_pushes_the_file_and_the_listener_are_shown(
        make_usb: Callable[..., VirtualUsbPrinter], start_service: StartService,
        tmp_path: Path) -> None:
    http_port = free_port()
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    taken = blocker.getsockname()[1]
    usb = make_usb(firmware=BLOB)
    try:
        service = start_service([{"name": LJ1018, "match": "3f0/4117/*", "port": taken}],
                                http_listen=f"127.0.0.1:{http_port}")
        for env in usb.plug():
            service.notify(env)
        service.log.wait_for("firmware_failed")  # no file yet
        shown = scrape(http_port)
        assert shown[f'printer_supervisor_firmware_pushes_total{{printer="{LJ1018}",'
                     'result="missing"}'] == 1
        assert shown[f'printer_supervisor_firmware_file_present{{printer="{LJ1018}"}}'] == 0
        assert shown[f'printer_supervisor_printer_state{{printer="{LJ1018}",'
                     'state="firmware-needed"}'] == 1
        (tmp_path / "firmware").mkdir(exist_ok=True)
        (tmp_path / "firmware" / "sihp1018.dl").write_bytes(BLOB)
        service.notify(usb.plug()[0])  # any event: a rescan retries a missing file
        service.log.wait_for("firmware_pushed")
        service.log.wait_for("listener_failed")  # its port is taken
        shown = scrape(http_port)
        assert shown[f'printer_supervisor_firmware_pushes_total{{printer="{LJ1018}",'
                     'result="ok"}'] == 1
        assert shown[f'printer_supervisor_firmware_file_present{{printer="{LJ1018}"}}'] == 1
        assert shown[f'printer_supervisor_listener_error{{printer="{LJ1018}"}}'] == 1
    finally:
        blocker.close()
    service.log.wait_for("listener_started", timeout_s=20)
    wait_until(lambda: metric(http_port,
                              f'printer_supervisor_listener_error{{printer="{LJ1018}"}}') == 0)


def test_the_textfile_follows_the_service_and_is_removed_at_stop(
        printer: VirtualPrinter, start_service: StartService, tmp_path: Path) -> None:
    port, textfile = free_port(), tmp_path / "textfile" / "printer_supervisor.prom"
    textfile.parent.mkdir()
    service = start_service([{"name": "lp", "device": str(printer.path), "port": port}],
                            metrics_file=str(textfile))
    wait_until(textfile.exists, what="the textfile")
    assert stat.S_IMODE(textfile.stat().st_mode) == 0o644
    assert service.status()["daemon"]["metrics_file"] == str(textfile)
    service.log.wait_for("listener_started")
    send_job(port, b"counted")
    wait_until(lambda: 'printer_supervisor_jobs_finished_total{printer="lp"} 1\n'
               in textfile.read_text(), what="the job in the textfile")
    assert sorted(p.name for p in textfile.parent.iterdir()) == [textfile.name]
    service.stop()
    assert list(textfile.parent.iterdir()) == []


def test_an_unwritable_textfile_is_reported_and_printing_goes_on(
        printer: VirtualPrinter, start_service: StartService, tmp_path: Path) -> None:
    port, textfile = free_port(), tmp_path / "missing-dir" / "printer_supervisor.prom"
    service = start_service([{"name": "lp", "device": str(printer.path), "port": port}],
                            metrics_file=str(textfile))
    failed = service.log.wait_for("metrics_file_failed")
    assert "No such file or directory" in failed["error"] and failed["level"] == "error"
    assert "metrics file" in service.status()["daemon"]["error"]
    service.log.wait_for("listener_started")
    assert send_job(port, b"printed anyway") == b""
    assert printer.wait_for_bytes(14) == b"printed anyway"


# -- the writer on its own ---------------------------------------------------------------------
def test_writes_are_atomic_at_most_once_a_second_and_the_file_goes_at_close(
        tmp_path: Path) -> None:
    path = tmp_path / "m.prom"
    renders: list[float] = []
    errors: list[str | None] = []

    def render() -> str:
        renders.append(time.monotonic())
        return f"x_total {len(renders)}\n"

    async def main() -> None:
        writer = MetricsFile(path, render, on_error=errors.append)
        writer.start()  # the first write is at once
        assert path.read_text() == "x_total 1\n"
        for _ in range(100):  # a burst of changes: one more write, a second after the first
            writer.changed()
        while len(renders) < 2:
            await asyncio.sleep(0.05)
        writer.changed()
        while len(renders) < 3:
            await asyncio.sleep(0.05)
        assert path.read_text() == "x_total 3\n"
        assert [p.name for p in tmp_path.iterdir()] == ["m.prom"]  # no temporary file left
        await writer.close()

    asyncio.run(asyncio.wait_for(main(), 30))
    assert len(renders) == 3
    assert all(b - a >= metricsfile.MIN_INTERVAL_S for a, b in itertools.pairwise(renders))
    assert not path.exists() and errors == []


def test_a_failed_write_leaves_no_temporary_file_and_recovers(tmp_path: Path) -> None:
    path = tmp_path / "dir" / "m.prom"
    errors: list[str | None] = []

    async def main() -> None:
        writer = MetricsFile(path, lambda: "x 1\n", on_error=errors.append)
        writer.start()
        assert errors and errors[-1] is not None and str(path) in errors[-1]
        writer.write()  # the same problem again: reported once
        assert len(errors) == 1
        path.parent.mkdir()
        writer.write()
        assert errors[-1] is None and path.read_text() == "x 1\n"
        await writer.close()

    asyncio.run(asyncio.wait_for(main(), 30))
    assert list((tmp_path / "dir").iterdir()) == []


def test_a_heartbeat_rewrites_the_file_when_nothing_changes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metricsfile, "HEARTBEAT_S", 0.2)
    monkeypatch.setattr(metricsfile, "MIN_INTERVAL_S", 0.0)
    path = tmp_path / "m.prom"
    count = 0

    def render() -> str:
        nonlocal count
        count += 1
        return f"printer_supervisor_uptime_seconds {count}\n"

    async def main() -> None:
        writer = MetricsFile(path, render, on_error=lambda _: None)
        writer.start()
        while writer.writes < 3:  # the heartbeat: uptime, memory and CPU as of now
            await asyncio.sleep(0.05)
        assert path.read_text() == f"printer_supervisor_uptime_seconds {count}\n"
        await writer.close()

    asyncio.run(asyncio.wait_for(main(), 30))


def test_values_that_change_by_themselves_are_no_reason_to_write(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Uptime, memory, CPU and the hourly rescans' count wait for the heartbeat or a change."""
    monkeypatch.setattr(metricsfile, "MIN_INTERVAL_S", 0.0)
    path = tmp_path / "m.prom"
    jobs, ticks = 0, 0

    def render() -> str:
        nonlocal ticks
        ticks += 1
        changing = "".join(f"printer_supervisor_{name} {ticks}\n" for name in (
            "uptime_seconds", "resident_memory_bytes", "cpu_seconds_total", "reconciles_total"))
        return changing + f'printer_supervisor_jobs_finished_total{{printer="lp"}} {jobs}\n'

    async def turns(count: int = 5) -> None:  # a change is looked at within a loop turn or two
        for _ in range(count):
            await asyncio.sleep(0)

    async def main() -> None:
        nonlocal jobs
        writer = MetricsFile(path, render, on_error=lambda _: None)
        writer.start()
        inode = path.stat().st_ino
        for _ in range(3):
            writer.changed()
            await turns()
        assert ticks == 4, "each change was looked at"
        assert writer.writes == 1 and path.stat().st_ino == inode
        jobs = 1
        writer.changed()
        await turns()
        assert writer.writes == 2
        assert 'jobs_finished_total{printer="lp"} 1\n' in path.read_text()
        assert f"printer_supervisor_uptime_seconds {ticks}\n" in path.read_text()
        await writer.close()

    asyncio.run(asyncio.wait_for(main(), 30))


def test_the_service_leaves_the_textfile_alone_until_a_value_changes(
        printer: VirtualPrinter, start_service: StartService, tmp_path: Path) -> None:
    """A rescan that finds nothing new (the hourly one) writes nothing; a job is written at once;
    the next write while nothing happens is the heartbeat, an hour away."""
    port, textfile = free_port(), tmp_path / "textfile" / "printer_supervisor.prom"
    textfile.parent.mkdir()
    started = time.monotonic()
    service = start_service([{"name": "lp", "device": str(printer.path), "port": port}],
                            metrics_file=str(textfile))
    owner = service.service
    assert owner is not None and owner.metrics_file is not None
    writer = owner.metrics_file
    service.log.wait_for("listener_started")

    def settled() -> bool:  # every timer an hour away: no write pending
        return all(due - started >= HOUR_S for due in service.timers())

    wait_until(settled, what="no write pending after the start")
    before = (writer.writes, textfile.stat().st_ino, textfile.read_text())
    for _ in range(3):
        reconciles = owner.reconciles
        service.rescan()
        wait_until(lambda: owner.reconciles > reconciles and settled(),  # noqa: B023
                   what="a rescan, and what it changed looked at")
    assert (writer.writes, textfile.stat().st_ino, textfile.read_text()) == before
    send_job(port, b"counted")
    wait_until(lambda: 'printer_supervisor_jobs_finished_total{printer="lp"} 1\n'
               in textfile.read_text(), what="the job in the textfile")
    assert writer.writes > before[0]
