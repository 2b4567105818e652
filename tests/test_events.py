"""Hotplug events: parsing and validation from any source, DEVNAME kept inside devfs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from supervisor.core.events import EventError, HotplugEvent, parse_event, parse_uevent

DEVFS = Path("/tmp/fake/dev")
FIXTURES = Path(__file__).resolve().parent / "fixtures"  # copies of shared/reference
LP0 = {"ACTION": "add", "SUBSYSTEM": "usbmisc", "DEVNAME": "usb/lp0", "SEQNUM": "7",
       "DEVPATH": "/devices/pci0000:00/0000:00:14.0/usb2/2-1/2-1:1.0/usbmisc/lp0"}


@pytest.mark.parametrize(("devname", "expected"), [
    ("usb/lp0", DEVFS / "usb/lp0"),
    ("/dev/usb/lp0", DEVFS / "usb/lp0"),
    ("usb/../usb/lp1", DEVFS / "usb/lp1"),
])
def test_devname_is_resolved_under_devfs(devname: str, expected: Path) -> None:
    assert parse_event({**LP0, "DEVNAME": devname}, DEVFS).devname == expected


@pytest.mark.parametrize("devname", [
    "../../etc/passwd", "/dev/../etc/passwd", "/etc/passwd", "usb/../../x", "/dev/..",
])
def test_devname_escaping_devfs_is_refused(devname: str) -> None:
    with pytest.raises(EventError, match="DEVNAME"):
        parse_event({**LP0, "DEVNAME": devname}, DEVFS)


@pytest.mark.parametrize(("change", "message"), [
    ({"ACTION": None}, "ACTION is missing"),
    ({"DEVPATH": None}, "DEVPATH is missing"),
    ({"SUBSYSTEM": ""}, "SUBSYSTEM is missing"),
    ({"ACTION": "explode"}, "not a uevent action"),
    ({"DEVPATH": "devices/x"}, "absolute sysfs path"),
    ({"DEVPATH": "/devices/../../etc"}, "without '..'"),
    ({"SEQNUM": "seven"}, "SEQNUM"),
    ({"PRODUCT": "x" * 5000}, "not a plausible"),
    ({"DEVTYPE": "usb\ndevice"}, "not a plausible"),
])
def test_malformed_events_are_refused_with_the_key(change: dict[str, str | None],
                                                   message: str) -> None:
    env = {**LP0, **change}
    env = {k: v for k, v in env.items() if v is not None}
    with pytest.raises(EventError, match=message):
        parse_event(env, DEVFS)


def test_unknown_variables_never_reach_the_event() -> None:
    event = parse_event({**LP0, "HOME": "/root", "SECRET": "x"}, DEVFS)
    assert "SECRET" not in json.dumps(event.describe())


@pytest.mark.parametrize(("env", "relevant"), [
    ({"SUBSYSTEM": "usb", "DEVTYPE": "usb_device"}, True),
    ({"SUBSYSTEM": "usb", "DEVTYPE": "usb_interface"}, True),
    ({"SUBSYSTEM": "usbmisc"}, True),
    ({"SUBSYSTEM": "usbmisc", "DEVPATH": "/devices/x/usbmisc/hiddev0"}, False),
    ({"SUBSYSTEM": "block", "DEVTYPE": "disk"}, False),
    ({"SUBSYSTEM": "usb", "DEVTYPE": "usb_device", "ACTION": "move"}, False),
    ({"SUBSYSTEM": "usb", "DEVTYPE": "usb_device", "ACTION": "bind"}, True),
    ({"SUBSYSTEM": "usb"}, False),
])
def test_relevance(env: dict[str, str], relevant: bool) -> None:
    assert parse_event({**LP0, **env}, DEVFS).relevant is relevant


def test_raw_kernel_uevent_parses_to_the_same_event() -> None:
    raw = b"add@/devices/x/2-1/2-1:1.0/usbmisc/lp0\0" + b"\0".join(
        f"{k}={v}".encode() for k, v in {**LP0, "DEVPATH": "/devices/x/2-1/2-1:1.0/usbmisc/lp0"}
        .items()) + b"\0"
    event = parse_event(parse_uevent(raw), DEVFS)
    assert event == HotplugEvent(action="add", devpath="/devices/x/2-1/2-1:1.0/usbmisc/lp0",
                                 subsystem="usbmisc", devname=DEVFS / "usb/lp0", seqnum=7)


@pytest.mark.parametrize("fixture", ["openwrt_hplj1018.json", "udev_hplj1018.json"])
def test_reference_sequences_parse(fixture: str) -> None:
    data = json.loads((FIXTURES / fixture).read_text(encoding="utf-8"))
    envs = [e for seq in _sequences(data) for e in seq]
    assert envs, f"no events found in {fixture}"
    events = [parse_event(env, DEVFS) for env in envs]
    assert any(e.subsystem == "usbmisc" and e.devname == DEVFS / "usb/lp0" for e in events)
    assert {e.action for e in events} >= {"add", "remove"}


def _sequences(data: object) -> list[list[dict[str, str]]]:
    """Every list of event dicts found in a reference file, whatever its nesting."""
    if isinstance(data, list) and data and all(isinstance(e, dict) for e in data):
        return [[e.get("env", e) for e in data]]  # OpenWrt's entries wrap the env
    children = data.values() if isinstance(data, dict) else data if isinstance(data, list) else []
    return [seq for child in children for seq in _sequences(child)]
