"""The sysfs scan against fake trees laid out as the kernel does, and FakeSysfs's uevents."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from supervisor.core.devices import Snapshot, UsbPrinter
from supervisor.core.events import parse_event
from supervisor.lab.virtual import DEFAULT_DEVICE_ID, HOST_CONTROLLER, FakeSysfs
from supervisor.sources import sysfs
from supervisor.sources.sysfs import scan

HPLJ = UsbPrinter(port_path="2-1", vendor_id=0x3F0, product_id=0x4117, bcd_device=0x100,
                  serial="CNB1234567", manufacturer="Hewlett-Packard", model="HP LaserJet 1018",
                  protocol=2, device_id=DEFAULT_DEVICE_ID)


@pytest.fixture
def fake(tmp_path: Path) -> FakeSysfs:
    return FakeSysfs(tmp_path / "sys")


@pytest.fixture
def devfs(tmp_path: Path) -> Path:
    return tmp_path / "dev"


def ports(snapshot: Snapshot) -> list[str]:
    return [printer.port_path for printer in snapshot.printers]


# The scan

def test_printer_with_node(fake: FakeSysfs, devfs: Path) -> None:
    fake.add_printer()
    snapshot = scan(fake.root, devfs)
    assert snapshot == Snapshot(printers=(replace(HPLJ, node=devfs / "usb" / "lp0", devnum=2),))
    # The scanner read through symlinks, as in /sys; the root hub usb2 was there and skipped.
    link = fake.devices_dir / "2-1"
    assert link.is_symlink()
    assert link.resolve() == (fake.root / HOST_CONTROLLER.lstrip("/") / "usb2" / "2-1").resolve()
    assert (fake.devices_dir / "usb2").is_dir()


def test_printer_without_node(fake: FakeSysfs, devfs: Path) -> None:
    fake.add_printer(lp=None)
    (printer,) = scan(fake.root, devfs).printers
    # usblp not bound: no lp node, and no ieee1284_id (a usblp attribute) either.
    assert (printer.port_path, printer.node, printer.device_id, printer.protocol) == (
        "2-1", None, None, 2)


def test_lp_node_goes_and_comes_without_unplug(fake: FakeSysfs, devfs: Path) -> None:
    fake.add_printer()
    fake.unbind_lp("2-1")
    assert [p.node for p in scan(fake.root, devfs).printers] == [None]
    fake.bind_lp("2-1", "lp3")
    (printer,) = scan(fake.root, devfs).printers
    assert (printer.node, printer.device_id) == (devfs / "usb" / "lp3", DEFAULT_DEVICE_ID)


def test_identical_printers_told_apart_by_serial(fake: FakeSysfs, devfs: Path) -> None:
    fake.add_printer("2-1.4", serial="CNB0000002", lp="lp1")
    fake.add_printer("2-1.2", serial="CNB0000001", lp="lp0")
    snapshot = scan(fake.root, devfs)
    assert ports(snapshot) == ["2-1.2", "2-1.4"]
    assert [(p.identity, p.node) for p in snapshot.printers] == [
        ("03f0:4117:CNB0000001", devfs / "usb" / "lp0"),
        ("03f0:4117:CNB0000002", devfs / "usb" / "lp1"),
    ]


def test_other_devices_are_skipped(fake: FakeSysfs, devfs: Path) -> None:
    fake.add_device("2-2", 0x781, 0x5567, serial="4C530001", interfaces=[(8, 6, 0x50)])
    fake.add_device("2-3", 0x5E3, 0x608, device_class=(9, 0, 1))  # hub-like: no interfaces
    fake.add_printer("2-4")
    assert ports(scan(fake.root, devfs)) == ["2-4"]


def test_printer_interface_bound_to_usblp_wins(fake: FakeSysfs, devfs: Path) -> None:
    # IPP-over-USB (7/1/4) first: usblp only binds the 7/1/2 interface after it.
    fake.add_device("2-1", 0x3F0, 0x2B17, interfaces=[(0xFF, 0xCC, 0), (7, 1, 4), (7, 1, 2)])
    lp = fake.devices_dir / "2-1:1.2" / "usbmisc" / "lp0"
    lp.mkdir(parents=True)
    (printer,) = scan(fake.root, devfs).printers
    assert (printer.protocol, printer.node) == (2, devfs / "usb" / "lp0")
    lp.rmdir()
    (printer,) = scan(fake.root, devfs).printers
    assert (printer.protocol, printer.node) == (4, None)


@pytest.mark.parametrize("garbage", [b"zzzz\n", b"\n", b"", b"12345\n", b"0x3f0\n", b"3_f0\n",
                                     b"\xff\xfe\n"])
def test_garbage_ids_skip_the_device(fake: FakeSysfs, devfs: Path, garbage: bytes) -> None:
    (fake.add_printer("2-1") / "idVendor").write_bytes(garbage)
    fake.add_printer("2-2", lp="lp1")
    assert ports(scan(fake.root, devfs)) == ["2-2"]


def test_garbage_protocol_is_none(fake: FakeSysfs, devfs: Path) -> None:
    fake.add_printer()
    (fake.devices_dir / "2-1:1.0" / "bInterfaceProtocol").write_text("two\n")
    (printer,) = scan(fake.root, devfs).printers
    assert (printer.protocol, printer.vendor_id) == (None, 0x3F0)


def test_missing_strings_are_none_and_identity_uses_the_port(fake: FakeSysfs,
                                                             devfs: Path) -> None:
    fake.add_printer("1-1.3", serial=None, manufacturer=None, model=None, lp="lp0")
    (printer,) = scan(fake.root, devfs).printers
    assert (printer.serial, printer.manufacturer, printer.model) == (None, None, None)
    assert printer.identity == "03f0:4117@1-1.3"
    # A blank serial (some firmware) is no serial either.
    fake.add_printer("1-1.3", serial="  \x00")
    assert scan(fake.root, devfs).printers[0].identity == "03f0:4117@1-1.3"


def test_dangling_links_are_skipped(fake: FakeSysfs, devfs: Path) -> None:
    fake.add_printer()
    for name in ("3-1", "3-1:1.0", "2-1:1.1"):
        (fake.devices_dir / name).symlink_to("../../../devices/gone/" + name)
    (fake.devices_dir / "3-2").write_text("not a directory\n")
    assert ports(scan(fake.root, devfs)) == ["2-1"]


def test_missing_sysfs_is_an_empty_snapshot(tmp_path: Path) -> None:
    assert scan(tmp_path / "nowhere", tmp_path / "dev") == Snapshot()


@pytest.mark.parametrize("attribute", ["bInterfaceClass", "idVendor", "bcdDevice", "serial",
                                       "product", "ieee1284_id"])
def test_printer_unplugged_mid_scan_is_skipped(fake: FakeSysfs, devfs: Path,
                                               monkeypatch: pytest.MonkeyPatch,
                                               attribute: str) -> None:
    """Gone while we read it: not reported half-read (no serial would make another identity)."""
    fake.add_printer("2-1", lp="lp0")
    fake.add_printer("2-2", serial="CNB0000002", lp="lp1")
    read_bytes = sysfs._read_bytes

    def unplug_then_read(path: str) -> bytes | None:
        if path.endswith(os.path.join("2-1", attribute)) or path.endswith(
                os.path.join("2-1:1.0", attribute)):
            fake.remove("2-1")
        return read_bytes(path)

    monkeypatch.setattr(sysfs, "_read_bytes", unplug_then_read)
    assert ports(scan(fake.root, devfs)) == ["2-2"]


def test_printer_unplugged_after_listing_is_skipped(fake: FakeSysfs, devfs: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    fake.add_printer()
    listdir = sysfs._listdir

    def list_then_unplug(path: str) -> list[str]:
        names = listdir(path)
        if (fake.devices_dir / "2-1").exists():
            fake.remove("2-1")
        return names

    monkeypatch.setattr(sysfs, "_listdir", list_then_unplug)
    assert scan(fake.root, devfs) == Snapshot()


def test_device_id_trailing_nul_and_newline_stripped(fake: FakeSysfs, devfs: Path) -> None:
    fake.add_printer()
    loaded = "MFG:HP;MDL:LaserJet 1018;FWVER:20051028;"
    fake.set_device_id("2-1", loaded + "\x00\n")
    assert scan(fake.root, devfs).printers[0].device_id == loaded
    fake.set_device_id("2-1", "")
    assert scan(fake.root, devfs).printers[0].device_id is None


def test_existing_nodes(fake: FakeSysfs, devfs: Path) -> None:
    lp0, lp1, dangling = devfs / "usb" / "lp0", devfs / "usb" / "lp1", devfs / "usb" / "lp2"
    lp0.parent.mkdir(parents=True)
    os.mkfifo(lp0)
    dangling.symlink_to(devfs / "pts" / "9")
    null = devfs / "by-id" / "null"  # a symlink to a character device
    null.parent.mkdir()
    null.symlink_to("/dev/null")
    file, folder = devfs / "file", devfs / "folder"
    file.touch()
    folder.mkdir()
    snapshot = scan(fake.root, devfs, [lp0, lp1, dangling, null, file, folder])
    assert snapshot.existing_nodes == frozenset({lp0, null})
    assert {node: why.split(",")[0] for node, why in snapshot.refused_nodes.items()} == {
        file: f"{file} is a regular file", folder: f"{folder} is a directory"}


def test_product_and_identity() -> None:
    assert HPLJ.product == "3f0/4117/100"
    assert HPLJ.identity == "03f0:4117:CNB1234567"
    no_serial = UsbPrinter(port_path="2-1.3", vendor_id=0x4A9, product_id=0x2676, bcd_device=0x1)
    assert (no_serial.product, no_serial.identity) == ("4a9/2676/1", "04a9:2676@2-1.3")


# The fake tree's own files and its uevents

def test_files_formatted_as_the_kernel_does(fake: FakeSysfs) -> None:
    device = fake.add_printer()
    interface = fake.devices_dir / "2-1:1.0"
    assert [(device / name).read_text() for name in ("idVendor", "idProduct", "bcdDevice")] == [
        "03f0\n", "4117\n", "0100\n"]
    assert (interface / "bInterfaceClass").read_text() == "07\n"
    assert (interface / "usbmisc" / "lp0" / "dev").read_text() == "180:0\n"
    assert (interface / "ieee1284_id").read_text() == DEFAULT_DEVICE_ID
    assert (fake.root / "class" / "usbmisc" / "lp0" / "dev").read_text() == "180:0\n"
    fake.remove("2-1")
    assert not device.exists()
    assert not os.path.lexists(fake.devices_dir / "2-1:1.0")
    assert not os.path.lexists(fake.root / "class" / "usbmisc" / "lp0")


def kinds(events: list[dict[str, str]]) -> list[tuple[str, str, str]]:
    return [(e["ACTION"], e["SUBSYSTEM"], e.get("DEVTYPE", e["DEVPATH"].rsplit("/", 1)[1]))
            for e in events]


def test_plug_events_in_kernel_order(fake: FakeSysfs, devfs: Path) -> None:
    fake.add_printer()
    events = fake.plug_events("2-1")
    assert kinds(events) == [
        ("add", "usb", "usb_device"), ("add", "usb", "usb_interface"), ("add", "usbmisc", "lp0"),
        ("bind", "usb", "usb_interface"), ("bind", "usb", "usb_device")]
    device = f"{HOST_CONTROLLER}/usb2/2-1"
    assert [e["DEVPATH"] for e in events] == [
        device, f"{device}/2-1:1.0", f"{device}/2-1:1.0/usbmisc/lp0", f"{device}/2-1:1.0", device]
    assert [e.get("DRIVER") for e in events] == [None, None, None, "usblp", "usb"]
    seqnums = [int(e["SEQNUM"]) for e in events]
    assert seqnums == sorted(seqnums) and len(set(seqnums)) == len(seqnums)
    assert events[0] == {
        "ACTION": "add", "DEVPATH": device, "SUBSYSTEM": "usb", "MAJOR": "189", "MINOR": "129",
        "DEVNAME": "bus/usb/002/002", "DEVTYPE": "usb_device", "PRODUCT": "3f0/4117/100",
        "TYPE": "0/0/0", "BUSNUM": "002", "DEVNUM": "002", "SEQNUM": events[0]["SEQNUM"],
        "HOTPLUG_TYPE": "usb", "DEVICENAME": "2-1"}
    assert events[1]["INTERFACE"] == "7/1/2"
    assert events[1]["MODALIAS"] == "usb:v03F0p4117d0100dc00dsc00dp00ic07isc01ip02in00"
    assert events[2] == {
        "ACTION": "add", "DEVPATH": f"{device}/2-1:1.0/usbmisc/lp0", "SUBSYSTEM": "usbmisc",
        "MAJOR": "180", "MINOR": "0", "DEVNAME": "usb/lp0", "SEQNUM": events[2]["SEQNUM"],
        "HOTPLUG_TYPE": "usbmisc", "DEVICENAME": "lp0"}
    # The service's own parser takes every one of them, and each one matters to it.
    parsed = [parse_event(env, devfs) for env in events]
    assert all(event.relevant for event in parsed)
    assert parsed[2].devname == devfs / "usb" / "lp0"


def test_unplug_events_in_kernel_order(fake: FakeSysfs) -> None:
    fake.add_printer()
    plugged = fake.plug_events("2-1")
    fake.remove("2-1")  # the events still describe the printer as it was
    events = fake.unplug_events("2-1")
    assert kinds(events) == [
        ("remove", "usbmisc", "lp0"), ("unbind", "usb", "usb_interface"),
        ("remove", "usb", "usb_interface"), ("unbind", "usb", "usb_device"),
        ("remove", "usb", "usb_device")]
    assert int(events[0]["SEQNUM"]) > int(plugged[-1]["SEQNUM"])
    assert all("DRIVER" not in e for e in events)
    assert events[-1]["PRODUCT"] == "3f0/4117/100"  # the device's remove still says who it was


def test_lp_events_without_replug_and_new_devnum_on_replug(fake: FakeSysfs) -> None:
    fake.add_printer(lp=None)
    assert kinds(fake.plug_events("2-1")) == [
        ("add", "usb", "usb_device"), ("add", "usb", "usb_interface"),
        ("bind", "usb", "usb_device")]
    fake.bind_lp("2-1", "lp1")
    assert kinds(fake.bind_lp_events("2-1")) == [
        ("add", "usbmisc", "lp1"), ("bind", "usb", "usb_interface")]
    assert kinds(fake.unbind_lp_events("2-1")) == [
        ("remove", "usbmisc", "lp1"), ("unbind", "usb", "usb_interface")]
    before = fake.plug_events("2-1")[0]["DEVNUM"]
    fake.add_printer()  # replug at the same port
    assert fake.plug_events("2-1")[0]["DEVNUM"] != before


def test_device_strings_are_cleaned_where_they_are_read(fake: FakeSysfs, devfs: Path) -> None:
    device = fake.add_printer()
    (device / "manufacturer").write_bytes(b"HP\x1b[2J\r\nInc\xff\n")
    (device / "product").write_bytes(b"<b>'Laser'</b>" + b"Z" * 5000 + b"\n")
    (device / "serial").write_bytes(b"\x00CN\x00B1\t\n")
    fake.set_device_id("2-1", "MFG:HP;MDL:\x1b]0;x\x07Jet;\x00CMD:after-the-NUL;")
    (printer,) = scan(fake.root, devfs).printers
    r = "\ufffd"
    assert printer.manufacturer == f"HP{r}[2J{r}{r}Inc{r}"
    assert printer.model == "<b>'Laser'</b>" + "Z" * (126 - 14)
    assert printer.serial == f"CN{r}B1"
    assert printer.identity == f"03f0:4117:CN{r}B1"
    assert printer.device_id == f"MFG:HP;MDL:{r}]0;x{r}Jet;"  # usblp shows it up to the NUL
