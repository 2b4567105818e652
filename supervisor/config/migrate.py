"""p910nd migration: OpenWrt's UCI file /etc/config/p910nd turned into `[[printer]]` TOML.

Pure: text in, text and notes out. `parse_uci` reads UCI as libuci does (openwrt/uci file.c);
`to_toml` maps each `config p910nd` section the way OpenWrt's init script
(packages net/p910nd/files/p910nd.init) turned it into a p910nd command line, so the service
does what p910nd did. What cannot be carried over becomes a note naming the section and option.

The package's usbmisc hotplug script (net/p910nd/files/p910nd.hotplug, since 23.05) also writes
options of its own: `usbvidpid` (the printer's idVendor/idProduct, becomes `match`),
`driver_file` and `config hotplug`'s `driver_home` (a blob it cats into the node at every plug,
becomes `firmware` when the catalog says the printer needs one), and an `mdns_note` that is no
place. The input is always a router's file, so the output carries OpenWrt's daemon paths (the
package's /etc/config/printer-supervisor): above all the remembered ports on flash.
"""

from __future__ import annotations

import ipaddress
import posixpath
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from supervisor.config.checks import check_firmware, check_location, check_mdns_name
from supervisor.config.uci import UciError, UciSection, parse_uci, quote, uci_bool, valid_name
from supervisor.core.catalog import FirmwareEntry, load_catalog

__all__ = ["Migration", "UciError", "UciSection", "driver_files", "parse_uci", "to_toml",
           "to_uci"]

DEFAULT_UCI_PATH: Final = "/etc/config/p910nd"
PACKAGE: Final = "p910nd"
BASE_PORT: Final = 9100
_NAME_RE: Final = re.compile(r"[a-z0-9_-]+")
#: The hotplug script's section: `config hotplug` with `driver_home`, its blobs' directory.
HOTPLUG: Final = "hotplug"
DRIVER_HOME_DEFAULT: Final = "/opt/p910nd_drivers"
#: Its usbvidpid: idVendor/idProduct as sysfs prints them ('03f0/2c17').
_VIDPID_RE: Final = re.compile(r"([0-9a-fA-F]{1,4})/([0-9a-fA-F]{1,4})")
#: mdns_note values the hotplug script wrote itself: a serial number (its releases before
#: 2024-02-11), then a placeholder. Neither says where the printer is.
_AUTO_NOTE_RE: Final = re.compile(r"SN:.* Auto-configured by p910nd hotplug|Located near router")
#: The IEEE-1284 fields the hotplug script copies into mdns_* options and the init script
#: announces (usb_MFG=, usb_MDL=, ...): the service announces what the printer reports.
_MDNS_ID_KEYS: Final = ("mdns_product", "mdns_mfg", "mdns_mdl", "mdns_cmd", "mdns_cid",
                        "mdns_cls", "mdns_cmt", "mdns_des", "mdns_drv", "mdns_sn", "mdns_ver")
_CARRIED: Final = frozenset({"device", "port", "bidirectional", "bind", "enabled", "mdns",
                             "mdns_ty", "mdns_note", "usbvidpid", "driver_file",
                             *_MDNS_ID_KEYS})
#: The [daemon] settings of the OpenWrt package's /etc/config/printer-supervisor
#: (units/openwrt/printer-supervisor.config; a test keeps them equal): without them the
#: service would take the Debian defaults, and /var/lib, on OpenWrt, is RAM.
OPENWRT_DAEMON: Final[tuple[tuple[str, str | int | tuple[str, ...]], ...]] = (
    ("control_socket", "/var/run/printer-supervisor/control.sock"),
    ("log_file", "/var/log/printer-supervisor/events.jsonl"),
    ("log_max_bytes", 262144),
    ("state_dir", "/etc/printer-supervisor/state"),
    ("event_source", "none"),
    ("firmware_dirs", ("/etc/printer-supervisor/firmware", "/lib/firmware/hp",
                       "/usr/share/foo2zjs/firmware")),
)
#: The firmware directory the OpenWrt package owns and keeps across a sysupgrade.
OPENWRT_FIRMWARE_DIR: Final = "/etc/printer-supervisor/firmware"


@dataclass(frozen=True)
class Migration:
    """The configuration to use (TOML or UCI), and what could not be carried over (each note
    names its section)."""

    text: str
    notes: list[str]


# ---------------------------------------------------------------------------------------------
# Mapping


@dataclass
class _Draft:
    """One p910nd section on its way to a `[[printer]]` entry."""

    section: UciSection
    name: str = ""
    match: str | None = None  # from the hotplug script's usbvidpid
    device: str | None = None
    port: int | None = None
    bidirectional: bool = False
    enabled: bool = True
    bind: str | None = None
    mdns: bool | None = None  # None: the service's default (announced while ready)
    mdns_name: str | None = None
    location: str | None = None
    firmware: str | None = None  # from the hotplug script's driver_file; None: auto
    blocked: str | None = None  # why the entry must stay commented out, besides enabled '0'
    comments: dict[str, str] = field(default_factory=dict)  # key → trailing TOML comment
    notes: list[str] = field(default_factory=list)

    @property
    def active(self) -> bool:
        return self.enabled and self.blocked is None

    def note(self, message: str) -> None:
        self.notes.append(f"{self.section.ref} (line {self.section.line}): {message}")


@dataclass(frozen=True)
class _Context:
    """What every section's conversion needs to know besides itself."""

    driver_home: str  # the hotplug script's directory of blobs
    catalog: tuple[FirmwareEntry, ...]
    present: Collection[str] | None  # the driver files found; None: not looked for


def to_toml(sections: Sequence[UciSection], *, source: str = DEFAULT_UCI_PATH,
            present: Collection[str] | None = None,
            catalog: Sequence[FirmwareEntry] | None = None) -> Migration:
    """`[[printer]]` entries for the p910nd sections, and a note for all that was left behind.

    `present`: which of `driver_files(sections)` are files on the router (None: not looked
    for, each taken as there); `catalog`: which printers need firmware (default: the shipped
    catalog)."""
    return _convert(sections, source, "toml", _context(sections, present, catalog))


def to_uci(sections: Sequence[UciSection], *, source: str = DEFAULT_UCI_PATH,
           present: Collection[str] | None = None,
           catalog: Sequence[FirmwareEntry] | None = None) -> Migration:
    """The same as /etc/config/printer-supervisor: `config printer` sections."""
    return _convert(sections, source, "uci", _context(sections, present, catalog))


def driver_files(sections: Sequence[UciSection]) -> list[str]:
    """The blobs p910nd's hotplug script would push, one per section that has one: the paths
    the caller looks for before converting (the result's `present`)."""
    home = _driver_home(sections)
    found = []
    for section in sections:
        if section.type == PACKAGE:
            values = _single(section)
            blob = _blob(values, _vidpid(values.get("usbvidpid")), home)
            if blob is not None:
                found.append(blob[0])
    return found


def _context(sections: Sequence[UciSection], present: Collection[str] | None,
             catalog: Sequence[FirmwareEntry] | None) -> _Context:
    return _Context(_driver_home(sections),
                    tuple(load_catalog() if catalog is None else catalog), present)


def _driver_home(sections: Sequence[UciSection]) -> str:
    """driver_home of the last `config hotplug` (the script reads @hotplug[-1]), without the
    trailing slash it trims; its default when unset."""
    homes = [_single(s).get("driver_home") for s in sections if s.type == HOTPLUG]
    home = homes[-1] if homes and homes[-1] else DRIVER_HOME_DEFAULT
    return home.removesuffix("/") if home != "/" else home


def _single(section: UciSection) -> dict[str, str]:
    return {k: v for k, v in section.options.items() if isinstance(v, str)}


def _convert(sections: Sequence[UciSection], source: str, form: str,
             context: _Context) -> Migration:
    drafts = [_draft(s, context) for s in sections if s.type == PACKAGE]
    _name(drafts)
    _settle_devices(drafts)
    _settle_ports(drafts)
    bind = _daemon_bind(drafts)
    lines = _header(source, drafts) + _daemon_table(bind, drafts, form)
    notes: list[str] = []
    by_section = {id(d.section): d for d in drafts}
    for section in sections:
        draft = by_section.get(id(section))
        if draft is None and section.type == HOTPLUG:
            notes += _hotplug_notes(section)
            continue
        if draft is None:
            notes.append(f"{section.ref} (line {section.line}): section type "
                         f"{section.type!r} ignored: p910nd reads only `config p910nd` sections")
            continue
        lines += ["", *_entry(draft, form)]
        notes += draft.notes
    return Migration("\n".join(lines) + "\n", notes)


def _hotplug_notes(section: UciSection) -> list[str]:
    """The hotplug script's own section: its driver_home is read (see _firmware)."""
    others = [k for k in section.options if k != "driver_home"]
    if not others:
        return []
    shown = ", ".join(f"{k} {_shown(' '.join(v) if isinstance(v, tuple) else v)}"
                      for k, v in section.options.items() if k in others)
    return [f"{section.ref} (line {section.line}): {shown} not carried over: p910nd's hotplug "
            "script reads only driver_home from its `config hotplug` section"]


def _draft(section: UciSection, context: _Context) -> _Draft:
    draft = _Draft(section)
    values: dict[str, str] = {}
    for key, value in section.options.items():
        if isinstance(value, tuple):
            draft.note(f"list {key} {_shown(' '.join(value))} not carried over: p910nd's init "
                       "script reads single options, not lists")
        else:
            values[key] = value
    _enabled(draft, values.get("enabled"))
    digit = _port(draft, values.get("port"))
    vidpid = _usbvidpid(draft, values.get("usbvidpid"))
    if vidpid is None:
        _device(draft, values.get("device"), digit)
    else:
        _match(draft, vidpid, values)
    _firmware(draft, values, vidpid, context)
    _bidirectional(draft, values.get("bidirectional"), hotplug="usbvidpid" in values)
    draft.bind = values.get("bind")
    _mdns(draft, values)
    _leftovers(draft, {k: v for k, v in values.items() if k not in _CARRIED})
    draft.name = (_sanitised(section.name) if section.name else None) or (
        f"p910nd-{digit}" if digit is not None else "p910nd")
    return draft


def _enabled(draft: _Draft, value: str | None) -> None:
    parsed = uci_bool(value) if value is not None else None
    if parsed is False:
        draft.enabled = False
        draft.note(f"enabled {_shown(value or '')}: the entry is written commented out, with "
                   "its settings, so that it is not served but is there to uncomment")
        return
    if parsed is None:
        said = "not set" if value is None else f"{_shown(value)} is not a boolean"
        draft.note(f"enabled {said}: carried over as enabled. OpenWrt's current init script "
                   "treats that as disabled, older ones as enabled; comment the entry out if "
                   "p910nd did not serve it")


def _port(draft: _Draft, value: str | None) -> str | None:
    """The port digit p910nd used (None when invalid); sets draft.port."""
    if value is None:
        draft.port = BASE_PORT
        draft.comments["port"] = "p910nd's default (no port option: digit 0)"
        return "0"
    if len(value) == 1 and value in "0123456789":
        draft.port = BASE_PORT + int(value)
        return value
    draft.note(f"port {_shown(value)} not carried over: p910nd takes one digit 0-9, meaning "
               f"TCP {BASE_PORT}+digit; the entry has no port, so the service picks the next "
               "free one from base_port (set port = 91xx to keep a fixed one)")
    return None


def _device(draft: _Draft, value: str | None, digit: str | None) -> None:
    if value is None:
        draft.device = f"/dev/lp{digit or '0'}"
        draft.comments["device"] = "p910nd's built-in default (no device option)"
    elif value.startswith("/"):
        draft.device = value
    else:
        draft.device = value
        draft.blocked = "device is not an absolute path"
        draft.note(f"device {_shown(value)} not carried over: it must be an absolute path such "
                   "as /dev/usb/lp0; the entry is written commented out: fix device, then "
                   "uncomment it")


def _vidpid(value: str | None) -> tuple[str, str] | None:
    """usbvidpid's idVendor and idProduct as written ('03f0', '2c17'); None if not such."""
    found = _VIDPID_RE.fullmatch(value) if value is not None else None
    return (found[1], found[2]) if found else None


def _usbvidpid(draft: _Draft, value: str | None) -> tuple[str, str] | None:
    vidpid = _vidpid(value)
    if value is not None and vidpid is None:
        draft.note(f"usbvidpid {_shown(value)} not carried over: p910nd's hotplug script "
                   "writes idVendor/idProduct in hex, such as '03f0/2c17'; the entry keeps "
                   "the device instead")
    return vidpid


def _match(draft: _Draft, vidpid: tuple[str, str], values: Mapping[str, str]) -> None:
    """The printer by identity: a PRODUCT glob instead of the lp node."""
    vid, pid = (f"{int(part, 16):x}" for part in vidpid)
    draft.match = f"{vid}/{pid}/*"
    device = values.get("device")
    left = (f"; device {_shown(device)} is left out: lp numbers follow the order printers "
            "are plugged in") if device is not None else ""
    draft.note(f"usbvidpid {_shown(values['usbvidpid'])} carried over as match "
               f"'{draft.match}': the service finds the printer by its USB vendor and "
               f"product, whatever lp node it gets{left}")


def _blob(values: Mapping[str, str], vidpid: tuple[str, str] | None,
          driver_home: str) -> tuple[str, bool] | None:
    """The file the hotplug script cats into the node, and whether driver_file names it (else
    it is the name the script gives it: <driver_home>/<MFG>_<MDL>_<vid>_<pid>.bin, spaces
    as _)."""
    if values.get("driver_file"):
        return values["driver_file"], True
    mfg, mdl = values.get("mdns_mfg"), values.get("mdns_mdl")
    if vidpid is None or not mfg or not mdl:
        return None
    name = f"{mfg}_{mdl}_{vidpid[0]}_{vidpid[1]}.bin".replace(" ", "_")
    return f"{driver_home.removesuffix('/')}/{name}", False


def _firmware(draft: _Draft, values: Mapping[str, str], vidpid: tuple[str, str] | None,
              context: _Context) -> None:
    """The hotplug script's blob becomes the printer's firmware only if the catalog says the
    printer needs firmware (it pushed it to any printer, needed or not)."""
    blob = _blob(values, vidpid, context.driver_home)
    if blob is None:
        return
    path, named = blob
    said = f"driver_file {_shown(path)}" if named else f"the hotplug script's driver file {path}"
    there = context.present is None or path in context.present
    if vidpid is None:
        draft.note(f"{said} not carried over: p910nd's hotplug script pushes it only to a "
                   "printer whose usbvidpid it matches, and this section has none")
        return
    product = (draft.match or "").removesuffix("/*")
    entry = _catalog_entry(product, context.catalog)
    if entry is None:
        if named:
            model = f" ({values['mdns_mdl']})" if values.get("mdns_mdl") else ""
            draft.note(f"{said} not carried over: the printer does not need it: the firmware "
                       f"catalog lists no firmware for {product}{model}, only printers "
                       "that lose their firmware at every power-off (such as the LaserJet "
                       "1018 and 1020), so the service pushes nothing to it; p910nd's hotplug "
                       "script wrote a driver_file for every printer it saw, and pushed it "
                       "at every plug if the file was there")
        return
    needs = (f"{entry.model} ({product}) needs firmware after every power-on (the "
             f"catalog's file: {entry.file})")
    if not path.startswith("/") or check_firmware(path) is not None:
        draft.note(f"{said} not carried over: not an absolute path; the entry keeps firmware "
                   f"auto: {needs}")
        return
    if not there:
        if named:
            draft.note(f"{said} is not there, so p910nd pushed nothing: the entry keeps "
                       f"firmware auto: {needs}; copy {entry.file} to {OPENWRT_FIRMWARE_DIR}/ "
                       "(`supervisorctl firmware` lists where the service looks)")
        return
    draft.firmware = path
    draft.comments["firmware"] = "the blob p910nd's hotplug script pushed, where it lies"
    where = posixpath.dirname(path) or "/"
    draft.note(f"{said} carried over as firmware: {needs}; the service uses the file where it "
               "lies, and pushes it only when the printer does not report firmware running, "
               f"never during a job. {where} survives a sysupgrade only while "
               f"/etc/sysupgrade.conf lists it (p910nd's hotplug script added "
               f"{DRIVER_HOME_DEFAULT} there); or move the file to {OPENWRT_FIRMWARE_DIR}/, "
               "which the package keeps, and set firmware to its name")


def _catalog_entry(product: str, catalog: Sequence[FirmwareEntry]) -> FirmwareEntry | None:
    """The catalog's entry for a vendor/product ("3f0/2b17"; its entries hold for any
    bcdDevice)."""
    wanted = product.split("/")[:2]
    return next((e for e in catalog if e.product.split("/")[:2] == wanted), None)


def _bidirectional(draft: _Draft, value: str | None, *, hotplug: bool) -> None:
    parsed = uci_bool(value) if value is not None else False
    if parsed is None:
        draft.note(f"bidirectional {_shown(value or '')} is not a boolean: p910nd ran without "
                   "-b, so the entry says bidirectional = false")
        parsed = False
    elif value is None:
        draft.comments["bidirectional"] = "p910nd's default (no -b)"
    elif hotplug:
        # Written from bInterfaceProtocol (1: 0; 2, 3: 1); releases before 2024-03-31
        # overwrote the user's value at every plug (openwrt/packages#23774).
        draft.note(f"bidirectional {_shown(value)} carried over: p910nd ran "
                   f"{'with' if parsed else 'without'} -b. Its hotplug script sets this option "
                   "from the printer's USB interface protocol when it is unset (its first "
                   "releases overwrote it at every plug), so it may not be the value you chose; "
                   "the service never rewrites it: change it here if it is not what you want")
    draft.bidirectional = parsed


def _mdns(draft: _Draft, values: Mapping[str, str]) -> None:
    """p910nd's mDNS options: on or off, its instance name (ty) and note carry over."""
    if "mdns" in values:
        draft.mdns = uci_bool(values["mdns"])
        if draft.mdns is None:
            draft.note(f"mdns {_shown(values['mdns'])} is not a boolean: p910nd did not "
                       "advertise the printer, so the entry says mdns = false")
            draft.mdns = False
        draft.comments["mdns"] = "from p910nd's mdns option"
    if not draft.mdns and "mdns" in values:
        return
    ty, note = values.get("mdns_ty"), values.get("mdns_note")
    if ty is not None:
        problem = check_mdns_name(ty)
        if problem is None:
            draft.mdns_name = ty
            draft.comments["mdns_name"] = ("p910nd's mdns_ty: the name CUPS queues made from "
                                           "its announcement use")
        else:
            draft.note(f"mdns_ty {_shown(ty)} not carried over: {problem}; the service "
                       "announces the printer as \"<model> @ <host>\"")
    if note is not None and _AUTO_NOTE_RE.fullmatch(note):
        draft.note(f"mdns_note {_shown(note)} not carried over as location: p910nd's hotplug "
                   "script wrote that text by itself, not where the printer is; set location "
                   "(or [daemon] location) to say where it is")
    elif note is not None:
        problem = check_location(note)
        if problem is None:
            draft.location = note
        else:
            draft.note(f"mdns_note {_shown(note)} not carried over: {problem}")
    read = [k for k in _MDNS_ID_KEYS if k in values]
    if read:
        draft.note(f"{', '.join(f'{k} {_shown(values[k])}' for k in read)} not carried over: "
                   "the service announces the make, model and command set the printer "
                   "itself reports (its IEEE-1284 ID), which is what CUPS picks drivers by")


def _leftovers(draft: _Draft, values: Mapping[str, str]) -> None:
    def shown(keys: Sequence[str]) -> str:
        return ", ".join(f"{k} {_shown(values[k])}" for k in keys)

    if "runas_root" in values:
        draft.note(f"{shown(['runas_root'])} not carried over: the service runs as one user "
                   "for all printers, chosen by its systemd unit or procd init script; that "
                   "user needs write access to the printer nodes (group lp)")
    unknown = [k for k in values if k != "runas_root"]
    if unknown:
        draft.note(f"{shown(unknown)} not carried over: not an option p910nd's init script "
                   "reads, so p910nd ignored it too")


def _sanitised(name: str) -> str | None:
    lowered = name.lower()
    if _NAME_RE.fullmatch(lowered):
        return lowered
    cleaned = re.sub(r"[^a-z0-9_-]+", "-", lowered).strip("-")
    return cleaned or None


def _name(drafts: Sequence[_Draft]) -> None:
    """Unique names, in file order (disabled entries too: they may be uncommented)."""
    taken: set[str] = set()
    for draft in drafts:
        base, n = draft.name, 2
        while draft.name in taken:
            draft.name, n = f"{base}-{n}", n + 1
        taken.add(draft.name)


def _settle_ports(drafts: Sequence[_Draft]) -> None:
    """One port per printer: active entries first, in file order, then disabled ones."""
    owner: dict[int, str] = {}
    for draft in sorted(drafts, key=lambda d: not d.active):
        if draft.port is None:
            continue
        if draft.port in owner:
            what = ("the entry has no port, so the service picks the next free one"
                    if draft.active else "the commented-out entry has no port, so that it "
                    "loads when uncommented")
            draft.note(f"port {draft.port} not carried over: it is also the port of "
                       f"{owner[draft.port]!r}; {what}")
            draft.port = None
            draft.comments.pop("port", None)
            continue
        owner[draft.port] = draft.name


def _settle_devices(drafts: Sequence[_Draft]) -> None:
    """The service serves a node once: a second served entry for a node is commented out."""
    owner: dict[str, str] = {}
    for draft in sorted(drafts, key=lambda d: not d.active):
        if draft.device is None or draft.blocked is not None:
            continue
        if draft.device not in owner:
            owner[draft.device] = draft.name
        elif draft.active:
            draft.note(f"device {draft.device} is also the device of {owner[draft.device]!r}: "
                       "the service serves each node once (one printer, one port), so this "
                       "entry is written commented out")
            draft.blocked = f"its device is also the device of {owner[draft.device]!r}"
        else:
            draft.note(f"device {draft.device} is also the device of {owner[draft.device]!r}: "
                       "the service serves each node once, so uncomment this entry only in "
                       "place of that one")


def _daemon_bind(drafts: Sequence[_Draft]) -> str | None:
    """The address every served section bound to, if they agree; notes for every bind."""
    active = [d for d in drafts if d.active]
    wanted = {d.bind for d in active}
    agreed = next(iter(wanted)) if len(wanted) == 1 else None
    if agreed is not None and not _is_address(agreed):
        agreed = None
    for draft in drafts:
        if draft.bind is None:
            continue
        if not _is_address(draft.bind):
            why = "[daemon] bind takes IP addresses, such as 192.168.1.1 or ::"
        elif not draft.active:
            why = ("the entry is commented out, and bind is global in the service "
                   "([daemon] bind, every printer listens on the same addresses)")
        elif draft.bind == agreed:
            draft.note(f"bind {_shown(draft.bind)} carried over as [daemon] bind = "
                       f"[\"{draft.bind}\"]: the service's bind is global (every printer "
                       "listens on the same addresses), and every served section agreed")
            continue
        else:
            said = ", ".join(sorted(f"{d.name}: {d.bind or '0.0.0.0 (no bind)'}" for d in active))
            why = (f"the service's bind is global ([daemon] bind, every printer listens on "
                   f"the same addresses), and the sections disagree ({said}); the default "
                   "[\"::\"] listens on all addresses: set [daemon] bind by hand, and use "
                   "allow to restrict who may print")
        draft.note(f"bind {_shown(draft.bind)} not carried over: {why}")
    return agreed


def _is_address(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


# ---------------------------------------------------------------------------------------------
# Rendering


def _header(source: str, drafts: Sequence[_Draft]) -> list[str]:
    served = sum(d.active for d in drafts)
    return [
        f"# printer-supervisor configuration converted from {source}",
        f"# by `supervisorctl migrate-p910nd`: {len(drafts)} p910nd section(s), "
        f"{served} served, the rest commented out.",
        "# What could not be carried over was printed as notes; check the result with",
        "# `supervisorctl check-config FILE`.",
    ]


def _daemon_table(bind: str | None, drafts: Sequence[_Draft], form: str) -> list[str]:
    toml = form == "toml"
    lines = [
        "",
        "[daemon]" if toml else "config daemon 'daemon'",
        "# OpenWrt's paths, as in the package's /etc/config/printer-supervisor: the remembered",
        "# ports on flash (/etc: they survive a reboot, and the package keeps",
        "# /etc/printer-supervisor/ across a sysupgrade), the log capped in RAM, events from the",
        "# usbmisc hotplug shim, firmware files first in /etc/printer-supervisor/firmware/.",
    ]
    for key, value in OPENWRT_DAEMON:
        if isinstance(value, tuple):
            lines += ([f"{key} = [", *(f"    {_toml_string(item)}," for item in value), "]"]
                      if toml else [f"\tlist {key} {quote(item)}" for item in value])
        else:
            lines.append(f"{key} = {_toml_value(value)}" if toml
                         else f"\toption {key} {_uci_value(value)}")
    lines += [
        "# p910nd served only the devices configured for it; so does this configuration.",
        "# true also serves any other USB printer, on the next free port from base_port.",
        "auto = false" if toml else "\toption auto '0'",
    ]
    if bind is not None:
        lines += ["# from p910nd's bind option, which every served section set the same way",
                  f"bind = [{_toml_string(bind)}]" if toml else f"\tlist bind {quote(bind)}"]
    elif not any(d.bind for d in drafts):
        lines += ["# bind: p910nd listened on 0.0.0.0 only (IPv4); the default [\"::\"] "
                  "listens on IPv4 and IPv6"]
    return lines


def _entry(draft: _Draft, form: str) -> list[str]:
    s = draft.section
    title = f"# {s.ref}, line {s.line}"
    if draft.blocked is not None:
        title += f": commented out because {draft.blocked}"
    elif not draft.enabled:
        title += ": disabled in p910nd (enabled is off); uncomment it to serve it"
    fields: list[tuple[str, str | int | bool]] = [("name", draft.name)]
    if draft.match is not None:
        fields.append(("match", draft.match))
    if draft.device is not None:
        fields.append(("device", draft.device))
    if draft.port is not None:
        fields.append(("port", draft.port))
    fields.append(("bidirectional", draft.bidirectional))
    if draft.firmware is not None:
        fields.append(("firmware", draft.firmware))
    if draft.mdns is not None:
        fields.append(("mdns", draft.mdns))
    if draft.mdns_name is not None:
        fields.append(("mdns_name", draft.mdns_name))
    if draft.location is not None:
        fields.append(("location", draft.location))
    if form == "toml":
        body = ["[[printer]]", *(_key(draft, key, _toml_value(value)) for key, value in fields)]
    else:  # a uci section name takes no "-": such a name is an option instead
        named = valid_name(draft.name)
        body = ["config printer" + (f" {quote(draft.name)}" if named else "")]
        body += [_key(draft, key, _uci_value(value), uci=True) for key, value in fields
                 if not (key == "name" and named)]
    return [title, *(body if draft.active else [f"#{line}" for line in body])]


def _key(draft: _Draft, key: str, value: str, *, uci: bool = False) -> str:
    comment = draft.comments.get(key)
    line = f"\toption {key} {value}" if uci else f"{key} = {value}"
    return line + (f"  # {comment}" if comment else "")


def _toml_value(value: str | int | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value) if isinstance(value, int) else _toml_string(value)


def _uci_value(value: str | int | bool) -> str:
    if isinstance(value, bool):
        return "'1'" if value else "'0'"
    return quote(str(value))


def _toml_string(value: str) -> str:
    """A TOML basic string: quotes, backslashes and control characters escaped."""
    out = []
    for char in value:
        if char in ('"', "\\"):
            out.append("\\" + char)
        elif char < " " or char == "\x7f":
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _shown(value: str) -> str:
    """A value as uci writes it: single-quoted, a quote inside as '\\''."""
    return "'" + value.replace("'", "'\\''") + "'"
