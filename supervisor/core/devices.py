"""What a scan of the device tree found: USB printers, their identity and their lp node."""

from __future__ import annotations

import re
import stat
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

#: A USB string descriptor (manufacturer, product, serial) holds at most 126 UTF-16 units
#: (bLength <= 255, 2 of them the header): no real device is cut by this cap.
USB_STRING_MAX_CHARS: Final = 126
#: usblp reads the IEEE-1284 ID into 1024 bytes, its 2-byte length first: no real ID is longer.
DEVICE_ID_MAX_CHARS: Final = 1024
#: What a control character, or a byte that is not UTF-8, becomes: the mark UTF-8 decoding
#: already uses, visible, and never confused with a space the device really sent.
REPLACEMENT: Final = "\ufffd"
_EDGES: Final = string.whitespace + "\x00"  # the kernel's newline, C strings' padding
#: C0, DEL and C1 (Unicode's Cc: RFC 6763 §4.1.1 forbids 0x00-0x1F and 0x7F in instance
#: names; C1 holds the 8-bit CSI of terminals), and the line and paragraph separators, which
#: end lines for str.splitlines and JavaScript as a newline does.
_UNSAFE: Final = {c: REPLACEMENT for c in (*range(0x20), *range(0x7F, 0xA0), 0x2028, 0x2029)}


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
    existing_nodes: frozenset[Path] = frozenset()  # printer nodes: character devices or FIFOs
    refused_nodes: Mapping[Path, str] = field(default_factory=dict)  # there, not nodes: why


#: What a path may be instead of a printer's node, as `node_refusal` names it.
_NOT_NODES: Final[tuple[tuple[Callable[[int], bool], str], ...]] = (
    (stat.S_ISREG, "a regular file"), (stat.S_ISDIR, "a directory"),
    (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"),
)
#: How every refusal ends: what a `device` should be.
NODE_REFUSAL_HINT: Final = "set `device` to the printer's node, such as /dev/usb/lp0"


def node_refusal(path: Path, mode: int) -> str | None:
    """Why `path` (`mode`: its stat after symlinks) may not be opened as a printer, or None.

    A printer is a character device (usblp's lp nodes; a pty in the tests). A FIFO is allowed
    too: the tests and benchmarks print to one, and writing to it harms nothing. Anything else
    (a file, a directory, a disk) would be written to by every job: refused, never opened.
    """
    if stat.S_ISCHR(mode) or stat.S_ISFIFO(mode):
        return None
    kind = next((name for test, name in _NOT_NODES if test(mode)), "an unknown kind of file")
    return f"{path} is {kind}, not a character device: {NODE_REFUSAL_HINT}"


def clean_device_string(raw: bytes, max_chars: int) -> str:
    """A string a device chose (any bytes) as safe text: UTF-8 with invalid bytes replaced,
    blanks and NULs at the edges dropped, control characters replaced, at most `max_chars`.

    "" when nothing is left. Markup and quotes stay: they are text; each output escapes them.
    """
    text = raw.decode("utf-8", errors="replace").strip(_EDGES)
    return replace_controls(text[:max_chars]).rstrip()


def replace_controls(text: str) -> str:
    """`text` with each control character (C0, DEL, C1, line and paragraph separators)
    replaced by U+FFFD, one for one."""
    return text.translate(_UNSAFE)


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
