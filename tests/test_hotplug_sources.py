"""Events from every source reach the service: netlink (udev, kernel) and `supervisorctl notify`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from harness import ON_CI, ServiceThread, send_job
from netlink import (
    NetnsThread,
    kernel_sender,
    netns_unavailable,
    send_kernel_event,
    send_udev_event,
    udev_available,
    udev_sender,
)

from supervisor.lab.virtual import FakeSysfs, VirtualUsbPrinter
from supervisor.sources.monitor import open_monitor

FIXTURES = Path(__file__).resolve().parent / "fixtures"
BLOB = b"\x1b%-12345X@PJL ENTER LANGUAGE=ACL\r\n" + os.urandom(50_000)
LJ1018 = "hp-laserjet-1018"
StartService = Callable[..., ServiceThread]


def fixture(name: str) -> dict[str, Any]:
    return dict(json.loads((FIXTURES / name).read_text(encoding="utf-8")))


def unavailable(reason: str) -> None:
    if ON_CI:
        pytest.fail(f"{reason} (on CI the netlink tests must run, as root)")
    pytest.skip(reason)


@pytest.fixture
def netns() -> Iterator[NetnsThread]:
    if reason := netns_unavailable():
        unavailable(reason)
    with NetnsThread() as thread:
        yield thread


@pytest.fixture
def firmware_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "firmware"
    directory.mkdir()
    (directory / "sihp1018.dl").write_bytes(BLOB)
    return directory


@pytest.mark.parametrize("source", ["udev", "kernel"])
def test_netlink_events_drive_plug_firmware_job_unplug(
        source: str, netns: NetnsThread, tmp_path: Path, firmware_dir: Path,
        start_service: StartService) -> None:
    if source == "udev" and (reason := udev_available()):
        unavailable(reason)
    sender = netns.call(udev_sender if source == "udev" else kernel_sender)
    send = send_udev_event if source == "udev" else send_kernel_event
    usb = VirtualUsbPrinter(FakeSysfs(tmp_path / "sys"), tmp_path / "dev", firmware=BLOB)
    try:
        service = start_service([], event_source=source,
                                open_monitor=lambda kind: netns.call(lambda: open_monitor(kind)))
        for env in usb.plug():
            send(sender, env)
        service.log.wait_for("hotplug_received", source=source)
        service.log.wait_for("firmware_pushed", printer=LJ1018)
        port = service.wait_state(LJ1018, "ready")["port"]
        service.log.wait_for("listener_started", printer=LJ1018)
        send_job(port, b"via netlink")
        assert usb.printer is not None
        assert usb.printer.wait_for_bytes(len(BLOB) + 11) == BLOB + b"via netlink"
        for env in usb.unplug():
            send(sender, env)
        service.wait_state(LJ1018, "absent")
    finally:
        usb.close()
        sender.close()


def test_udev_reference_sequence_through_netlink(netns: NetnsThread, tmp_path: Path,
                                                start_service: StartService) -> None:
    if reason := udev_available():
        unavailable(reason)
    events = fixture("udev_hplj1018.json")
    sysfs = FakeSysfs(tmp_path / "sys")
    sender = netns.call(udev_sender)
    # The same printer as the recorded events: bus 1, port 2, serial KJ0XXXXX, already running
    # its firmware (this test is about the events, not the push).
    usb = VirtualUsbPrinter(sysfs, tmp_path / "dev", port_path="1-2", serial="KJ0XXXXX",
                            device_id="MFG:Hewlett-Packard;MDL:HP LaserJet 1018;FWVER:20051028;")
    try:
        service = start_service([], event_source="udev",
                                open_monitor=lambda kind: netns.call(lambda: open_monitor(kind)))
        usb.plug()
        for env in events["plug"]:
            send_udev_event(sender, env)
        service.log.wait_for("hotplug_received", count=len(events["plug"]))
        assert service.wait_state(LJ1018, "ready")["serial"] == "KJ0XXXXX"
        usb.unplug()
        for env in events["unplug"]:
            send_udev_event(sender, env)
        service.wait_state(LJ1018, "absent")
        received = [e["devpath"] for e in service.log.events("hotplug_received")]
        assert received == [e["DEVPATH"] for e in events["plug"] + events["unplug"]]
    finally:
        usb.close()
        sender.close()


def hotplug_call(socket_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`supervisorctl notify` with the environment procd's hotplug-call gives a handler."""
    procd = {"PATH": os.environ["PATH"], "LOGNAME": "root", "USER": "root",
             "HOME": "/", "NOT_A_HOTPLUG_VARIABLE": "must not leak"}
    return subprocess.run([sys.executable, "-m", "supervisor", "--socket", str(socket_path),
                           "notify"], env={**procd, **env}, capture_output=True, text=True,
                          timeout=30, check=False)


def test_openwrt_sequence_through_supervisorctl_notify(tmp_path: Path, firmware_dir: Path,
                                                       start_service: StartService) -> None:
    events = fixture("openwrt_hplj1018.json")
    usb = VirtualUsbPrinter(FakeSysfs(tmp_path / "sys"), tmp_path / "dev", firmware=BLOB)
    try:
        service = start_service([{"name": "laserjet", "match": "3f0/4117/*", "port": 9101}])
        usb.plug()
        for step in events["plug"]:
            result = hotplug_call(tmp_path / "control.sock", step["env"])
            assert result.returncode == 0, result.stderr
        service.log.wait_for("firmware_pushed", printer="laserjet")
        assert service.wait_state("laserjet", "ready")["port"] == 9101
        assert "must not leak" not in service.log.path.read_text(encoding="utf-8")
        usb.unplug()
        for step in events["unplug"]:
            assert hotplug_call(tmp_path / "control.sock", step["env"]).returncode == 0
        service.wait_state("laserjet", "absent")
    finally:
        usb.close()


def test_notify_without_a_service_exits_3_and_says_so(tmp_path: Path) -> None:
    result = hotplug_call(tmp_path / "nobody.sock", {"ACTION": "add", "DEVPATH": "/x",
                                                     "SUBSYSTEM": "usb"})
    assert result.returncode == 3
    assert "not running" in result.stderr and "rescans" in result.stderr


def test_notify_rejected_by_the_service_exits_2(tmp_path: Path,
                                                start_service: StartService) -> None:
    start_service([])
    result = hotplug_call(tmp_path / "control.sock", {"ACTION": "add", "DEVPATH": "/x",
                                                      "SUBSYSTEM": "usbmisc",
                                                      "DEVNAME": "../../etc/passwd"})
    assert result.returncode == 2
    assert "rejected" in result.stderr and "outside" in result.stderr


def test_notify_with_arguments_refuses_unknown_keys(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "supervisor", "--socket",
                             str(tmp_path / "x.sock"), "notify", "ACTION=add", "EVIL=1"],
                            capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 2 and "EVIL=1" in result.stderr
