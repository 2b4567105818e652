"""Hotplug events: one frozen type, parsed and validated from any source's KEY=VALUE pairs."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from supervisor.protocol import HOTPLUG_KEYS

#: Every action the kernel sends; others are errors, not events.
KERNEL_ACTIONS: Final = frozenset(
    {"add", "remove", "change", "move", "online", "offline", "bind", "unbind"})
#: The actions that can change whether a printer is there (SPEC §4).
HANDLED_ACTIONS: Final = frozenset({"add", "remove", "bind", "unbind", "change"})
USB_DEVTYPES: Final = frozenset({"usb_device", "usb_interface"})
MAX_VALUE_CHARS: Final = 4096


class EventError(ValueError):
    """An event that is malformed or unsafe; the message says which key and why."""


@dataclass(frozen=True)
class HotplugEvent:
    """One uevent, as the kernel, udev or an OpenWrt hotplug shim describes it."""

    action: str
    devpath: str
    subsystem: str
    devtype: str | None = None
    product: str | None = None
    interface: str | None = None
    devname: Path | None = None  # resolved under devfs
    driver: str | None = None
    seqnum: int | None = None

    @property
    def relevant(self) -> bool:
        """Can this event change what printers are plugged? (Others are ignored quietly.)"""
        if self.action not in HANDLED_ACTIONS:
            return False
        if self.subsystem == "usb":
            return self.devtype in USB_DEVTYPES
        if self.subsystem == "usbmisc":
            return self.devpath.rsplit("/", 1)[-1].startswith("lp")
        return False

    def describe(self) -> dict[str, object]:
        """The fields worth a log line."""
        fields: dict[str, object] = {"action": self.action, "subsystem": self.subsystem,
                                     "devpath": self.devpath}
        for key in ("devtype", "product", "interface", "driver", "seqnum"):
            if (value := getattr(self, key)) is not None:
                fields[key] = value
        if self.devname is not None:
            fields["devname"] = str(self.devname)
        return fields


def parse_event(env: Mapping[str, str], devfs: Path) -> HotplugEvent:
    """Validate hotplug variables into an event, or raise EventError naming the problem."""
    values = {key: env[key] for key in HOTPLUG_KEYS if key in env}
    for key, value in values.items():
        if not isinstance(value, str):
            raise EventError(f"{key} must be a string, got {type(value).__name__}")
        if len(value) > MAX_VALUE_CHARS or "\0" in value or "\n" in value:
            raise EventError(f"{key} is not a plausible uevent value")
    for key in ("ACTION", "DEVPATH", "SUBSYSTEM"):
        if not values.get(key):
            raise EventError(f"{key} is missing: every uevent has ACTION, DEVPATH and SUBSYSTEM")
    action = values["ACTION"]
    if action not in KERNEL_ACTIONS:
        raise EventError(f"ACTION={action!r} is not a uevent action "
                         f"({', '.join(sorted(KERNEL_ACTIONS))})")
    devpath = values["DEVPATH"]
    if not devpath.startswith("/") or "/../" in devpath + "/":
        raise EventError(f"DEVPATH={devpath!r} must be an absolute sysfs path without '..'")
    seqnum = values.get("SEQNUM")
    if seqnum is not None and not seqnum.isdigit():
        raise EventError(f"SEQNUM={seqnum!r} must be a number")
    return HotplugEvent(
        action=action,
        devpath=devpath,
        subsystem=values["SUBSYSTEM"],
        devtype=values.get("DEVTYPE") or None,
        product=values.get("PRODUCT") or None,
        interface=values.get("INTERFACE") or None,
        devname=resolve_devname(values["DEVNAME"], devfs) if values.get("DEVNAME") else None,
        driver=values.get("DRIVER") or None,
        seqnum=int(seqnum) if seqnum else None,
    )


def resolve_devname(devname: str, devfs: Path) -> Path:
    """`usb/lp0` or `/dev/usb/lp0` as a path under `devfs`; refused if it would escape it."""
    if devname.startswith("/"):
        if not devname.startswith("/dev/"):
            raise EventError(f"DEVNAME={devname!r}: an absolute DEVNAME must start with /dev/")
        devname = devname[len("/dev/"):]
    root = os.path.normpath(devfs)
    resolved = os.path.normpath(os.path.join(root, devname))
    if not resolved.startswith(root.rstrip("/") + "/"):
        raise EventError(f"DEVNAME={devname!r} points outside {devfs}")
    return Path(resolved)


def parse_uevent(message: bytes) -> dict[str, str]:
    """The KEY=VALUE pairs of a raw kernel uevent (`add@/devpath\\0KEY=VALUE\\0…`)."""
    fields: dict[str, str] = {}
    for part in message.split(b"\0"):
        key, sep, value = part.decode("utf-8", "replace").partition("=")
        if sep:
            fields[key] = value
    return fields
