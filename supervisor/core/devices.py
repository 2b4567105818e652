"""What a scan of the device tree found: USB printers, their identity and their lp node."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class UsbPrinter:
    """One USB device with a printer-class (7) interface, as sysfs describes it now."""

    port_path: str  # the physical port, e.g. "2-1.3": stable while the cable stays put
    vendor_id: int
    product_id: int
    bcd_device: int
    serial: str | None = None
    manufacturer: str | None = None
    model: str | None = None  # the USB product string, e.g. "HP LaserJet 1018"
    protocol: int | None = None  # bInterfaceProtocol: 1 uni-, 2 bidirectional, 3 IEEE 1284.4
    node: Path | None = None  # devfs path of its lp node, None while usblp is not bound
    device_id: str | None = None  # usblp's cached IEEE-1284 ID (sysfs ieee1284_id)
    devnum: int | None = None  # new on every enumeration: a power cycle changes it

    @property
    def product(self) -> str:
        """PRODUCT as the kernel writes it: vid/pid/bcdDevice, lowercase hex, no leading zeros."""
        return f"{self.vendor_id:x}/{self.product_id:x}/{self.bcd_device:x}"

    @property
    def identity(self) -> str:
        """Who this printer is across replugs: VID, PID and serial, else the physical port."""
        base = f"{self.vendor_id:04x}:{self.product_id:04x}"
        return f"{base}:{self.serial}" if self.serial else f"{base}@{self.port_path}"

    @property
    def slug(self) -> str:
        """A printer name for `auto` entries: the model in [a-z0-9-], else usb-VID-PID."""
        words = re.sub(r"[^a-z0-9]+", "-", (self.model or "").lower()).strip("-")
        return words[:40].strip("-") or f"usb-{self.vendor_id:x}-{self.product_id:x}"


@dataclass(frozen=True)
class Snapshot:
    """The device tree at one moment: USB printers, and which configured nodes exist."""

    printers: tuple[UsbPrinter, ...] = ()
    existing_nodes: frozenset[Path] = frozenset()


def device_id_fields(device_id: str) -> dict[str, str]:
    """`MFG:HP;MDL:LaserJet 1018;FWVER:20051028;` as a dict with long keys shortened (MFG, MDL)."""
    aliases = {"MANUFACTURER": "MFG", "MODEL": "MDL", "COMMAND SET": "CMD"}
    fields: dict[str, str] = {}
    for part in device_id.split(";"):
        key, sep, value = part.partition(":")
        if sep:
            key = key.strip().upper()
            fields[aliases.get(key, key)] = value.strip()
    return fields
