"""Checks of single configuration values: each returns what is wrong in words, or None.

Shared by both forms of the file (TOML and UCI are validated by the same code) and by the p910nd
migration, which must write only values these accept.
"""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path

from supervisor.config.settings import split_listen
from supervisor.core.devices import node_refusal

#: An mDNS instance name is one DNS label: at most 63 bytes of UTF-8 (RFC 6763 §4.1.1).
MDNS_NAME_MAX_BYTES = 63
#: Clients one printer may have waiting: each costs a socket (an fd) and a few hundred bytes.
MAX_CLIENTS_LIMIT = 4096
#: stall_timeout's bounds, in seconds: the progress of a job is looked at once a second, so a
#: shorter stall could not be told; a week is as good as never.
STALL_TIMEOUT_RANGE_S = (1.0, 7 * 86400.0)
#: A TXT string is at most 255 bytes, key and "=" included (RFC 6763 §6.1).
MDNS_TEXT_MAX_BYTES = 200
NAME_RE = re.compile(r"[a-z0-9_-]+")
# PRODUCT is vendor/product/bcdDevice in lowercase hex without leading zeros; globs allowed.
_PRODUCT_PART = r"(?:[1-9a-f][0-9a-f]{0,3}|0|[0-9a-f*?\[\]!-]*[*?\[][0-9a-f*?\[\]!-]*)"
PRODUCT_GLOB_RE = re.compile(rf"{_PRODUCT_PART}/{_PRODUCT_PART}(?:/{_PRODUCT_PART})?")


def check_name(value: str) -> str | None:
    if NAME_RE.fullmatch(value):
        return None
    return f"{value!r} is not allowed: use only a-z, 0-9, _ and -"


def check_product_glob(value: str) -> str | None:
    if PRODUCT_GLOB_RE.fullmatch(value):
        return None
    return (f"{value!r} is not a PRODUCT glob: vendor/product[/bcdDevice] in lowercase hex "
            "without leading zeros, e.g. '3f0/4117/*'")


def normalize_glob(value: str) -> str:
    return value if value.count("/") == 2 else value + "/*"


def check_device(value: str) -> str | None:
    if not value.startswith("/"):
        return f"{value!r} must be an absolute path such as /dev/usb/lp0"
    if not value.isprintable():
        return f"{value!r} holds a control character"
    return None


def check_device_node(value: str) -> str | None:
    """A `device` that is there must be a printer's node; one not there yet is fine (printers
    get plugged later). The service checks again at every scan and every open."""
    try:
        mode = os.stat(value).st_mode
    except OSError:
        return None
    return node_refusal(Path(value), mode)


def check_firmware(value: str) -> str | None:
    if value in ("auto", "none") or value.startswith("/") or "/" not in value:
        return None
    return (f"{value!r}: use auto, none, a file name looked up in firmware_dirs, "
            "or an absolute path")


def check_mdns_name(value: str) -> str | None:
    size = len(value.encode("utf-8"))
    if size > MDNS_NAME_MAX_BYTES:
        return (f"{value!r} is {size} bytes of UTF-8; an mDNS name is one DNS label of at most "
                f"{MDNS_NAME_MAX_BYTES}")
    if not value.isprintable():
        return f"{value!r} holds a control character"
    return None


def check_location(value: str) -> str | None:
    size = len(value.encode("utf-8"))
    if size > MDNS_TEXT_MAX_BYTES:
        return f"is {size} bytes of UTF-8; at most {MDNS_TEXT_MAX_BYTES} fit in an announcement"
    if not value.isprintable():
        return f"{value!r} holds a control character"
    return None


def optional_path(value: str | None) -> Path | None:
    return Path(value) if value else None


def check_metrics_file(value: str) -> str | None:
    if not value.startswith("/"):
        return f"{value!r} must be an absolute path"
    if not value.endswith(".prom") or value.endswith("/.prom"):
        return (f"{value!r} must end in .prom: node_exporter's textfile collector reads only "
                "those files")
    return None


def check_listen(value: str) -> str | None:
    try:
        split_listen(value)
    except ValueError as exc:
        return (f"{value!r}: {exc} (ADDRESS:PORT with an IP address, e.g. '127.0.0.1:8631' "
                "or '[::]:8631')")
    return None


def check_address(value: str) -> str | None:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return f"{value!r} is not an IP address (e.g. '::', '0.0.0.0' or '192.168.1.1')"
    return None


def check_network(value: str) -> str | None:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return f"{value!r} is not an address or network (e.g. '192.168.1.0/24' or '::1')"
    return None
