"""Hotplug supervision end to end: fake sysfs, pty printers, events through the control socket."""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from harness import ServiceThread, free_port, send_job, wait_until

from supervisor import app
from supervisor.lab.virtual import DEFAULT_DEVICE_ID, FWVER_FIELD, FakeSysfs, VirtualUsbPrinter

BLOB = b"\x1b%-12345X@PJL ENTER LANGUAGE=ACL\r\n" + os.urandom(100_000)
LJ1018 = "hp-laserjet-1018"
StartService = Callable[..., ServiceThread]
MakeUsb = Callable[..., VirtualUsbPrinter]




@pytest.fixture
def firmware_file(tmp_path: Path) -> Path:
    path = tmp_path / "firmware" / "sihp1018.dl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(BLOB)
    return path


def deliver(service: ServiceThread, events: list[dict[str, str]]) -> None:
    for env in events:
        assert service.notify(env) == {"ok": True}


def test_plug_firmware_job_unplug(make_usb: MakeUsb, firmware_file: Path,
                                  start_service: StartService) -> None:
    usb = make_usb(firmware=BLOB)
    base_port = free_port()
    service = start_service([], base_port=base_port)
    deliver(service, usb.plug())
    pushed = service.log.wait_for("firmware_pushed", printer=LJ1018)
    assert pushed["bytes"] == len(BLOB)
    ready = service.wait_state(LJ1018, "ready")
    assert ready["firmware"] == "sihp1018.dl" and ready["product"] == "3f0/4117/100"
    assert ready["port"] == base_port  # the first printer auto found
    assert usb.printer is not None and usb.printer.firmware_loaded
    service.log.wait_for("listener_started", printer=LJ1018)
    send_job(ready["port"], b"the job")
    assert usb.printer.wait_for_bytes(len(BLOB) + 7) == BLOB + b"the job"
    deliver(service, usb.unplug())
    service.wait_state(LJ1018, "absent")
    service.log.wait_for("listener_stopped", printer=LJ1018)
    changes = [(e["from"], e["to"], e["trigger"]) for e in service.log.events("state_changed")]
    # ready <-> serving, every job's, is at debug level: job_started and job_finished say it.
    assert changes == [("absent", "firmware-needed", "plug"),
                       ("firmware-needed", "ready", "firmware_loaded"),
                       ("ready", "absent", "unplug")]
    assert [e["event"] for e in service.log.events() if e["event"].startswith("job_")] == [
        "job_started", "job_finished"]
    # Powered on again, it has forgotten its firmware: pushed again.
    deliver(service, usb.plug())
    service.log.wait_for("firmware_pushed", count=2)
    service.wait_state(LJ1018, "ready")


def test_a_printer_reporting_fwver_gets_no_firmware(make_usb: MakeUsb, firmware_file: Path,
                                                   start_service: StartService) -> None:
    usb = make_usb(device_id=DEFAULT_DEVICE_ID + FWVER_FIELD)
    service = start_service([])
    deliver(service, usb.plug())
    port = service.wait_state(LJ1018, "ready")["port"]
    service.log.wait_for("listener_started")
    send_job(port, b"only the job")
    assert usb.printer is not None and usb.printer.wait_for_bytes(12) == b"only the job"
    assert service.log.events("firmware_push_started") == []


def test_missing_firmware_parks_that_printer_and_others_serve(
        make_usb: MakeUsb, start_service: StartService, tmp_path: Path) -> None:
    needy = make_usb(firmware=BLOB)
    fine = make_usb(port_path="2-2", lp="lp1", serial="OTHER", product_id=0x2B17,
                    model="HP LaserJet 1020", device_id=DEFAULT_DEVICE_ID + FWVER_FIELD)
    service = start_service([])
    deliver(service, needy.plug() + fine.plug())
    failed = service.log.wait_for("firmware_failed", printer=LJ1018)
    assert failed["permanent"] is True
    parked = service.wait_state(LJ1018, "firmware-needed")
    assert "sihp1018.dl" in parked["error"] and str(tmp_path / "firmware") in parked["error"]
    port = service.wait_state("hp-laserjet-1020", "ready")["port"]
    service.log.wait_for("listener_started", printer="hp-laserjet-1020")
    send_job(port, b"unaffected")
    assert fine.printer is not None and fine.printer.wait_for_bytes(10) == b"unaffected"
    assert len(service.log.events("firmware_failed")) == 1  # no retry storm


def test_printers_present_at_start_are_served_without_any_event(
        make_usb: MakeUsb, start_service: StartService) -> None:
    usb = make_usb(firmware=None)
    usb.plug()
    service = start_service([{"name": "lj", "match": "3f0/4117/*", "firmware": "none"}])
    port = service.wait_state("lj", "ready")["port"]
    service.log.wait_for("listener_started")
    send_job(port, b"hello")
    assert usb.printer is not None and usb.printer.wait_for_bytes(5) == b"hello"


@pytest.mark.parametrize("order", ["forward", "reversed", "node-first"])
def test_any_event_order_converges(order: str, make_usb: MakeUsb,
                                   start_service: StartService, sysfs: FakeSysfs) -> None:
    usb = make_usb()
    service = start_service([{"name": "lj", "match": "3f0/4117/*", "firmware": "none"}])
    events = usb.plug()
    if order == "reversed":
        events.reverse()
    elif order == "node-first":
        events = [e for e in events if e["SUBSYSTEM"] == "usbmisc"] + events
    deliver(service, events)
    service.wait_state("lj", "ready")
    events = usb.unplug()
    deliver(service, events[::-1] if order == "reversed" else events)
    service.wait_state("lj", "absent")


def test_a_lost_remove_is_caught_by_the_next_rescan(make_usb: MakeUsb,
                                                    start_service: StartService) -> None:
    a, b = make_usb(), make_usb(port_path="2-2", lp="lp1", serial="B")
    service = start_service([{"name": "a", "match": "3f0/4117/*", "serial": "CNB1234567",
                              "firmware": "none"}])
    deliver(service, a.plug())
    service.wait_state("a", "ready")
    a.unplug()  # the remove events are lost
    deliver(service, b.plug())  # any later event makes the service look again
    service.wait_state("a", "absent")


def test_changes_while_the_service_was_down_are_found_by_the_start_up_scan(
        make_usb: MakeUsb, start_service: StartService) -> None:
    a = make_usb(port_path="2-1", lp="lp0", serial="AAAA")
    b = make_usb(port_path="2-2", lp="lp1", serial="BBBB")
    a.plug()
    printers = [{"name": "a", "match": "3f0/4117/*", "serial": "AAAA", "firmware": "none"},
                {"name": "b", "match": "3f0/4117/*", "serial": "BBBB", "firmware": "none"}]
    first = start_service(printers)
    port_a = first.wait_state("a", "ready")["port"]
    first.stop()
    a.unplug()  # while the service is down: its remove is lost...
    b.plug()  # ...and so is this plug
    second = start_service(printers)  # no event is delivered at all
    assert second.status("a")["state"] == "absent"
    assert second.status("a")["port"] == port_a
    assert second.wait_state("b", "ready", timeout_s=1)["serial"] == "BBBB"


def test_a_burst_of_a_thousand_events_plugs_once(make_usb: MakeUsb,
                                                 start_service: StartService) -> None:
    usb = make_usb()
    service = start_service([{"name": "lj", "match": "3f0/4117/*", "firmware": "none"}])
    events = usb.plug()
    burst = [events[i % len(events)] for i in range(1000)]
    deliver(service, burst)
    service.wait_state("lj", "ready")
    assert service.service is not None
    assert service.service.reconciles < 500  # bursts collapse
    assert [e["to"] for e in service.log.events("state_changed")] == ["ready"]


def test_lp_node_removed_without_unplug(make_usb: MakeUsb, sysfs: FakeSysfs,
                                        start_service: StartService) -> None:
    usb = make_usb()
    service = start_service([{"name": "lj", "match": "3f0/4117/*", "firmware": "none"}])
    deliver(service, usb.plug())
    service.wait_state("lj", "ready")
    sysfs.unbind_lp(usb.port_path)  # the CUPS usb backend detached usblp
    deliver(service, sysfs.unbind_lp_events(usb.port_path))
    service.wait_state("lj", "absent")
    sysfs.bind_lp(usb.port_path, usb.lp)
    deliver(service, sysfs.bind_lp_events(usb.port_path))
    service.wait_state("lj", "ready")


def test_unplug_mid_job(make_usb: MakeUsb, start_service: StartService) -> None:
    usb = make_usb()
    service = start_service([{"name": "lj", "match": "3f0/4117/*", "firmware": "none"}])
    deliver(service, usb.plug())
    port = service.wait_state("lj", "ready")["port"]
    service.log.wait_for("listener_started")
    conn = socket.create_connection(("127.0.0.1", port), timeout=10)
    conn.sendall(b"z" * 4096)
    assert usb.printer is not None
    usb.printer.wait_for_bytes(4096)
    deliver(service, usb.unplug())
    service.log.wait_for("job_failed", printer="lj")
    service.wait_state("lj", "absent")
    conn.close()
    deliver(service, usb.plug())
    port = service.wait_state("lj", "ready")["port"]
    service.log.wait_for("listener_started", count=2)
    send_job(port, b"again")
    assert usb.printer.wait_for_bytes(5) == b"again"


def test_identical_printers_keep_their_ports_across_replug_and_restart(
        make_usb: MakeUsb, start_service: StartService) -> None:
    a = make_usb(port_path="2-1", lp="lp0", serial="AAAA")
    b = make_usb(port_path="2-2", lp="lp1", serial="BBBB")
    service = start_service([], firmware_dirs=[])
    deliver(service, a.plug() + b.plug())
    wait_until(lambda: len([p for p in service.status()["printers"]
                            if p["state"] != "absent"]) == 2)
    ports = {p["serial"]: p["port"] for p in service.status()["printers"]}
    deliver(service, a.unplug() + b.unplug())
    # Replugged in the opposite order: B now enumerates first, on lp0.
    b2 = make_usb(port_path="2-1", lp="lp0", serial="BBBB")
    a2 = make_usb(port_path="2-2", lp="lp1", serial="AAAA")
    deliver(service, b2.plug() + a2.plug())
    wait_until(lambda: all(p["state"] != "absent" for p in service.status()["printers"]))
    assert {p["serial"]: p["port"] for p in service.status()["printers"]} == ports
    service.stop()
    restarted = start_service([], firmware_dirs=[])
    wait_until(lambda: len(restarted.status()["printers"]) == 2)
    assert {p["serial"]: p["port"] for p in restarted.status()["printers"]} == ports


def test_no_configured_printer_serves_every_printer_on_base_port(
        make_usb: MakeUsb, start_service: StartService) -> None:
    usb = make_usb(device_id=DEFAULT_DEVICE_ID + FWVER_FIELD)
    service = start_service([], base_port=9300)
    deliver(service, usb.plug())
    entry = service.wait_state(LJ1018, "ready")
    assert entry["port"] == 9300


@pytest.mark.parametrize(("request_bytes", "error"), [
    (b"this is not json\n", "not a JSON request"),
    (b"x" * (1 << 20), "over 64 KiB"),
    (b'{"v": 1, "cmd": "reboot"}\n', "unknown command"),
    (b'{"v": 9, "cmd": "status"}\n', "unsupported protocol version"),
    (b'{"v": 1, "cmd": "notify", "event": {"ACTION": "explode", "DEVPATH": "/x", '
     b'"SUBSYSTEM": "usb"}}\n', "not a uevent action"),
    (b'{"v": 1, "cmd": "notify", "event": {"ACTION": "add", "DEVPATH": "/x", '
     b'"SUBSYSTEM": "usbmisc", "DEVNAME": "../../etc/passwd"}}\n', "outside"),
    (b'{"v": 1, "cmd": "notify", "event": {"ACTION": "add"}}\n', "DEVPATH is missing"),
    (b'{"v": 1, "cmd": "notify", "event": ["ACTION=add"]}\n', "string KEY: VALUE"),
])
def test_bad_requests_are_answered_with_an_error_and_logged(
        request_bytes: bytes, error: str, start_service: StartService, tmp_path: Path) -> None:
    service = start_service([])
    with socket.socket(socket.AF_UNIX) as conn:
        conn.settimeout(10)
        conn.connect(str(tmp_path / "control.sock"))
        try:
            conn.sendall(request_bytes)
            conn.shutdown(socket.SHUT_WR)
        except BrokenPipeError:
            pass  # the service answered the oversized request before reading all of it
        reply = json.loads(conn.makefile("rb").readline())
    assert reply["ok"] is False and error in reply["error"]
    assert error in service.log.wait_for("notify_rejected")["error"]
    assert service.status()["daemon"]["pid"] == os.getpid()  # unharmed


def test_a_corrupt_port_memory_is_logged_and_rebuilt(make_usb: MakeUsb, tmp_path: Path,
                                                     start_service: StartService) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "ports.json").write_text('{"printers": {"03f0:4117:X": {"port": "nine"', "utf-8")
    usb = make_usb(device_id=DEFAULT_DEVICE_ID + FWVER_FIELD)
    usb.plug()
    service = start_service([], base_port=9400)
    assert "ports.json" in service.log.wait_for("state_file_unreadable")["path"]
    assert service.wait_state(LJ1018, "ready")["port"] == 9400
    remembered = json.loads((state / "ports.json").read_text("utf-8"))
    assert remembered["printers"]["03f0:4117:CNB1234567"] == {"name": LJ1018, "port": 9400}


def test_a_printer_whose_events_were_all_lost_is_found_by_the_periodic_rescan(
        make_usb: MakeUsb, start_service: StartService, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("supervisor.app.PERIODIC_RESCAN_S", 0.2)
    service = start_service([{"name": "lj", "match": "3f0/4117/*", "firmware": "none"}])
    make_usb().plug()  # and not one event is delivered
    service.wait_state("lj", "ready")


def test_a_power_cycle_whose_events_were_lost_still_gets_firmware(
        make_usb: MakeUsb, firmware_file: Path, start_service: StartService) -> None:
    usb = make_usb(firmware=BLOB)
    service = start_service([])
    deliver(service, usb.plug())
    service.log.wait_for("firmware_pushed")
    service.wait_state(LJ1018, "ready")
    usb.unplug()
    usb.plug()  # off and on again between two scans: only the devnum tells
    deliver(service, [{"ACTION": "change", "DEVPATH": "/devices/x", "SUBSYSTEM": "usb",
                       "DEVTYPE": "usb_device"}])
    service.log.wait_for("firmware_pushed", count=2)
    service.wait_state(LJ1018, "ready")


def test_a_rescan_that_fails_is_logged_and_the_next_one_runs(
        make_usb: MakeUsb, start_service: StartService, monkeypatch: pytest.MonkeyPatch) -> None:
    service = start_service([{"name": "lj", "match": "3f0/4117/*", "firmware": "none"}])
    real_scan, calls = app.scan, []

    def flaky_scan(*args: object, **kwargs: object) -> object:
        calls.append(1)
        if len(calls) == 1:
            raise PermissionError(13, "Permission denied", "/sys/bus/usb/devices")
        return real_scan(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(app, "scan", flaky_scan)
    usb = make_usb()
    events = usb.plug()
    deliver(service, events[:1])
    assert "PermissionError" in service.log.wait_for("rescan_failed")["error"]
    deliver(service, events[1:])
    service.wait_state("lj", "ready")


def test_a_firmware_file_installed_later_is_pushed_at_the_next_rescan(
        make_usb: MakeUsb, tmp_path: Path, start_service: StartService) -> None:
    usb = make_usb(firmware=BLOB)
    other = make_usb(port_path="2-2", lp="lp1", serial="OTHER",
                     device_id=DEFAULT_DEVICE_ID + FWVER_FIELD)
    service = start_service([])
    deliver(service, usb.plug())
    service.log.wait_for("firmware_failed", printer=LJ1018)
    (tmp_path / "firmware").mkdir(exist_ok=True)
    (tmp_path / "firmware" / "sihp1018.dl").write_bytes(BLOB)  # the user ran getweb
    deliver(service, other.plug())  # any event (or the periodic rescan) looks again
    service.log.wait_for("firmware_pushed", printer=LJ1018)
    assert service.wait_state(LJ1018, "ready")["error"] is None
    assert len(service.log.events("firmware_failed")) == 1


def test_a_printer_without_usblp_is_polled_briefly_then_left_alone(
        sysfs: FakeSysfs, start_service: StartService, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("supervisor.app.NODE_WAIT_S", 0.3)
    monkeypatch.setattr("supervisor.app.PERIODIC_RESCAN_S", 0.4)
    sysfs.add_printer(lp=None)  # ipp-usb has it: usblp never binds, no node will come
    service = start_service([])
    assert service.service is not None
    core = service.service
    wait_until(lambda: core.reconciles >= 3 and not core._waiting_for_nodes(),
               what="the brief polling at 0.1 s to end")
    before = core.reconciles
    time.sleep(1.2)  # a window for three periodic rescans, and nothing faster
    # Were the expired wait to start over at each periodic rescan, 0.1 s polling would follow
    # each of them (about 9 rescans here); a slow machine only makes fewer.
    assert core.reconciles - before <= 4
