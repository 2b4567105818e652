"""The settings: what a configuration file tells the service, as frozen types, and its errors.

Both forms of the file (TOML, OpenWrt's UCI) become these; every part of the service reads them.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from supervisor.core.stall import DEFAULT_STALL_TIMEOUT_S
from supervisor.protocol import DEFAULT_CONFIG, DEFAULT_UCI

DEFAULT_CONFIG_PATH = Path(DEFAULT_CONFIG)
DEFAULT_UCI_PATH = Path(DEFAULT_UCI)

EventSource = Literal["udev", "kernel", "none"]
MdnsMode = Literal["auto", "avahi", "umdns", "off"]
MDNS_MODES: tuple[MdnsMode, ...] = ("auto", "avahi", "umdns", "off")
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


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
    stall_timeout: float = DEFAULT_STALL_TIMEOUT_S  # printers that do not set their own

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
    # Seconds the printer may take no data while a job waits before it counts as stalled;
    # None: [daemon] stall_timeout.
    stall_timeout: float | None = None

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


