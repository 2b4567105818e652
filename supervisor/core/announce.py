"""What to announce over mDNS/DNS-SD: one `_pdl-datastream._tcp` service per ready printer.

Pure: the announcer hands in what it knows of each printer (a Subject) and the responder's host
name, and gets the announcements back: instance names unique on the host, TXT records as CUPS's
dnssd backend reads them (usb_MFG/usb_MDL/usb_CMD make its IEEE-1284 ID, hence the driver).
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from supervisor.core.devices import device_id_fields, replace_controls

SERVICE_TYPE = "_pdl-datastream._tcp"
NAME_MAX_BYTES = 63  # one DNS label
TXT_MAX_BYTES = 255  # one TXT string
PRIORITY = 50  # CUPS's default; a lower value elsewhere would be preferred over this record
#: `rp` (the "remote path"): CUPS resolves a dnssd:// queue of this service type to
#: socket://host:port/ + rp, so queues made from the announcement skip the socket backend's SNMP
#: supply queries, which no raw print server answers (two 2 s timeouts per job with a PPD).
REMOTE_PATH = "?snmp=false"
#: Namespace of the UUIDs announced per printer identity (uuid5 of VID:PID:serial): fixed
#: forever, as CUPS skips a record whose UUID differs from the one in its queue's URI.
UUID_NAMESPACE = bytes.fromhex("5f0c2b3e7a514f0e9d3c2a8e61b0c9d4")


@dataclass(frozen=True)
class Subject:
    """A printer that may be announced: what its configuration and the device tell."""

    printer: str
    port: int
    device_id: str | None = None  # IEEE-1284 ID (sysfs ieee1284_id)
    manufacturer: str | None = None  # USB strings: the fallback when there is no ID
    model: str | None = None
    identity: str | None = None  # VID:PID:serial; only a serial makes it worth a UUID
    serial: str | None = None
    mdns_name: str | None = None
    location: str | None = None


@dataclass(frozen=True)
class Announcement:
    """One service record: instance name, port and TXT strings."""

    printer: str
    name: str
    port: int
    txt: tuple[str, ...]


def model_name(mfg: str | None, mdl: str | None) -> str | None:
    """`ty`: "<MFG> <MDL>", without the maker twice (MDL often starts with it: "HP LaserJet")."""
    if not mdl:
        return mfg or None
    if not mfg:
        return mdl
    first = mdl.split()[0].casefold()
    maker = mfg.casefold()
    if (len(first) > 1 and maker.startswith(first)) or first.startswith(maker.split()[0]) or (
            maker == "hewlett-packard" and first == "hp"):
        return mdl
    return f"{mfg} {mdl}"


def txt_record(subject: Subject) -> tuple[str, ...]:
    """TXT strings in the order printers send them; never an empty string (umdns drops those)."""
    fields = device_id_fields(subject.device_id) if subject.device_id else {}
    mfg = fields.get("MFG") or subject.manufacturer
    mdl = fields.get("MDL") or subject.model
    model = model_name(mfg, mdl)
    pairs: list[tuple[str, str | None]] = [
        ("txtvers", "1"), ("qtotal", "1"), ("rp", REMOTE_PATH),
        ("ty", model), ("product", f"({mdl or model})" if model else None),
        ("usb_MFG", mfg), ("usb_MDL", mdl), ("usb_CMD", fields.get("CMD")),
        ("note", subject.location), ("priority", str(PRIORITY)),
        ("UUID", printer_uuid(subject)),
    ]
    return tuple(_txt(key, value) for key, value in pairs if value)


def printer_uuid(subject: Subject) -> str | None:
    """A UUID that never changes for this printer, or None when nothing identifies it."""
    if not subject.serial or not subject.identity:
        return None
    return uuid5(UUID_NAMESPACE, subject.identity)


def uuid5(namespace: bytes, name: str) -> str:
    """RFC 4122's name-based UUID (SHA-1), as uuid.uuid5 makes it, without uuid (1.5 ms of
    imports at every start) nor hashlib, which loads OpenSSL's libcrypto: +3.7 MB of RSS for
    one SHA-1 (measured); CPython's own _sha1 costs nothing."""
    try:
        from _sha1 import sha1  # type: ignore[import-not-found]  # noqa: PLC0415
    except ImportError:  # a Python built without it
        from hashlib import sha1  # noqa: PLC0415
    raw = bytearray(sha1(namespace + name.encode("utf-8")).digest()[:16])
    raw[6] = (raw[6] & 0x0F) | 0x50  # version 5
    raw[8] = (raw[8] & 0x3F) | 0x80  # the RFC 4122 variant
    text = raw.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def _txt(key: str, value: str) -> str:
    return truncate_utf8(f"{key}={value}", TXT_MAX_BYTES)


def truncate_utf8(text: str, limit: int) -> str:
    """`text` cut to at most `limit` bytes of UTF-8, never inside a character."""
    encoded = text.encode("utf-8")
    if len(encoded) <= limit:
        return text
    return encoded[:limit].decode("utf-8", errors="ignore").rstrip()


def default_name(subject: Subject, host: str, *, qualified: bool = False) -> str:
    """"HP LaserJet 1018 @ router" (CUPS's "info @ host"); qualified by the printer's own name
    when two printers of one model are announced, so each name stays tied to its printer."""
    fields = device_id_fields(subject.device_id) if subject.device_id else {}
    model = model_name(fields.get("MFG") or subject.manufacturer,
                       fields.get("MDL") or subject.model)
    what = model or subject.printer
    if qualified and model:
        what = f"{model} ({subject.printer})"
    # RFC 6763 §4.1.1: no 0x00-0x1F nor 0x7F in an instance name. Device strings are cleaned
    # where they are read; this keeps the rule whatever a Subject holds (before the cut).
    what, host = replace_controls(what), replace_controls(host)
    suffix = f" @ {host}" if host else ""
    room = NAME_MAX_BYTES - len(suffix.encode("utf-8"))
    if room < 8:  # an absurdly long host name: keep the printer's part
        return truncate_utf8(what, NAME_MAX_BYTES)
    return truncate_utf8(what, room) + suffix


def plan(subjects: Iterable[Subject], host: str) -> dict[str, Announcement]:
    """The announcements for these printers, by printer name, names unique on this host."""
    subjects = sorted(subjects, key=lambda s: s.printer)
    names = {s.printer: s.mdns_name or default_name(s, host) for s in subjects}
    counts = Counter(name.casefold() for name in names.values())
    configured = {s.mdns_name.casefold() for s in subjects if s.mdns_name}
    for subject in subjects:
        folded = names[subject.printer].casefold()
        if not subject.mdns_name and (folded in configured or counts[folded] > 1):
            names[subject.printer] = default_name(subject, host, qualified=True)
    _number_duplicates(names)
    return {s.printer: Announcement(s.printer, names[s.printer], s.port, txt_record(s))
            for s in subjects}


def _number_duplicates(names: dict[str, str]) -> None:
    """What still clashes (a printer named like another's model) gets " #2", " #3"…"""
    seen: set[str] = set()
    for printer, name in names.items():
        candidate, n = name, 2
        while candidate.casefold() in seen:
            tail = f" #{n}"
            candidate = truncate_utf8(name, NAME_MAX_BYTES - len(tail)) + tail
            n += 1
        names[printer] = candidate
        seen.add(candidate.casefold())


def loopback_only(bind: Iterable[str]) -> bool:
    """Whether the printers listen on loopback only: nothing to announce to the network."""
    return all(ipaddress.ip_address(address).is_loopback for address in bind)
