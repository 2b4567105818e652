"""Validation: a configuration document (TOML's shape) checked whole into Settings.

Every problem is collected, each located by key and, where known, line, so that a user fixes the
file in one go. The UCI form is turned into the same document and validated here too.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from supervisor.config.checks import (
    MAX_CLIENTS_LIMIT,
    STALL_TIMEOUT_RANGE_S,
    check_address,
    check_device,
    check_device_node,
    check_firmware,
    check_listen,
    check_location,
    check_mdns_name,
    check_metrics_file,
    check_name,
    check_network,
    check_product_glob,
    normalize_glob,
    optional_path,
)
from supervisor.config.settings import (
    MDNS_MODES,
    ConfigError,
    DaemonSettings,
    EventSource,
    IPNetwork,
    MdnsMode,
    PrinterSettings,
    Problem,
    Settings,
)

#: Where a key is: (table header, index of that table, key or None) → line.
Locator = Callable[[str, int, "str | None"], "int | None"]


def validate_raw(raw: dict[str, Any], source: Path | None, locate: Locator,
                 problems: list[Problem], warnings: tuple[str, ...] = (), *,
                 inspect_devices: bool = False) -> Settings:
    """Validate a configuration read from another form (UCI) as TOML's is validated:
    `raw` shaped like the TOML document, `locate` finding lines, `problems` found so far."""
    validator = Validator("", locate, inspect_devices=inspect_devices)
    validator.problems.extend(problems)
    settings = validator.settings(raw, source)
    if validator.problems:
        raise ConfigError(validator.problems, source)
    return dataclasses.replace(settings, warnings=warnings)




_DAEMON_KEYS = frozenset(DaemonSettings.__dataclass_fields__)
_PRINTER_KEYS = frozenset(PrinterSettings.__dataclass_fields__)


class Validator:
    """Collects every problem instead of stopping at the first."""

    def __init__(self, text: str, locate: Locator | None = None, *,
                 inspect_devices: bool = False) -> None:
        self.lines = text.splitlines()
        self.problems: list[Problem] = []
        self._locate = locate
        self._inspect_devices = inspect_devices

    # -- locating keys for messages ---------------------------------------------------------
    def _line(self, header: str, index: int, key: str | None) -> int | None:
        """Line of `key` in the index-th table headed `header` (TOML has no positions)."""
        if self._locate is not None:
            return self._locate(header, index, key)
        header_re = re.compile(rf"^\s*{re.escape(header)}\s*(#.*)?$")
        key_re = re.compile(rf"^\s*{re.escape(key)}\s*=") if key else None
        seen, start = -1, None
        for number, line in enumerate(self.lines, 1):
            if header_re.match(line):
                seen += 1
                if seen == index:
                    start = number
                    if key_re is None:
                        return number
                    continue
                if start is not None:
                    break
            elif start is not None and re.match(r"^\s*\[", line):
                break
            elif start is not None and key_re is not None and key_re.match(line):
                return number
        return start

    def fail(self, key: str, message: str, header: str = "", index: int = 0,
             label: str = "") -> None:
        line = self._line(header, index, key) if header else None
        self.problems.append(Problem(f"{label}: {key}" if label else key, message, line))

    def fail_top(self, key: str, message: str) -> None:
        """A problem with a top-level key: `key = …` before any table, or a `[key…]` header."""
        name = re.escape(key)
        header_re = re.compile(rf"^\s*\[\[?\s*{name}\s*[\].]")
        assign_re = re.compile(rf"^\s*{name}\s*=")
        line, in_table = None, False
        for number, text in enumerate(self.lines, 1):
            if header_re.match(text) or (not in_table and assign_re.match(text)):
                line = number
                break
            in_table = in_table or bool(re.match(r"^\s*\[", text))
        self.problems.append(Problem(key, message, line))

    # -- tables -----------------------------------------------------------------------------
    def settings(self, raw: dict[str, Any], source: Path | None) -> Settings:
        for key in raw:
            if key not in ("daemon", "printer"):
                self.fail_top(key, "unknown top-level key; allowed: [daemon] and [[printer]]")
        daemon_raw = raw.get("daemon", {})
        if not isinstance(daemon_raw, dict):
            self.fail_top("daemon", "must be a table: [daemon]")
            daemon_raw = {}
        printers_raw = raw.get("printer", [])
        if not isinstance(printers_raw, list):
            self.fail_top("printer", "must be an array of tables: [[printer]]")
            printers_raw = []
        daemon = self.daemon(daemon_raw)
        printers = tuple(
            p
            for i, entry in enumerate(printers_raw)
            if (p := self.printer(entry, i)) is not None
        )
        self.cross_check(printers)
        self.check_http_port(daemon, printers)
        return Settings(daemon=daemon, printers=printers, source=source)

    def daemon(self, raw: dict[str, Any]) -> DaemonSettings:
        d = DaemonSettings()
        get = _Getter(self, raw, "[daemon]", 0, "daemon")
        for key in raw:
            if key not in _DAEMON_KEYS:
                get.fail(key, f"unknown key; allowed: {', '.join(sorted(_DAEMON_KEYS))}")
        log_file = get.string("log_file", str(d.log_file), allow_empty=True)
        return DaemonSettings(
            control_socket=Path(get.string("control_socket", str(d.control_socket))),
            log_file=Path(log_file) if log_file else None,
            log_max_bytes=get.integer("log_max_bytes", d.log_max_bytes, 0, 2**40),
            state_dir=Path(get.string("state_dir", str(d.state_dir))),
            event_source=cast(
                EventSource, get.choice("event_source", d.event_source, ("udev", "kernel", "none"))
            ),
            sysfs=Path(get.string("sysfs", str(d.sysfs))),
            devfs=Path(get.string("devfs", str(d.devfs))),
            firmware_dirs=tuple(
                Path(s) for s in get.strings("firmware_dirs", [str(p) for p in d.firmware_dirs])
            ),
            auto=get.boolean("auto", d.auto),
            base_port=get.integer("base_port", d.base_port, 1, 65000),  # room for printers
            bind=self._bind(get, d.bind),
            mdns=cast(MdnsMode, get.choice("mdns", d.mdns, MDNS_MODES)),
            location=get.optional_string("location", check=check_location),
            metrics_file=optional_path(get.optional_string("metrics_file",
                                                            check=check_metrics_file)),
            http_listen=get.optional_string("http_listen", check=check_listen),
            http_allow=self._networks(get, "http_allow"),
            stall_timeout=get.number("stall_timeout", d.stall_timeout, *STALL_TIMEOUT_RANGE_S),
        )

    @staticmethod
    def _networks(get: _Getter, key: str) -> tuple[IPNetwork, ...]:
        return tuple(ipaddress.ip_network(s, strict=False)
                     for s in get.strings(key, [], check=check_network))

    def _bind(self, get: _Getter, default: tuple[str, ...]) -> tuple[str, ...]:
        bind = tuple(get.strings("bind", list(default), check=check_address, non_empty=True))
        if "::" in bind and len(set(bind)) > 1:
            get.fail("bind", "'::' already accepts every IPv6 and IPv4 client (dual-stack): "
                     "list it alone, or list only specific addresses")
            return default
        if len(set(bind)) != len(bind):
            get.fail("bind", "an address is listed twice")
            return default
        return bind

    def printer(self, raw: object, index: int) -> PrinterSettings | None:
        if not isinstance(raw, dict):
            self.fail(f"printer[{index}]", "must be a table", "[[printer]]", index)
            return None
        label = raw.get("name") if isinstance(raw.get("name"), str) else f"#{index + 1}"
        get = _Getter(self, raw, "[[printer]]", index, f"printer '{label}'")
        for key in raw:
            if key not in _PRINTER_KEYS:
                get.fail(key, f"unknown key; allowed: {', '.join(sorted(_PRINTER_KEYS))}")
        d = PrinterSettings(name="")
        name = get.string("name", "", check=check_name)
        match = get.optional_string("match", check=check_product_glob)
        device = get.optional_string("device", check=self._check_device)
        serial = get.optional_string("serial")
        if "name" not in raw:
            get.fail("name", "is required: a unique name made of a-z, 0-9, _ and -")
        if not any(key in raw for key in ("match", "serial", "device")):
            get.fail("match", "a printer needs `match` (a PRODUCT glob), `serial` or `device`")
        port = get.integer("port", 0, 1, 65535) if "port" in raw else None
        return PrinterSettings(
            name=name,
            match=normalize_glob(match) if match else None,
            serial=serial,
            device=Path(device) if device else None,
            port=port,
            bidirectional=get.boolean("bidirectional", d.bidirectional),
            firmware=get.string("firmware", d.firmware, check=check_firmware),
            allow=self._networks(get, "allow"),
            idle_timeout=get.number("idle_timeout", d.idle_timeout, 0.001, 86400.0 * 365),
            max_clients=get.integer("max_clients", d.max_clients, 1, MAX_CLIENTS_LIMIT),
            max_clients_per_address=get.integer("max_clients_per_address",
                                                d.max_clients_per_address, 1,
                                                MAX_CLIENTS_LIMIT),
            mdns=get.boolean("mdns", d.mdns),
            mdns_name=get.optional_string("mdns_name", check=check_mdns_name),
            location=get.optional_string("location", check=check_location),
            stall_timeout=get.number("stall_timeout", 0.0, *STALL_TIMEOUT_RANGE_S)
            if "stall_timeout" in raw else None,
        )

    def _check_device(self, value: str) -> str | None:
        if (problem := check_device(value)) is not None or not self._inspect_devices:
            return problem
        return check_device_node(value)

    def cross_check(self, printers: tuple[PrinterSettings, ...]) -> None:
        names: dict[str, int] = {}
        ports: dict[int, str] = {}
        devices: dict[Path, str] = {}
        mdns_names: dict[str, str] = {}
        for index, p in enumerate(printers):
            if p.mdns_name is not None:
                folded = p.mdns_name.casefold()  # DNS compares names without case
                if folded in mdns_names:
                    self.fail("mdns_name", f"{p.mdns_name!r} is also the mdns_name of printer "
                              f"'{mdns_names[folded]}'; each announced name must be unique",
                              "[[printer]]", index, f"printer '{p.name}'")
                mdns_names[folded] = p.name
            if p.name and p.name in names:
                self.fail("name", f"'{p.name}' is used by two printers; names must be unique",
                          "[[printer]]", index, f"printer '{p.name}'")
            names[p.name] = index
            if p.port is not None:
                if p.port in ports:
                    self.fail("port", f"{p.port} is also the port of printer '{ports[p.port]}'",
                              "[[printer]]", index, f"printer '{p.name}'")
                ports[p.port] = p.name
            if p.device is not None and p.match is None and p.serial is None:
                if p.device in devices:
                    self.fail("device", f"{p.device} is also the device of printer "
                              f"'{devices[p.device]}'", "[[printer]]", index, f"printer '{p.name}'")
                devices[p.device] = p.name


    def check_http_port(self, daemon: DaemonSettings,
                        printers: tuple[PrinterSettings, ...]) -> None:
        """The status page's port is no printer's (printers given no port skip it)."""
        address = daemon.http_address
        if address is None:
            return
        for p in printers:
            if p.port == address[1]:
                self.fail("http_listen", f"port {address[1]} is also the port of printer "
                          f"'{p.name}'", "[daemon]", 0, "daemon")


class _Getter:
    """Typed access to one table's keys, reporting problems with the table's name."""

    def __init__(self, v: Validator, raw: dict[str, Any], header: str, index: int,
                 label: str) -> None:
        self.v, self.raw, self.header, self.index, self.label = v, raw, header, index, label

    def fail(self, key: str, message: str) -> None:
        self.v.fail(key, message, self.header, self.index, self.label)

    def _get(self, key: str) -> tuple[bool, Any]:
        return (key in self.raw, self.raw.get(key))

    def string(self, key: str, default: str, *, allow_empty: bool = False,
               check: Callable[[str], str | None] | None = None) -> str:
        present, value = self._get(key)
        if not present:
            return default
        if not isinstance(value, str) or (not value and not allow_empty):
            self.fail(key, f"must be a non-empty string, got {value!r}")
            return default
        if check and value and (err := check(value)):
            self.fail(key, err)
            return default
        return value

    def optional_string(self, key: str,
                        check: Callable[[str], str | None] | None = None) -> str | None:
        if key not in self.raw:
            return None
        value = self.string(key, "", check=check)
        return value or None

    def strings(self, key: str, default: list[str], *, non_empty: bool = False,
                check: Callable[[str], str | None] | None = None) -> list[str]:
        present, value = self._get(key)
        if not present:
            return default
        if not isinstance(value, list) or not all(isinstance(s, str) and s for s in value):
            self.fail(key, f"must be a list of non-empty strings, got {value!r}")
            return default
        if non_empty and not value:
            self.fail(key, "must name at least one entry")
            return default
        for item in value:
            if check and (err := check(item)):
                self.fail(key, err)
                return default
        return list(value)

    def integer(self, key: str, default: int, low: int, high: int) -> int:
        present, value = self._get(key)
        if not present:
            return default
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.fail(key, f"must be an integer from {low} to {high}, got {value!r}")
            return default
        return value

    def number(self, key: str, default: float, low: float, high: float) -> float:
        present, value = self._get(key)
        if not present:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float) or not (
            low <= value <= high
        ):
            bounds = "greater than 0" if low < 1 else f"from {low:g} to {high:g}"
            self.fail(key, f"must be a number of seconds {bounds}, got {value!r}")
            return default
        return float(value)

    def boolean(self, key: str, default: bool) -> bool:
        present, value = self._get(key)
        if not present:
            return default
        if not isinstance(value, bool):
            self.fail(key, f"must be true or false, got {value!r}")
            return default
        return value

    def choice(self, key: str, default: str, allowed: tuple[str, ...]) -> str:
        present, value = self._get(key)
        if not present:
            return default
        if value not in allowed:
            self.fail(key, f"must be one of {', '.join(allowed)}; got {value!r}")
            return default
        return cast(str, value)
