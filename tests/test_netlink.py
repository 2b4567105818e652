"""The real pyudev Monitor receives the synthetic uevents of tests/netlink.py, for both sources.

Each test runs in its own private network namespace (no other process sees the events). Without
root the tests skip locally and fail on CI, where they must run.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import pyudev
from harness import ON_CI
from netlink import (
    NetnsThread,
    kernel_sender,
    netns_unavailable,
    next_event,
    open_monitor_in,
    send_kernel_event,
    send_udev_event,
    udev_available,
    udev_message,
    udev_sender,
)

pytestmark = pytest.mark.timeout(60)

HERE = Path(__file__).resolve().parent
UDEV_FIXTURE = Path(__file__).resolve().parent / "fixtures" / "udev_hplj1018.json"

DEVICE_PATH = "/devices/pci0000:00/0000:00:14.0/usb2/2-1"
USB_DEVICE = {
    "ACTION": "add", "DEVPATH": DEVICE_PATH, "SUBSYSTEM": "usb", "DEVTYPE": "usb_device",
    "DEVNAME": "/dev/bus/usb/002/009", "PRODUCT": "3f0/4117/100", "TYPE": "0/0/0",
    "BUSNUM": "002", "DEVNUM": "009", "MAJOR": "189", "MINOR": "136", "SEQNUM": "4711",
}
LP0 = {
    "ACTION": "add", "DEVPATH": f"{DEVICE_PATH}/2-1:1.0/usbmisc/lp0", "SUBSYSTEM": "usbmisc",
    "DEVNAME": "/dev/usb/lp0", "MAJOR": "180", "MINOR": "0", "SEQNUM": "4714",
}
BLOCK = {
    "ACTION": "add", "DEVPATH": "/devices/virtual/block/loop7", "SUBSYSTEM": "block",
    "DEVTYPE": "disk", "DEVNAME": "/dev/loop7", "MAJOR": "7", "MINOR": "7", "SEQNUM": "4713",
}


def unavailable(reason: str) -> None:
    """Skip locally; on CI (root, this kind of machine) these tests must run."""
    if ON_CI:
        pytest.fail(reason + " (CI must run the netlink tests)")
    pytest.skip(reason)


def kernel_style(props: Mapping[str, str]) -> dict[str, str]:
    """The kernel's own DEVNAME is relative to /dev (libudev makes it absolute again)."""
    devname = props.get("DEVNAME")
    return {**props, "DEVNAME": devname.removeprefix("/dev/")} if devname else dict(props)


@dataclass
class Channel:
    """A started Monitor for one source and the function that sends it an event."""

    source: str
    monitor: pyudev.Monitor
    send: Callable[[Mapping[str, str]], None]

    def expect(self, what: str) -> pyudev.Device:
        device = next_event(self.monitor, timeout_s=5.0)
        if device is None:
            pytest.fail(f"source {self.source!r}: no {what} within 5 s"
                        + (f" ({reason})" if (reason := udev_available()) else ""))
        return device


@pytest.fixture
def netns() -> Iterator[NetnsThread]:
    if reason := netns_unavailable():
        unavailable(reason)
    try:
        thread = NetnsThread()
    except OSError as error:
        unavailable(f"cannot create a network namespace: {error}")
    with thread:
        yield thread


@contextmanager
def open_channel(netns: NetnsThread, source: str,
                 subsystems: tuple[tuple[str, str | None], ...] = (("usb", "usb_device"),
                                                                   ("usbmisc", None)),
                 ) -> Iterator[Channel]:
    if source == "udev" and (reason := udev_available()):
        unavailable(reason)
    sock: socket.socket = netns.call(udev_sender if source == "udev" else kernel_sender)
    with sock:
        sender = send_udev_event if source == "udev" else send_kernel_event
        monitor = open_monitor_in(netns, source, subsystems)
        yield Channel(source, monitor, lambda props: sender(sock, props))


@pytest.fixture(params=["udev", "kernel"])
def channel(request: pytest.FixtureRequest, netns: NetnsThread) -> Iterator[Channel]:
    with open_channel(netns, request.param) as opened:
        yield opened


@pytest.fixture
def udev(netns: NetnsThread) -> Iterator[Channel]:
    with open_channel(netns, "udev") as opened:
        yield opened


def send_and_receive(channel: Channel, props: Mapping[str, str]) -> pyudev.Device:
    """Send `props` as the source would carry them; return the event's Device."""
    channel.send(props if channel.source == "udev" else kernel_style(props))
    return channel.expect(f"{props['SUBSYSTEM']} {props['ACTION']} event")


def comparable(props: Mapping[str, str]) -> dict[str, object]:
    """Properties with the sets as sets: libudev rebuilds TAGS, CURRENT_TAGS and DEVLINKS from
    hash sets, in an order that changes from process to process."""
    sets = {"TAGS": ":", "CURRENT_TAGS": ":", "DEVLINKS": " "}
    return {key: frozenset(value.split(sets[key])) - {""} if key in sets else value
            for key, value in props.items()}


def received(channel: Channel, device: pyudev.Device, sent: Mapping[str, str]) -> None:
    """The Device carries exactly the sent properties; the kernel numbers its own events."""
    if channel.source == "kernel":
        assert device.sequence_number > 0
        sent = {**sent, "SEQNUM": str(device.sequence_number)}
    assert comparable(device.properties) == comparable(sent)


def test_usb_device_add(channel: Channel) -> None:
    device = send_and_receive(channel, USB_DEVICE)
    assert (device.action, device.subsystem, device.device_type) == ("add", "usb", "usb_device")
    assert device.properties["PRODUCT"] == "3f0/4117/100"
    received(channel, device, USB_DEVICE)


def test_usbmisc_lp0_add(channel: Channel) -> None:
    device = send_and_receive(channel, LP0)
    assert (device.action, device.subsystem, device.sys_name) == ("add", "usbmisc", "lp0")
    assert device.properties["DEVNAME"] == "/dev/usb/lp0"
    received(channel, device, LP0)


def test_filter_drops_other_subsystems(channel: Channel) -> None:
    for props in (BLOCK, {**USB_DEVICE, "DEVTYPE": "usb_interface"}, USB_DEVICE):
        channel.send(props if channel.source == "udev" else kernel_style(props))
    device = channel.expect("usb_device event")
    assert (device.subsystem, device.device_type) == ("usb", "usb_device")
    assert next_event(channel.monitor, timeout_s=0.3) is None


def test_bpf_filter_compares_our_hashes(netns: NetnsThread, udev: Channel) -> None:
    """A wrong subsystem hash is dropped in the kernel, so the right one is what let events in."""
    message = bytearray(udev_message(USB_DEVICE))
    message[24] ^= 0x01  # filter_subsystem_hash; the properties still say SUBSYSTEM=usb
    with open_channel(netns, "udev", subsystems=()) as unfiltered, \
            netns.call(udev_sender) as sock:
        sock.sendto(bytes(message), (0, 2))
        assert unfiltered.expect("event with a wrong hash").subsystem == "usb"
    assert next_event(udev.monitor, timeout_s=0.3) is None


def test_tag_bloom_matches_filter_by_tag(netns: NetnsThread) -> None:
    """The header's tag bloom (from TAGS) passes filter_by_tag's BPF filter; zeros do not."""
    if reason := udev_available():
        unavailable(reason)

    def tagged_monitor() -> pyudev.Monitor:
        monitor = pyudev.Monitor.from_netlink(pyudev.Context())
        monitor.filter_by_tag("systemd")
        monitor.start()
        return monitor

    monitor = netns.call(tagged_monitor)
    tagged = {**USB_DEVICE, "TAGS": ":seat:systemd:", "CURRENT_TAGS": ":seat:systemd:"}
    no_bloom = bytearray(udev_message(tagged))
    no_bloom[32:40] = bytes(8)
    with netns.call(udev_sender) as sock:
        sock.sendto(bytes(no_bloom), (0, 2))
        send_udev_event(sock, USB_DEVICE)
        send_udev_event(sock, {**tagged, "SEQNUM": "4712"})
        device = next_event(monitor, timeout_s=5.0)
    assert device is not None, "the tagged event did not arrive"
    assert device.sequence_number == 4712
    assert next_event(monitor, timeout_s=0.3) is None


def test_missing_seqnum_raises_value_error(udev: Channel) -> None:
    udev.send({key: value for key, value in USB_DEVICE.items() if key != "SEQNUM"})
    with pytest.raises(ValueError):
        udev.monitor.poll(timeout=5)
    received(udev, send_and_receive(udev, USB_DEVICE), USB_DEVICE)  # the monitor still works


def load_fixture() -> dict[str, list[dict[str, str]]]:
    if not UDEV_FIXTURE.is_file():
        unavailable(f"{UDEV_FIXTURE} is missing (set UDEV_HPLJ1018_JSON)")
    data = json.loads(UDEV_FIXTURE.read_text())
    return {name: data[name] for name in ("plug", "unplug")}


@pytest.mark.parametrize("sequence", ["plug", "unplug"])
def test_replay_udev_fixture(netns: NetnsThread, sequence: str) -> None:
    events = load_fixture()[sequence]
    with open_channel(netns, "udev", subsystems=(("usb", None), ("usbmisc", None))) as udev:
        for props in events:
            udev.send(props)
        for props in events:
            device = udev.expect(f"{props['ACTION']} {props['DEVPATH']}")
            assert (device.action, device.device_path, device.sequence_number) == (
                props["ACTION"], props["DEVPATH"], int(props["SEQNUM"]))
            assert comparable(device.properties) == comparable(props)
        assert next_event(udev.monitor, timeout_s=0.3) is None


PROBE = """
import sys
sys.path.insert(0, sys.argv[1])
from netlink import NetnsThread, next_event, open_monitor_in, send_udev_event, udev_available
from netlink import udev_sender
with NetnsThread() as netns:
    monitor = open_monitor_in(netns, "udev")
    with netns.call(udev_sender) as sock:
        send_udev_event(sock, {"ACTION": "add", "DEVPATH": "/devices/x/lp0",
                               "SUBSYSTEM": "usbmisc", "SEQNUM": "1"})
    print(udev_available() is None, next_event(monitor, 1.0) is not None)
"""


@pytest.mark.parametrize(("setup", "works"), [
    ("", False),
    ("mkdir /run/udev && touch /run/udev/control", True),
], ids=["no-udev", "udev-control"])
def test_udev_available_agrees_with_libudev(setup: str, works: bool) -> None:
    """With /dev a tmpfs (a private mount namespace), the udev source hears only if udevd runs."""
    if reason := netns_unavailable():
        unavailable(reason)
    if not shutil.which("unshare"):
        unavailable("unshare is missing: apt-get install util-linux")
    # Private tmpfs mounts hide the host's /dev and /run (where udevd may run) from the probe.
    script = ("mount -t tmpfs dev /dev && mknod -m 666 /dev/null c 1 3 && mount -t tmpfs run /run"
              + (f" && {setup}" if setup else "") + ' && exec "$0" -c "$1" "$2"')
    result = subprocess.run(["unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
                             script, sys.executable, PROBE, str(HERE)],
                            capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(works), str(works)]
