"""The sysfs scan: which USB printers and lp nodes are there now, the truth to reconcile to."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Final

from supervisor.core.devices import (
    DEVICE_ID_MAX_CHARS,
    USB_STRING_MAX_CHARS,
    Snapshot,
    UsbPrinter,
    clean_device_string,
    node_refusal,
)

PRINTER_CLASS: Final = 0x07
_HEX16: Final = re.compile(r"[0-9a-fA-F]{1,4}")
_HEX8: Final = re.compile(r"[0-9a-fA-F]{1,2}")
_INTERFACE_NAME: Final = re.compile(r"(?P<device>[^:]+):(?P<config>\d+)\.(?P<number>\d+)")
_LP_NAME: Final = re.compile(r"lp(?P<minor>\d+)")


def scan(sysfs: Path, devfs: Path, static_nodes: Iterable[Path] = ()) -> Snapshot:
    """Read `sysfs/bus/usb/devices` once: the printers sorted by port, and which nodes exist.

    Never raises for what sysfs holds: printers come and go while we read, so an entry that
    vanishes or holds garbage is skipped (or just that field is None).
    """
    devices_dir = os.path.join(sysfs, "bus", "usb", "devices")
    names = _listdir(devices_dir)
    interfaces: dict[str, list[tuple[int, int, str]]] = {}
    for name in names:
        if match := _INTERFACE_NAME.fullmatch(name):
            key = (int(match["config"]), int(match["number"]), name)
            interfaces.setdefault(match["device"], []).append(key)
    printers = [
        printer for name in names
        if ":" not in name and name in interfaces
        and (printer := _read_printer(devices_dir, name, sorted(interfaces[name]), devfs))
    ]
    printers.sort(key=lambda printer: printer.port_path)
    existing, refused = inspect_nodes(static_nodes)
    return Snapshot(printers=tuple(printers), existing_nodes=existing, refused_nodes=refused)


def inspect_nodes(nodes: Iterable[Path]) -> tuple[frozenset[Path], dict[Path, str]]:
    """Which of `nodes` are there as printer nodes, and which are there but are not (why).

    Symlinks are followed (udev's by-id links lead to the lp node); a path that is not there,
    or not reachable, is neither: printers get plugged later.
    """
    existing: set[Path] = set()
    refused: dict[Path, str] = {}
    for node in nodes:
        try:
            mode = os.stat(node).st_mode
        except (OSError, ValueError):  # ValueError: a NUL in the path
            continue
        if (why := node_refusal(node, mode)) is not None:
            refused[node] = why
        else:
            existing.add(node)
    return frozenset(existing), refused


def _read_printer(devices_dir: str, name: str, interfaces: list[tuple[int, int, str]],
                  devfs: Path) -> UsbPrinter | None:
    """The device `name` if it has a printer interface and readable IDs, else None."""
    chosen = _printer_interface(devices_dir, [iface for _, _, iface in interfaces])
    if chosen is None:
        return None  # not a printer (cheap: only the interfaces' class was read)
    interface_dir, lp = chosen
    device_dir = os.path.join(devices_dir, name)
    vendor_id = _read_hex(device_dir, "idVendor", _HEX16)
    product_id = _read_hex(device_dir, "idProduct", _HEX16)
    bcd_device = _read_hex(device_dir, "bcdDevice", _HEX16)
    if vendor_id is None or product_id is None or bcd_device is None:
        return None
    printer = UsbPrinter(
        port_path=name, vendor_id=vendor_id, product_id=product_id, bcd_device=bcd_device,
        serial=_read_device_string(device_dir, "serial"),
        manufacturer=_read_device_string(device_dir, "manufacturer"),
        model=_read_device_string(device_dir, "product"),
        protocol=_read_hex(interface_dir, "bInterfaceProtocol", _HEX8),
        node=devfs / "usb" / lp if lp else None,
        device_id=_read_device_id(interface_dir),
        devnum=_read_decimal(device_dir, "devnum"),
    )
    # Unplugged while we read it? Its files were then missing, not broken: drop the half-read
    # printer (a lost serial would give it another identity); the next rescan settles it.
    return printer if os.path.isdir(device_dir) else None


def _printer_interface(devices_dir: str, names: list[str]) -> tuple[str, str | None] | None:
    """The first printer-class interface bound to usblp, else the first one; its lpN if bound.

    usblp binds protocols 1-3 only: a device whose first class-7 interface is IPP-over-USB
    (protocol 4) has its lp node on a later interface.
    """
    first: tuple[str, str | None] | None = None
    for name in names:
        interface_dir = os.path.join(devices_dir, name)
        if _read_hex(interface_dir, "bInterfaceClass", _HEX8) != PRINTER_CLASS:
            continue
        lp = _lp_name(interface_dir)
        if lp is not None:
            return interface_dir, lp
        first = first or (interface_dir, None)
    return first


def _lp_name(interface_dir: str) -> str | None:
    """`lpN` when usblp is bound to this interface (its usbmisc/lpN class device), else None."""
    found = [(int(m["minor"]), name) for name in _listdir(os.path.join(interface_dir, "usbmisc"))
             if (m := _LP_NAME.fullmatch(name))]
    return min(found)[1] if found else None


def _read_device_id(interface_dir: str) -> str | None:
    """usblp's cached IEEE-1284 device ID, cleaned; None when absent (usblp not bound) or empty.

    Cut at a NUL as usblp shows it (a C string), as the ioctl's reply is read.
    """
    raw = _read_bytes(os.path.join(interface_dir, "ieee1284_id"))
    if raw is None:
        return None
    return clean_device_string(raw.split(b"\0", 1)[0], DEVICE_ID_MAX_CHARS) or None


def _read_hex(directory: str, attribute: str, pattern: re.Pattern[str]) -> int | None:
    text = _read_text(os.path.join(directory, attribute))
    if text is None or not pattern.fullmatch(text.strip()):
        return None
    return int(text, 16)


def _read_decimal(directory: str, attribute: str) -> int | None:
    text = _read_text(os.path.join(directory, attribute))
    text = text.strip() if text is not None else None
    return int(text) if text and text.isascii() and text.isdigit() else None


def _read_device_string(directory: str, attribute: str) -> str | None:
    """A string descriptor the device chose (any bytes), cleaned; None when absent or empty."""
    raw = _read_bytes(os.path.join(directory, attribute))
    if raw is None:
        return None
    return clean_device_string(raw, USB_STRING_MAX_CHARS) or None


def _read_text(path: str) -> str | None:
    """A sysfs attribute's text, or None if it is missing, unreadable or vanished meanwhile."""
    raw = _read_bytes(path)
    return raw.decode("utf-8", errors="replace") if raw is not None else None


def _read_bytes(path: str) -> bytes | None:
    try:
        with open(path, "rb") as file:
            return file.read()
    except OSError:
        return None


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []
