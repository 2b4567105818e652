"""Configuration: the TOML file of SPEC §3 turned into frozen settings, or errors naming the key."""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

from supervisor.core.devices import node_refusal
from supervisor.protocol import CONFIG_ENV, DEFAULT_CONFIG, DEFAULT_UCI

DEFAULT_CONFIG_PATH = Path(DEFAULT_CONFIG)
DEFAULT_UCI_PATH = Path(DEFAULT_UCI)

EventSource = Literal["udev", "kernel", "none"]
MdnsMode = Literal["auto", "avahi", "umdns", "off"]
MDNS_MODES: tuple[MdnsMode, ...] = ("auto", "avahi", "umdns", "off")
#: An mDNS instance name is one DNS label: at most 63 bytes of UTF-8 (RFC 6763 §4.1.1).
MDNS_NAME_MAX_BYTES = 63
#: Clients one printer may have waiting: each costs a socket (an fd) and a few hundred bytes.
MAX_CLIENTS_LIMIT = 4096
#: A TXT string is at most 255 bytes, key and "=" included (RFC 6763 §6.1).
MDNS_TEXT_MAX_BYTES = 200
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

NAME_RE = re.compile(r"[a-z0-9_-]+")
# PRODUCT is vendor/product/bcdDevice in lowercase hex without leading zeros; globs allowed.
_PRODUCT_PART = r"(?:[1-9a-f][0-9a-f]{0,3}|0|[0-9a-f*?\[\]!-]*[*?\[][0-9a-f*?\[\]!-]*)"
PRODUCT_GLOB_RE = re.compile(rf"{_PRODUCT_PART}/{_PRODUCT_PART}(?:/{_PRODUCT_PART})?")


@dataclass(frozen=True)
class DaemonSettings:
    """The `[daemon]` table."""

    control_socket: Path = Path("/run/printer-supervisor/control.sock")
    log_file: Path | None = Path("/var/log/printer-supervisor/events.jsonl")
    log_max_bytes: int = 1_048_576
    state_dir: Path = Path("/var/lib/printer-supervisor")
    event_source: EventSource = "udev"
    sysfs: Path = Path("/sys")
    devfs: Path = Path("/dev")
    firmware_dirs: tuple[Path, ...] = (
        Path("/lib/firmware/hp"),
        Path("/usr/share/foo2zjs/firmware"),
    )
    auto: bool = True
    base_port: int = 9100
    bind: tuple[str, ...] = ("::",)
    mdns: MdnsMode = "auto"  # announce ready printers over mDNS/DNS-SD, through which responder
    location: str | None = None  # where the printers are: the announcements' `note`
    metrics_file: Path | None = None  # Prometheus textfile for node_exporter; None: not written
    http_listen: str | None = None  # "ADDRESS:PORT" of the metrics and status page; None: off
    http_allow: tuple[IPNetwork, ...] = ()  # who may use it (empty: everyone)

    @property
    def http_address(self) -> tuple[str, int] | None:
        """`http_listen` split into address and port (validated at load)."""
        return split_listen(self.http_listen) if self.http_listen else None


@dataclass(frozen=True)
class PrinterSettings:
    """One `[[printer]]` entry."""

    name: str
    match: str | None = None
    serial: str | None = None
    device: Path | None = None
    port: int | None = None
    bidirectional: bool = True
    firmware: str = "auto"
    allow: tuple[IPNetwork, ...] = ()
    idle_timeout: float = 300.0
    max_clients: int = 32  # clients waiting for the printer; more are closed at once
    max_clients_per_address: int = 8  # ...of them from one address (a flood, a port monitor)
    mdns: bool = True  # announce it while it is ready (if [daemon] mdns is not "off")
    mdns_name: str | None = None  # its mDNS instance name; default "<model> @ <host>"
    location: str | None = None  # overrides [daemon] location for this printer

    @property
    def is_static(self) -> bool:
        """A fixed node and no PRODUCT match: present while the node exists, like p910nd."""
        return self.device is not None and self.match is None

    def allows(self, address: str) -> bool:
        """Whether a client address may print here (an empty `allow` admits everyone)."""
        return allowed(self.allow, address)


def allowed(networks: tuple[IPNetwork, ...], address: str) -> bool:
    """Whether a client address is in one of `networks` (none listed admits everyone)."""
    if not networks:
        return True
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in net for net in networks)


def split_listen(value: str) -> tuple[str, int]:
    """`127.0.0.1:8631` or `[::]:8631` → (address, port); ValueError when it is neither."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not port.isascii():
        raise ValueError("needs ADDRESS:PORT")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        if not isinstance(ipaddress.ip_address(host), ipaddress.IPv6Address):
            raise ValueError("only an IPv6 address goes in brackets")
    elif not isinstance(ipaddress.ip_address(host), ipaddress.IPv4Address):
        raise ValueError("an IPv6 address goes in brackets")
    number = int(port)
    if not 1 <= number <= 65535:
        raise ValueError(f"port {number} is not from 1 to 65535")
    return host, number


@dataclass(frozen=True)
class Settings:
    """Everything the service is told by its configuration file."""

    daemon: DaemonSettings = field(default_factory=DaemonSettings)
    printers: tuple[PrinterSettings, ...] = ()
    source: Path | None = None
    warnings: tuple[str, ...] = ()  # what was ignored (a UCI file's unknown options)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a configuration, located by key and, where known, line."""

    key: str
    message: str
    line: int | None = None

    def render(self, source: Path | None) -> str:
        where = str(source) if source else "config"
        if self.line is not None:
            where += f":{self.line}"
        return f"{where}: {self.key}: {self.message}"


class ConfigError(Exception):
    """A configuration that cannot be used; `problems` lists every reason."""

    def __init__(self, problems: list[Problem], source: Path | None = None) -> None:
        self.problems = problems
        self.source = source
        super().__init__("\n".join(p.render(source) for p in problems))


# ---------------------------------------------------------------------------------------------
# Loading


def config_path(explicit: str | None, environ: Mapping[str, str]) -> tuple[Path, bool]:
    """The file to read and whether the user named it (a named file must exist)."""
    if explicit:
        return Path(explicit), True
    if environ.get(CONFIG_ENV):
        return Path(environ[CONFIG_ENV]), True
    # config.toml wins where both exist: it is what a router set up that way was given.
    if not DEFAULT_CONFIG_PATH.exists() and DEFAULT_UCI_PATH.exists():
        return DEFAULT_UCI_PATH, False
    return DEFAULT_CONFIG_PATH, False


def load_settings(path: Path, *, required: bool, inspect_devices: bool = False) -> Settings:
    """Read and validate `path` (TOML, or UCI recognised by its content); a missing default
    file means the defaults. `inspect_devices` (check-config) also refuses a `device` that is
    there but is not a printer's node; the service finds that per printer, at every scan."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if required:
            raise ConfigError(
                [Problem("file", "does not exist; create it or leave --config out for defaults")],
                path,
            ) from None
        return Settings()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([Problem("file", f"cannot be read: {exc}")], path) from None
    if is_uci(text):
        from supervisor.uciconfig import parse_uci_settings  # noqa: PLC0415 (OpenWrt's form)

        return parse_uci_settings(text, path, inspect_devices=inspect_devices)
    return parse_settings(text, path, inspect_devices=inspect_devices)


def is_uci(text: str) -> bool:
    """Whether `text` is UCI: its first command is `config` or `package` (TOML has none)."""
    for line in text.splitlines():
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        return words[0] in ("config", "package") and (
            len(words) == 1 or not words[1].startswith("="))
    return False


def parse_settings(text: str, source: Path | None = None, *,
                   inspect_devices: bool = False) -> Settings:
    """Validate TOML text into Settings, or raise ConfigError listing every problem."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = _line_of_decode_error(str(exc))
        raise ConfigError([Problem("syntax", f"not valid TOML: {exc}", line)], source) from None
    validator = _Validator(text, inspect_devices=inspect_devices)
    settings = validator.settings(raw, source)
    if validator.problems:
        raise ConfigError(validator.problems, source)
    return settings


#: Where a key is: (table header, index of that table, key or None) → line.
Locator = Callable[[str, int, "str | None"], "int | None"]


def validate_raw(raw: dict[str, Any], source: Path | None, locate: Locator,
                 problems: list[Problem], warnings: tuple[str, ...] = (), *,
                 inspect_devices: bool = False) -> Settings:
    """Validate a configuration read from another form (UCI) as TOML's is validated:
    `raw` shaped like the TOML document, `locate` finding lines, `problems` found so far."""
    validator = _Validator("", locate, inspect_devices=inspect_devices)
    validator.problems.extend(problems)
    settings = validator.settings(raw, source)
    if validator.problems:
        raise ConfigError(validator.problems, source)
    return dataclasses.replace(settings, warnings=warnings)


def _line_of_decode_error(message: str) -> int | None:
    found = re.search(r"line (\d+)", message)
    return int(found.group(1)) if found else None


# ---------------------------------------------------------------------------------------------
# Validation

_DAEMON_KEYS = frozenset(DaemonSettings.__dataclass_fields__)
_PRINTER_KEYS = frozenset(PrinterSettings.__dataclass_fields__)


class _Validator:
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
            metrics_file=_optional_path(get.optional_string("metrics_file",
                                                            check=_check_metrics_file)),
            http_listen=get.optional_string("http_listen", check=_check_listen),
            http_allow=self._networks(get, "http_allow"),
        )

    @staticmethod
    def _networks(get: _Getter, key: str) -> tuple[IPNetwork, ...]:
        return tuple(ipaddress.ip_network(s, strict=False)
                     for s in get.strings(key, [], check=_check_network))

    def _bind(self, get: _Getter, default: tuple[str, ...]) -> tuple[str, ...]:
        bind = tuple(get.strings("bind", list(default), check=_check_address, non_empty=True))
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
        name = get.string("name", "", check=_check_name)
        match = get.optional_string("match", check=_check_product_glob)
        device = get.optional_string("device", check=self._check_device)
        serial = get.optional_string("serial")
        if "name" not in raw:
            get.fail("name", "is required: a unique name made of a-z, 0-9, _ and -")
        if not any(key in raw for key in ("match", "serial", "device")):
            get.fail("match", "a printer needs `match` (a PRODUCT glob), `serial` or `device`")
        port = get.integer("port", 0, 1, 65535) if "port" in raw else None
        return PrinterSettings(
            name=name,
            match=_normalize_glob(match) if match else None,
            serial=serial,
            device=Path(device) if device else None,
            port=port,
            bidirectional=get.boolean("bidirectional", d.bidirectional),
            firmware=get.string("firmware", d.firmware, check=_check_firmware),
            allow=self._networks(get, "allow"),
            idle_timeout=get.number("idle_timeout", d.idle_timeout, 0.001, 86400.0 * 365),
            max_clients=get.integer("max_clients", d.max_clients, 1, MAX_CLIENTS_LIMIT),
            max_clients_per_address=get.integer("max_clients_per_address",
                                                d.max_clients_per_address, 1,
                                                MAX_CLIENTS_LIMIT),
            mdns=get.boolean("mdns", d.mdns),
            mdns_name=get.optional_string("mdns_name", check=check_mdns_name),
            location=get.optional_string("location", check=check_location),
        )

    def _check_device(self, value: str) -> str | None:
        if (problem := _check_device(value)) is not None or not self._inspect_devices:
            return problem
        return _check_device_node(value)

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

    def __init__(self, v: _Validator, raw: dict[str, Any], header: str, index: int,
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
            self.fail(key, f"must be a number of seconds greater than 0, got {value!r}")
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


def _check_name(value: str) -> str | None:
    if NAME_RE.fullmatch(value):
        return None
    return f"{value!r} is not allowed: use only a-z, 0-9, _ and -"


def _check_product_glob(value: str) -> str | None:
    if PRODUCT_GLOB_RE.fullmatch(value):
        return None
    return (f"{value!r} is not a PRODUCT glob: vendor/product[/bcdDevice] in lowercase hex "
            "without leading zeros, e.g. '3f0/4117/*'")


def _normalize_glob(value: str) -> str:
    return value if value.count("/") == 2 else value + "/*"


def _check_device(value: str) -> str | None:
    if not value.startswith("/"):
        return f"{value!r} must be an absolute path such as /dev/usb/lp0"
    if not value.isprintable():
        return f"{value!r} holds a control character"
    return None


def _check_device_node(value: str) -> str | None:
    """A `device` that is there must be a printer's node; one not there yet is fine (printers
    get plugged later). The service checks again at every scan and every open."""
    try:
        mode = os.stat(value).st_mode
    except OSError:
        return None
    return node_refusal(Path(value), mode)


def _check_firmware(value: str) -> str | None:
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


def _optional_path(value: str | None) -> Path | None:
    return Path(value) if value else None


def _check_metrics_file(value: str) -> str | None:
    if not value.startswith("/"):
        return f"{value!r} must be an absolute path"
    if not value.endswith(".prom") or value.endswith("/.prom"):
        return (f"{value!r} must end in .prom: node_exporter's textfile collector reads only "
                "those files")
    return None


def _check_listen(value: str) -> str | None:
    try:
        split_listen(value)
    except ValueError as exc:
        return (f"{value!r}: {exc} (ADDRESS:PORT with an IP address, e.g. '127.0.0.1:8631' "
                "or '[::]:8631')")
    return None


def _check_address(value: str) -> str | None:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return f"{value!r} is not an IP address (e.g. '::', '0.0.0.0' or '192.168.1.1')"
    return None


def _check_network(value: str) -> str | None:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return f"{value!r} is not an address or network (e.g. '192.168.1.0/24' or '::1')"
    return None
