"""One p910nd section read as OpenWrt's p910nd package reads it: its init script (net/p910nd/
files/p910nd.init: a p910nd command line per section) and, since 23.05, its usbmisc hotplug
script (net/p910nd/files/p910nd.hotplug: `usbvidpid`, `driver_file`, `config hotplug`'s
`driver_home`, an auto-generated `mdns_note`). Each section becomes a Draft of a `[[printer]]`
entry with notes for what cannot be carried over; config.migrate settles the drafts together
and writes them.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from supervisor.config.checks import check_firmware, check_location, check_mdns_name
from supervisor.config.uci import UciSection, uci_bool
from supervisor.core.catalog import FirmwareEntry

PACKAGE: Final = "p910nd"
BASE_PORT: Final = 9100
NAME_RE: Final = re.compile(r"[a-z0-9_-]+")
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
#: The firmware directory the OpenWrt package owns and keeps across a sysupgrade.
OPENWRT_FIRMWARE_DIR: Final = "/etc/printer-supervisor/firmware"



@dataclass
class Draft:
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
class Context:
    """What every section's conversion needs to know besides itself."""

    driver_home: str  # the hotplug script's directory of blobs
    catalog: tuple[FirmwareEntry, ...]
    present: Collection[str] | None  # the driver files found; None: not looked for


def driver_home(sections: Sequence[UciSection]) -> str:
    """driver_home of the last `config hotplug` (the script reads @hotplug[-1]), without the
    trailing slash it trims; its default when unset."""
    homes = [single_values(s).get("driver_home") for s in sections if s.type == HOTPLUG]
    home = homes[-1] if homes and homes[-1] else DRIVER_HOME_DEFAULT
    return home.removesuffix("/") if home != "/" else home


def single_values(section: UciSection) -> dict[str, str]:
    return {k: v for k, v in section.options.items() if isinstance(v, str)}


def read_section(section: UciSection, context: Context) -> Draft:
    draft = Draft(section)
    values: dict[str, str] = {}
    for key, value in section.options.items():
        if isinstance(value, tuple):
            draft.note(f"list {key} {show_value(' '.join(value))} not carried over: p910nd's init "
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
    draft.name = (sanitised(section.name) if section.name else None) or (
        f"p910nd-{digit}" if digit is not None else "p910nd")
    return draft


def _enabled(draft: Draft, value: str | None) -> None:
    parsed = uci_bool(value) if value is not None else None
    if parsed is False:
        draft.enabled = False
        draft.note(f"enabled {show_value(value or '')}: the entry is written commented out, with "
                   "its settings, so that it is not served but is there to uncomment")
        return
    if parsed is None:
        said = "not set" if value is None else f"{show_value(value)} is not a boolean"
        draft.note(f"enabled {said}: carried over as enabled. OpenWrt's current init script "
                   "treats that as disabled, older ones as enabled; comment the entry out if "
                   "p910nd did not serve it")


def _port(draft: Draft, value: str | None) -> str | None:
    """The port digit p910nd used (None when invalid); sets draft.port."""
    if value is None:
        draft.port = BASE_PORT
        draft.comments["port"] = "p910nd's default (no port option: digit 0)"
        return "0"
    if len(value) == 1 and value in "0123456789":
        draft.port = BASE_PORT + int(value)
        return value
    draft.note(f"port {show_value(value)} not carried over: p910nd takes one digit 0-9, meaning "
               f"TCP {BASE_PORT}+digit; the entry has no port, so the service picks the next "
               "free one from base_port (set port = 91xx to keep a fixed one)")
    return None


def _device(draft: Draft, value: str | None, digit: str | None) -> None:
    if value is None:
        draft.device = f"/dev/lp{digit or '0'}"
        draft.comments["device"] = "p910nd's built-in default (no device option)"
    elif value.startswith("/"):
        draft.device = value
    else:
        draft.device = value
        draft.blocked = "device is not an absolute path"
        draft.note(f"device {show_value(value)} not carried over: it must be an absolute path such "
                   "as /dev/usb/lp0; the entry is written commented out: fix device, then "
                   "uncomment it")


def parse_vidpid(value: str | None) -> tuple[str, str] | None:
    """usbvidpid's idVendor and idProduct as written ('03f0', '2c17'); None if not such."""
    found = _VIDPID_RE.fullmatch(value) if value is not None else None
    return (found[1], found[2]) if found else None


def _usbvidpid(draft: Draft, value: str | None) -> tuple[str, str] | None:
    vidpid = parse_vidpid(value)
    if value is not None and vidpid is None:
        draft.note(f"usbvidpid {show_value(value)} not carried over: p910nd's hotplug script "
                   "writes idVendor/idProduct in hex, such as '03f0/2c17'; the entry keeps "
                   "the device instead")
    return vidpid


def _match(draft: Draft, vidpid: tuple[str, str], values: Mapping[str, str]) -> None:
    """The printer by identity: a PRODUCT glob instead of the lp node."""
    vid, pid = (f"{int(part, 16):x}" for part in vidpid)
    draft.match = f"{vid}/{pid}/*"
    device = values.get("device")
    left = (f"; device {show_value(device)} is left out: lp numbers follow the order printers "
            "are plugged in") if device is not None else ""
    draft.note(f"usbvidpid {show_value(values['usbvidpid'])} carried over as match "
               f"'{draft.match}': the service finds the printer by its USB vendor and "
               f"product, whatever lp node it gets{left}")


def blob_of(values: Mapping[str, str], vidpid: tuple[str, str] | None,
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


def _firmware(draft: Draft, values: Mapping[str, str], vidpid: tuple[str, str] | None,
              context: Context) -> None:
    """The hotplug script's blob becomes the printer's firmware only if the catalog says the
    printer needs firmware (it pushed it to any printer, needed or not)."""
    blob = blob_of(values, vidpid, context.driver_home)
    if blob is None:
        return
    path, named = blob
    said = (f"driver_file {show_value(path)}" if named
            else f"the hotplug script's driver file {path}")
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


def _bidirectional(draft: Draft, value: str | None, *, hotplug: bool) -> None:
    parsed = uci_bool(value) if value is not None else False
    if parsed is None:
        draft.note(f"bidirectional {show_value(value or '')} is not a boolean: p910nd ran without "
                   "-b, so the entry says bidirectional = false")
        parsed = False
    elif value is None:
        draft.comments["bidirectional"] = "p910nd's default (no -b)"
    elif hotplug:
        # Written from bInterfaceProtocol (1: 0; 2, 3: 1); releases before 2024-03-31
        # overwrote the user's value at every plug (openwrt/packages#23774).
        draft.note(f"bidirectional {show_value(value)} carried over: p910nd ran "
                   f"{'with' if parsed else 'without'} -b. Its hotplug script sets this option "
                   "from the printer's USB interface protocol when it is unset (its first "
                   "releases overwrote it at every plug), so it may not be the value you chose; "
                   "the service never rewrites it: change it here if it is not what you want")
    draft.bidirectional = parsed


def _mdns(draft: Draft, values: Mapping[str, str]) -> None:
    """p910nd's mDNS options: on or off, its instance name (ty) and note carry over."""
    if "mdns" in values:
        draft.mdns = uci_bool(values["mdns"])
        if draft.mdns is None:
            draft.note(f"mdns {show_value(values['mdns'])} is not a boolean: p910nd did not "
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
            draft.note(f"mdns_ty {show_value(ty)} not carried over: {problem}; the service "
                       "announces the printer as \"<model> @ <host>\"")
    if note is not None and _AUTO_NOTE_RE.fullmatch(note):
        draft.note(f"mdns_note {show_value(note)} not carried over as location: p910nd's hotplug "
                   "script wrote that text by itself, not where the printer is; set location "
                   "(or [daemon] location) to say where it is")
    elif note is not None:
        problem = check_location(note)
        if problem is None:
            draft.location = note
        else:
            draft.note(f"mdns_note {show_value(note)} not carried over: {problem}")
    read = [k for k in _MDNS_ID_KEYS if k in values]
    if read:
        draft.note(f"{', '.join(f'{k} {show_value(values[k])}' for k in read)} not carried over: "
                   "the service announces the make, model and command set the printer "
                   "itself reports (its IEEE-1284 ID), which is what CUPS picks drivers by")


def _leftovers(draft: Draft, values: Mapping[str, str]) -> None:
    def shown(keys: Sequence[str]) -> str:
        return ", ".join(f"{k} {show_value(values[k])}" for k in keys)

    if "runas_root" in values:
        draft.note(f"{shown(['runas_root'])} not carried over: the service runs as one user "
                   "for all printers, chosen by its systemd unit or procd init script; that "
                   "user needs write access to the printer nodes (group lp)")
    unknown = [k for k in values if k != "runas_root"]
    if unknown:
        draft.note(f"{shown(unknown)} not carried over: not an option p910nd's init script "
                   "reads, so p910nd ignored it too")


def sanitised(name: str) -> str | None:
    lowered = name.lower()
    if NAME_RE.fullmatch(lowered):
        return lowered
    cleaned = re.sub(r"[^a-z0-9_-]+", "-", lowered).strip("-")
    return cleaned or None


def show_value(value: str) -> str:
    """A value as uci writes it: single-quoted, a quote inside as '\\''."""
    return "'" + value.replace("'", "'\\''") + "'"
