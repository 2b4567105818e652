"""Strings a USB device chooses (IEEE-1284 ID, manufacturer, product, serial) are any bytes:
cleaned where they enter, so status, the table, logs and mDNS names get plain text."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from harness import ServiceThread, Ubus, wait_until

from supervisor.core.devices import (
    DEVICE_ID_MAX_CHARS,
    USB_STRING_MAX_CHARS,
    clean_device_string,
)
from supervisor.lab.virtual import VirtualUsbPrinter

R = "\ufffd"  # what a control character or a byte that is not UTF-8 becomes


def is_control(char: str) -> bool:
    """C0, DEL and C1: what RFC 6763 §4.1.1 forbids in instance names, and more."""
    return ord(char) < 0x20 or 0x7F <= ord(char) < 0xA0


@pytest.mark.parametrize(("raw", "max_chars", "expected"), [
    (b"HP LaserJet 1018\n", 126, "HP LaserJet 1018"),  # the kernel's newline
    (b"\x00\x00CNB1234567\x00 \n", 126, "CNB1234567"),  # padding at the edges: dropped
    (b"AB\x00CD", 126, f"AB{R}CD"),  # NUL inside
    (b"\x1b[2JEvil", 126, f"{R}[2JEvil"),  # ANSI: clear the screen
    (b"\x1b]0;owned\x07title", 126, f"{R}]0;owned{R}title"),  # OSC: set the window title
    (b"two\nlines\r\nhere", 126, f"two{R}lines{R}{R}here"),
    (b"a\tb", 126, f"a{R}b"),
    (b"del\x7f", 126, f"del{R}"),
    (b"c1\xc2\x85x\xc2\x9bx", 126, f"c1{R}x{R}x"),  # NEL and CSI, as UTF-8
    ("line\u2028para\u2029end".encode(), 126, f"line{R}para{R}end"),  # they end lines too
    (b"caf\xe9 \xff\xfe\xc3", 126, f"caf{R} {R}{R}{R}"),  # not UTF-8 (Latin-1, junk, cut)
    ("Café ✓ 漢字 é".encode(), 126, "Café ✓ 漢字 é"),  # real text stays
    (b'<b>"HP" & \'Co\'</b>; MDL:x', 126, '<b>"HP" & \'Co\'</b>; MDL:x'),  # markup is text
    (b"A" * 5000, USB_STRING_MAX_CHARS, "A" * USB_STRING_MAX_CHARS),
    (b"MFG:HP;" + b"Q" * 5000, DEVICE_ID_MAX_CHARS, "MFG:HP;" + "Q" * (DEVICE_ID_MAX_CHARS - 7)),
    (b"ab" + b" " * 200 + b"c", 10, "ab"),  # cut: no trailing blanks left behind
    (b" \n\x00 ", 126, ""),
    (b"", 126, ""),
])
def test_clean_device_string(raw: bytes, max_chars: int, expected: str) -> None:
    assert clean_device_string(raw, max_chars) == expected


def test_caps_fit_every_real_device() -> None:
    # A USB string descriptor holds at most 126 UTF-16 units (bLength <= 255, 2 for the header);
    # usblp's device-ID buffer is 1024 bytes with the 2-byte length first.
    assert USB_STRING_MAX_CHARS == (255 - 2) // 2
    assert DEVICE_ID_MAX_CHARS >= 1024 - 2


# -- through the service ----------------------------------------------------------------------
HOSTILE_ID = (b"MFG:Evil\x1b[2J\nCorp;MDL:<b>\"Laser\"</b>\tJet\x1b]0;owned\x07\xff;CMD:PCL;"
              b"DES:" + b"Q" * 5000 + b";\n")
HOSTILE_MANUFACTURER = b"Evil\x1b[2J\r\nCorp\x00\xc2\x9b31m\n"
HOSTILE_PRODUCT = b"<script>'x'</script>\x1b[31mRED\x7f\xfe" + b"Z" * 5000 + b"\n"


def hostile_serial(n: int) -> bytes:
    return b"SN\x00\x1b[2J\n" + str(n).encode() + b"\xff\n"


def plug_hostile(make_usb: Callable[..., VirtualUsbPrinter], n: int) -> VirtualUsbPrinter:
    """A printer whose sysfs strings are the bytes above, written as the kernel would show them."""
    usb = make_usb(port_path=f"2-{n}", lp=f"lp{n}", serial=f"PLACEHOLDER{n}")
    usb.plug()
    device_dir = usb.sysfs.device_dir(usb.port_path)
    (device_dir / "manufacturer").write_bytes(HOSTILE_MANUFACTURER)
    (device_dir / "product").write_bytes(HOSTILE_PRODUCT)
    (device_dir / "serial").write_bytes(hostile_serial(n))
    (ieee1284_id,) = device_dir.glob("*/ieee1284_id")
    ieee1284_id.write_bytes(HOSTILE_ID)
    return usb


def strings_in(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from strings_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings_in(item)


def test_hostile_device_strings_reach_status_and_mdns_clean(
        tmp_path: Path, start_service: Callable[..., ServiceThread], ubus: Ubus,
        umdns_dir: Path, make_usb: Callable[..., VirtualUsbPrinter]) -> None:
    for n in (1, 2):
        plug_hostile(make_usb, n)
    # Listening on 0.0.0.0, as loopback is never announced; jobs only from this host.
    printers = [{"name": name, "match": "3f0/4117/*", "firmware": "none",
                 "allow": ["127.0.0.0/8"]} for name in ("one", "two")]
    service = start_service(printers, mdns="umdns", bind=["0.0.0.0"], umdns_dir=umdns_dir,
                            auto=False)
    wait_until(lambda: len(service.log.events("mdns_announced")) == 2, what="2 announcements")
    sock = str(tmp_path / "control.sock")

    status = subprocess.run([sys.executable, "-m", "supervisor", "--socket", sock, "status",
                             "--json"], capture_output=True, timeout=30, check=True)
    document = json.loads(status.stdout)
    printers = document["printers"]
    assert len(printers) == 2 and all(p["state"] == "ready" for p in printers)
    for text in strings_in(document):
        assert not any(is_control(c) for c in text), text
    serials = sorted(p["serial"] for p in printers)
    assert serials == [f"SN{R}{R}[2J{R}1{R}", f"SN{R}{R}[2J{R}2{R}"]
    assert all(p["mdns"] and len(p["mdns"].encode()) <= 63 for p in printers)

    table = subprocess.run([sys.executable, "-m", "supervisor", "--socket", sock, "status"],
                           capture_output=True, timeout=30, check=True)
    assert b"\x1b" not in table.stdout
    lines = table.stdout.decode().splitlines()
    assert len(lines) == 1 + 2, lines  # the header and one line per printer
    assert sorted(line.split()[0] for line in lines[1:]) == ["one", "two"]

    # What umdns is handed: the instance names (and TXT strings) without control characters.
    announced = json.loads((umdns_dir / "printer-supervisor.json").read_text())
    instances = [entry["instance"] for entry in announced.values()]
    assert sorted(instances) == sorted(p["mdns"] for p in printers)
    for entry in announced.values():
        for text in [entry["instance"], *entry["txt"]]:
            assert not any(is_control(c) for c in text), text
    for line in (tmp_path / "events.jsonl").read_text().splitlines():
        json.loads(line)  # one object per line: nothing split a line
