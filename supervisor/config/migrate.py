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
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Final

from supervisor.config.p910nd import (
    HOTPLUG,
    PACKAGE,
    Context,
    Draft,
    blob_of,
    driver_home,
    parse_vidpid,
    read_section,
    show_value,
    single_values,
)
from supervisor.config.uci import UciError, UciSection, parse_uci, quote, valid_name
from supervisor.core.catalog import FirmwareEntry, load_catalog

__all__ = ["Migration", "UciError", "UciSection", "driver_files", "parse_uci", "to_toml",
           "to_uci"]

DEFAULT_UCI_PATH: Final = "/etc/config/p910nd"
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


@dataclass(frozen=True)
class Migration:
    """The configuration to use (TOML or UCI), and what could not be carried over (each note
    names its section)."""

    text: str
    notes: list[str]


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
    home = driver_home(sections)
    found = []
    for section in sections:
        if section.type == PACKAGE:
            values = single_values(section)
            blob = blob_of(values, parse_vidpid(values.get("usbvidpid")), home)
            if blob is not None:
                found.append(blob[0])
    return found


def _context(sections: Sequence[UciSection], present: Collection[str] | None,
             catalog: Sequence[FirmwareEntry] | None) -> Context:
    return Context(driver_home(sections),
                    tuple(load_catalog() if catalog is None else catalog), present)


def _convert(sections: Sequence[UciSection], source: str, form: str,
             context: Context) -> Migration:
    drafts = [read_section(s, context) for s in sections if s.type == PACKAGE]
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
    shown = ", ".join(f"{k} {show_value(' '.join(v) if isinstance(v, tuple) else v)}"
                      for k, v in section.options.items() if k in others)
    return [f"{section.ref} (line {section.line}): {shown} not carried over: p910nd's hotplug "
            "script reads only driver_home from its `config hotplug` section"]


def _name(drafts: Sequence[Draft]) -> None:
    """Unique names, in file order (disabled entries too: they may be uncommented)."""
    taken: set[str] = set()
    for draft in drafts:
        base, n = draft.name, 2
        while draft.name in taken:
            draft.name, n = f"{base}-{n}", n + 1
        taken.add(draft.name)


def _settle_ports(drafts: Sequence[Draft]) -> None:
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


def _settle_devices(drafts: Sequence[Draft]) -> None:
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


def _daemon_bind(drafts: Sequence[Draft]) -> str | None:
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
            draft.note(f"bind {show_value(draft.bind)} carried over as [daemon] bind = "
                       f"[\"{draft.bind}\"]: the service's bind is global (every printer "
                       "listens on the same addresses), and every served section agreed")
            continue
        else:
            said = ", ".join(sorted(f"{d.name}: {d.bind or '0.0.0.0 (no bind)'}" for d in active))
            why = (f"the service's bind is global ([daemon] bind, every printer listens on "
                   f"the same addresses), and the sections disagree ({said}); the default "
                   "[\"::\"] listens on all addresses: set [daemon] bind by hand, and use "
                   "allow to restrict who may print")
        draft.note(f"bind {show_value(draft.bind)} not carried over: {why}")
    return agreed


def _is_address(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


# ---------------------------------------------------------------------------------------------
# Rendering


def _header(source: str, drafts: Sequence[Draft]) -> list[str]:
    served = sum(d.active for d in drafts)
    return [
        f"# printer-supervisor configuration converted from {source}",
        f"# by `supervisorctl migrate-p910nd`: {len(drafts)} p910nd section(s), "
        f"{served} served, the rest commented out.",
        "# What could not be carried over was printed as notes; check the result with",
        "# `supervisorctl check-config FILE`.",
    ]


def _daemon_table(bind: str | None, drafts: Sequence[Draft], form: str) -> list[str]:
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


def _entry(draft: Draft, form: str) -> list[str]:
    s = draft.section
    title = f"# {s.ref}, line {s.line}"
    if draft.blocked is not None:
        title += f": commented out because {draft.blocked}"
    elif not draft.enabled:
        title += ": disabled in p910nd (enabled is off); uncomment it to serve it"
    fields: list[tuple[str, str | int | bool]] = [("name", draft.name)]
    for key in ("match", "device", "port", "bidirectional", "firmware", "mdns", "mdns_name",
                "location"):  # in this order; bidirectional always, the rest when set
        value = getattr(draft, key)
        if value is not None:
            fields.append((key, value))
    if form == "toml":
        body = ["[[printer]]", *(_key(draft, key, _toml_value(value)) for key, value in fields)]
    else:  # a uci section name takes no "-": such a name is an option instead
        named = valid_name(draft.name)
        body = ["config printer" + (f" {quote(draft.name)}" if named else "")]
        body += [_key(draft, key, _uci_value(value), uci=True) for key, value in fields
                 if not (key == "name" and named)]
    return [title, *(body if draft.active else [f"#{line}" for line in body])]


def _key(draft: Draft, key: str, value: str, *, uci: bool = False) -> str:
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
