"""The configuration loader (SPEC §3) and `supervisorctl check-config` (SPEC §2)."""

from __future__ import annotations

import dataclasses
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Any

import pytest

from supervisor.config.loader import load_settings
from supervisor.config.settings import (
    ConfigError,
    DaemonSettings,
    PrinterSettings,
    Problem,
    Settings,
)
from supervisor.config.tomlform import parse_settings
from supervisor.config.uciform import parse_uci_settings, settings_to_uci
from supervisor.ctl.cli import main

# The example of SPEC §3, verbatim.
SPEC_EXAMPLE = """\
[daemon]
control_socket = "/run/printer-supervisor/control.sock"
log_file = "/var/log/printer-supervisor/events.jsonl"  # "" = stderr only
log_max_bytes = 1048576      # size-capped rotation (tmpfs); 0 = leave rotation to logrotate
state_dir = "/var/lib/printer-supervisor"   # remembered port per printer identity
event_source = "udev"        # udev | kernel | none (none: only `supervisorctl notify`)
sysfs = "/sys"               # roots: tests point these at temporary trees
devfs = "/dev"
firmware_dirs = ["/lib/firmware/hp", "/usr/share/foo2zjs/firmware"]
auto = true                  # also serve printer-class devices that match no [[printer]]
base_port = 9100
bind = ["::"]                # dual-stack; e.g. ["0.0.0.0"] or ["192.168.1.1"]

[[printer]]
name = "laserjet"            # [a-z0-9_-]+, unique
match = "3f0/4117/*"         # PRODUCT glob (optional if device is given)
serial = "CNB1234567"        # optional: tells identical models apart
device = "/dev/usb/lp0"      # optional: fixed node (p910nd style); otherwise found from the event
port = 9101                  # default: remembered or next free from base_port
bidirectional = true
firmware = "auto"            # auto (catalog) | none | a file name looked up in firmware_dirs
allow = ["192.168.1.0/24", "::1"]   # default: everyone
idle_timeout = 300           # seconds a client may send nothing before its job is aborted
"""

MARK = "# <-"  # marks the line a problem must point at


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def marked_line(text: str) -> int:
    [line] = [n for n, s in enumerate(text.splitlines(), 1) if MARK in s]
    return line


def printer(*lines: str, name: str = "laserjet") -> str:
    return "\n".join(["[[printer]]", f'name = "{name}"', *lines]) + "\n"


def problems_of(text: str) -> list[Problem]:
    with pytest.raises(ConfigError) as caught:
        parse_settings(text)
    return caught.value.problems


# -- defaults --------------------------------------------------------------------------------


def test_no_file_at_the_default_path_means_the_spec_defaults(tmp_path: Path) -> None:
    settings = load_settings(tmp_path / "absent.toml", required=False)

    assert settings == Settings()
    assert settings.printers == ()
    assert settings.daemon == DaemonSettings(
        control_socket=Path("/run/printer-supervisor/control.sock"),
        log_file=Path("/var/log/printer-supervisor/events.jsonl"),
        log_max_bytes=1_048_576,
        state_dir=Path("/var/lib/printer-supervisor"),
        event_source="udev",
        sysfs=Path("/sys"),
        devfs=Path("/dev"),
        firmware_dirs=(Path("/lib/firmware/hp"), Path("/usr/share/foo2zjs/firmware")),
        auto=True,
        base_port=9100,
        bind=("::",),
    )


def test_an_empty_file_means_the_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, "# nothing configured\n")
    assert load_settings(path, required=True) == Settings(source=path)


def test_a_named_file_that_does_not_exist_is_an_error_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "missing.toml"
    with pytest.raises(ConfigError) as caught:
        load_settings(missing, required=True)

    [problem] = caught.value.problems
    assert "does not exist" in problem.message
    assert str(missing) in str(caught.value)


# -- valid files -----------------------------------------------------------------------------


def test_the_spec_example_parses_to_frozen_values(tmp_path: Path) -> None:
    path = write(tmp_path, SPEC_EXAMPLE)
    settings = load_settings(path, required=True)

    assert settings.source == path
    assert settings.daemon == Settings().daemon  # the example spells out the defaults
    assert settings.daemon.bind == ("::",)
    assert settings.printers == (
        PrinterSettings(
            name="laserjet",
            match="3f0/4117/*",
            serial="CNB1234567",
            device=Path("/dev/usb/lp0"),
            port=9101,
            bidirectional=True,
            firmware="auto",
            allow=(IPv4Network("192.168.1.0/24"), IPv6Network("::1/128")),
            idle_timeout=300.0,
        ),
    )
    [laserjet] = settings.printers
    assert isinstance(laserjet.idle_timeout, float)
    assert not laserjet.is_static


@pytest.mark.parametrize(
    ("target", "attribute"),
    [("settings", "printers"), ("daemon", "base_port"), ("printer", "port")],
)
def test_settings_are_frozen(target: str, attribute: str) -> None:
    settings = parse_settings(SPEC_EXAMPLE)
    obj = {"settings": settings, "daemon": settings.daemon, "printer": settings.printers[0]}
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(obj[target], attribute, None)


@pytest.mark.parametrize(
    ("line", "attribute", "expected"),
    [
        ('log_file = ""', "log_file", None),
        ("log_max_bytes = 0", "log_max_bytes", 0),
        ('event_source = "kernel"', "event_source", "kernel"),
        ('event_source = "none"', "event_source", "none"),
        ('sysfs = "/tmp/sys"', "sysfs", Path("/tmp/sys")),
        ('firmware_dirs = ["/opt/fw"]', "firmware_dirs", (Path("/opt/fw"),)),
        ("auto = false", "auto", False),
        ("base_port = 9200", "base_port", 9200),
        ('bind = ["0.0.0.0", "192.168.1.1"]', "bind", ("0.0.0.0", "192.168.1.1")),
        ('mdns = "off"', "mdns", "off"),
        ('mdns = "umdns"', "mdns", "umdns"),
        ('location = "Room 101, 1st floor"', "location", "Room 101, 1st floor"),
        ('metrics_file = "/var/lib/prometheus/node-exporter/printer_supervisor.prom"',
         "metrics_file", Path("/var/lib/prometheus/node-exporter/printer_supervisor.prom")),
        ('http_listen = "127.0.0.1:8631"', "http_address", ("127.0.0.1", 8631)),
        ('http_listen = "[::]:8631"', "http_address", ("::", 8631)),
        ('http_listen = "[fe80::1%eth0]:1"', "http_address", ("fe80::1%eth0", 1)),
        ('http_allow = ["192.168.1.0/24", "::1"]', "http_allow",
         (IPv4Network("192.168.1.0/24"), IPv6Network("::1/128"))),
    ],
)
def test_daemon_values(line: str, attribute: str, expected: Any) -> None:
    settings = parse_settings(f"[daemon]\n{line}\n")
    assert getattr(settings.daemon, attribute) == expected


@pytest.mark.parametrize(
    ("line", "attribute", "expected"),
    [
        ('match = "3f0/4117"', "match", "3f0/4117/*"),  # bcdDevice defaults to any
        ('match = "3f0/4117/100"', "match", "3f0/4117/100"),
        ('match = "3f0/*"', "match", "3f0/*/*"),
        ('device = "/dev/usb/lp1"', "device", Path("/dev/usb/lp1")),
        ("bidirectional = false", "bidirectional", False),
        ('firmware = "none"', "firmware", "none"),
        ('firmware = "sihp1020.dl"', "firmware", "sihp1020.dl"),
        ('firmware = "/opt/fw/sihp1020.dl"', "firmware", "/opt/fw/sihp1020.dl"),
        ('allow = ["192.168.1.7/24"]', "allow", (IPv4Network("192.168.1.0/24"),)),
        ('allow = ["10.0.0.1"]', "allow", (IPv4Network("10.0.0.1/32"),)),
        ("idle_timeout = 2.5", "idle_timeout", 2.5),
        ("port = 9105", "port", 9105),
        ("max_clients = 4", "max_clients", 4),
        ("max_clients_per_address = 1", "max_clients_per_address", 1),
        ("mdns = false", "mdns", False),
        ('mdns_name = "Drucker im Flur"', "mdns_name", "Drucker im Flur"),
        ('location = "Hall"', "location", "Hall"),
    ],
)
def test_printer_values(line: str, attribute: str, expected: Any) -> None:
    [p] = parse_settings(printer('serial = "CNB1"', line)).printers
    assert getattr(p, attribute) == expected


def test_a_printer_with_only_a_device_is_static() -> None:
    [p] = parse_settings(printer('device = "/dev/usb/lp0"')).printers
    assert p.is_static
    assert (p.match, p.serial, p.port) == (None, None, None)


# -- invalid files ---------------------------------------------------------------------------

# (configuration with MARK on the offending line, key text, printer name or None, allowed text)
INVALID = [
    pytest.param('[daemon]\nbase_port = = 1  # <-\n', "syntax", None, "TOML", id="syntax"),
    pytest.param('colour = "blue"  # <-\n[daemon]\n', "colour", None, "[daemon] and [[printer]]",
                 id="unknown-top-level-key"),
    pytest.param('[daemon]\nauto = true\n[web]  # <-\nport = 80\n', "web", None,
                 "[daemon] and [[printer]]", id="unknown-top-level-table"),
    pytest.param('[printer]  # <-\nname = "laserjet"\n', "printer", None, "[[printer]]",
                 id="printer-not-an-array"),
    pytest.param('[daemon]\nevent_sorce = "udev"  # <-\n', "event_sorce", None, "event_source",
                 id="unknown-daemon-key"),
    pytest.param(printer('match = "3f0/4117/*"', "prot = 9101  # <-"), "prot", "laserjet",
                 "port", id="unknown-printer-key"),
    pytest.param('[daemon]\nevent_source = "pyudev"  # <-\n', "event_source", None,
                 "udev, kernel, none", id="event_source"),
    pytest.param("[daemon]\nbase_port = 0  # <-\n", "base_port", None, "1 to 65000",
                 id="base_port-0"),
    pytest.param("[daemon]\nbase_port = 70000  # <-\n", "base_port", None, "1 to 65000",
                 id="base_port-70000"),
    pytest.param('[daemon]\nbase_port = "9100"  # <-\n', "base_port", None, "integer",
                 id="base_port-string"),
    pytest.param("[daemon]\nbase_port = true  # <-\n", "base_port", None, "integer",
                 id="base_port-bool"),
    pytest.param("[daemon]\nlog_max_bytes = -1  # <-\n", "log_max_bytes", None, "from 0",
                 id="log_max_bytes-negative"),
    pytest.param('[daemon]\nbind = ["localhost"]  # <-\n', "bind", None, "IP address",
                 id="bind-not-an-ip"),
    pytest.param("[daemon]\nbind = []  # <-\n", "bind", None, "at least one",
                 id="bind-empty"),
    pytest.param('[[printer]]\nname = "LaserJet"  # <-\nmatch = "3f0/4117/*"\n', "name",
                 "LaserJet", "a-z, 0-9, _ and -", id="name-uppercase"),
    pytest.param('[[printer]]\nname = "laser jet"  # <-\nmatch = "3f0/4117/*"\n', "name",
                 "laser jet", "a-z, 0-9, _ and -", id="name-with-space"),
    pytest.param('[[printer]]  # <-\nmatch = "3f0/4117/*"\n', "name", "#1", "a-z, 0-9, _ and -",
                 id="name-missing"),
    pytest.param(printer('serial = "A"', name="a")
                 + '[[printer]]\nname = "a"  # <-\nserial = "B"\n',
                 "name", "a", "unique", id="name-duplicate"),
    pytest.param(printer('serial = "A"', "port = 9101", name="a")
                 + printer('serial = "B"', "port = 9101  # <-", name="b"),
                 "port", "b", "printer 'a'", id="port-duplicate"),
    pytest.param(printer('device = "/dev/usb/lp0"', name="a")
                 + printer('device = "/dev/usb/lp0"  # <-', name="b"),
                 "device", "b", "printer 'a'", id="static-device-duplicate"),
    pytest.param('[[printer]]  # <-\nname = "laserjet"\nport = 9101\n', "match", "laserjet",
                 "`serial` or `device`", id="no-match-serial-or-device"),
    pytest.param(printer('match = "3F0/4117/*"  # <-'), "match", "laserjet",
                 "lowercase hex without leading zeros", id="match-uppercase"),
    pytest.param(printer('match = "03f0/4117/*"  # <-'), "match", "laserjet",
                 "lowercase hex without leading zeros", id="match-leading-zero"),
    pytest.param(printer('match = "hp laserjet"  # <-'), "match", "laserjet",
                 "vendor/product[/bcdDevice]", id="match-garbage"),
    pytest.param(printer('device = "usb/lp0"  # <-'), "device", "laserjet", "absolute path",
                 id="device-relative"),
    pytest.param(printer('match = "3f0/4117/*"', 'firmware = "sub/dir.dl"  # <-'), "firmware",
                 "laserjet", "auto, none", id="firmware-subdir"),
    pytest.param(printer('match = "3f0/4117/*"', 'allow = ["::1", "192.168.1.0/33"]  # <-'),
                 "allow", "laserjet", "192.168.1.0/24", id="allow-bad-network"),
    pytest.param(printer('match = "3f0/4117/*"', "idle_timeout = 0  # <-"), "idle_timeout",
                 "laserjet", "greater than 0", id="idle_timeout-0"),
    pytest.param(printer('match = "3f0/4117/*"', "idle_timeout = -5  # <-"), "idle_timeout",
                 "laserjet", "greater than 0", id="idle_timeout-negative"),
    pytest.param(printer('match = "3f0/4117/*"', 'idle_timeout = "300"  # <-'), "idle_timeout",
                 "laserjet", "number", id="idle_timeout-string"),
    pytest.param(printer('match = "3f0/4117/*"', "stall_timeout = 0.5  # <-"),
                 "stall_timeout", "laserjet", "from 1 to 604800", id="stall_timeout-too-short"),
    pytest.param(printer('match = "3f0/4117/*"', 'stall_timeout = "60"  # <-'),
                 "stall_timeout", "laserjet", "number", id="stall_timeout-string"),
    pytest.param('[daemon]\nstall_timeout = 700000  # <-\n', "stall_timeout", None,
                 "from 1 to 604800", id="daemon-stall_timeout-too-long"),
    pytest.param(printer('match = "3f0/4117/*"', 'bidirectional = "yes"  # <-'),
                 "bidirectional", "laserjet", "true or false", id="bidirectional-yes"),
    pytest.param(printer('match = "3f0/4117/*"', "max_clients = 0  # <-"), "max_clients",
                 "laserjet", "from 1 to 4096", id="max_clients-0"),
    pytest.param(printer('match = "3f0/4117/*"', "max_clients_per_address = 5000  # <-"),
                 "max_clients_per_address", "laserjet", "from 1 to 4096",
                 id="max_clients_per_address-too-many"),
    pytest.param('[daemon]\nmdns = "zeroconf"  # <-\n', "mdns", None,
                 "auto, avahi, umdns, off", id="mdns-mode"),
    pytest.param('[daemon]\nmdns = true  # <-\n', "mdns", None,
                 "auto, avahi, umdns, off", id="mdns-mode-bool"),
    pytest.param('[daemon]\nlocation = "a\\nb"  # <-\n', "location", None,
                 "control character", id="location-newline"),
    pytest.param('[daemon]\nmetrics_file = "printer_supervisor.prom"  # <-\n', "metrics_file",
                 None, "absolute path", id="metrics_file-relative"),
    pytest.param('[daemon]\nmetrics_file = "/var/lib/x/metrics.txt"  # <-\n', "metrics_file",
                 None, "must end in .prom", id="metrics_file-not-prom"),
    pytest.param('[daemon]\nhttp_listen = "8631"  # <-\n', "http_listen", None,
                 "ADDRESS:PORT", id="http_listen-port-only"),
    pytest.param('[daemon]\nhttp_listen = "localhost:8631"  # <-\n', "http_listen", None,
                 "ADDRESS:PORT with an IP address", id="http_listen-name"),
    pytest.param('[daemon]\nhttp_listen = "::1:8631"  # <-\n', "http_listen", None,
                 "IPv6 address goes in brackets", id="http_listen-ipv6-bare"),
    pytest.param('[daemon]\nhttp_listen = "127.0.0.1:70000"  # <-\n', "http_listen", None,
                 "not from 1 to 65535", id="http_listen-port-range"),
    pytest.param('[daemon]\nhttp_allow = ["everyone"]  # <-\n', "http_allow", None,
                 "not an address or network", id="http_allow-garbage"),
    pytest.param('[daemon]\nhttp_listen = "[::]:9101"  # <-\n'
                 + printer('match = "3f0/4117/*"', "port = 9101"), "http_listen", None,
                 "also the port of printer 'laserjet'", id="http_listen-printer-port"),
    pytest.param(printer('match = "3f0/4117/*"', 'mdns = "yes"  # <-'), "mdns", "laserjet",
                 "true or false", id="printer-mdns-yes"),
    pytest.param(printer('match = "3f0/4117/*"', f'mdns_name = "{"é" * 32}"  # <-'),
                 "mdns_name", "laserjet", "64 bytes of UTF-8", id="mdns_name-too-long"),
    pytest.param(printer('match = "3f0/4117/*"', 'mdns_name = ""  # <-'), "mdns_name",
                 "laserjet", "non-empty", id="mdns_name-empty"),
    pytest.param(printer('serial = "A"', 'mdns_name = "Laser"', name="a")
                 + printer('serial = "B"', 'mdns_name = "LASER"  # <-', name="b"),
                 "mdns_name", "b", "printer 'a'", id="mdns_name-duplicate"),
]


@pytest.mark.parametrize(("text", "key", "printer_name", "allowed"), INVALID)
def test_invalid_config(text: str, key: str, printer_name: str | None, allowed: str) -> None:
    [problem] = problems_of(text)

    assert key in problem.key
    if printer_name is not None:
        assert f"'{printer_name}'" in problem.key
    assert allowed in problem.message
    assert problem.line == marked_line(text)


def test_every_problem_in_a_file_is_reported() -> None:
    text = (
        '[daemon]\nevent_source = "pyudev"\nbase_port = 0\n'
        + printer('match = "03f0/4117/*"', "idle_timeout = 0", name="a")
        + printer('serial = "B"', 'bidirectional = "yes"', name="b")
    )
    problems = problems_of(text)

    assert [(p.key, p.line) for p in problems] == [
        ("daemon: event_source", 2),
        ("daemon: base_port", 3),
        ("printer 'a': match", 6),
        ("printer 'a': idle_timeout", 7),
        ("printer 'b': bidirectional", 11),
    ]


# -- allow -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("allow", "client", "admitted"),
    [
        ([], "203.0.113.9", True),
        ([], "2001:db8::1", True),
        (["192.168.1.0/24"], "192.168.1.5", True),
        (["192.168.1.0/24"], "192.168.2.5", False),
        (["192.168.1.0/24"], "::ffff:192.168.1.5", True),
        (["192.168.1.0/24"], "::ffff:192.168.2.5", False),
        (["192.168.1.0/24", "::1"], "::1", True),
        (["192.168.1.0/24", "::1"], "::2", False),
        (["192.168.1.0/24", "::1"], "127.0.0.1", False),
        (["fe80::/64"], "fe80::1%eth0", True),
    ],
)
def test_allows(allow: list[str], client: str, admitted: bool) -> None:
    allow_line = "allow = [" + ", ".join(f'"{a}"' for a in allow) + "]"
    [p] = parse_settings(printer('serial = "A"', allow_line)).printers
    assert p.allows(client) is admitted


# -- supervisorctl check-config --------------------------------------------------------------

TWO_PRINTERS = SPEC_EXAMPLE + printer('device = "/dev/usb/lp3"', name="office")


def test_check_config_prints_the_effective_printers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, TWO_PRINTERS)

    assert main(["check-config", str(path)]) == 0

    out = capsys.readouterr().out
    assert f"{path}: valid" in out
    assert "printer laserjet: port 9101\n  device        /dev/usb/lp0\n" in out
    assert "printer office: port 9100 (assigned)\n  device        /dev/usb/lp3" in out
    assert "  mDNS/DNS-SD: auto (avahi if it is on the system bus, else umdns)\n" in out
    assert '  mdns          as "<model> @ <host>"\n' in out
    assert "  max_clients   32 waiting, 8 per address\n" in out


def test_check_config_says_where_the_metrics_go(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    textfile = tmp_path / "no-such-dir" / "printer_supervisor.prom"
    path = write(tmp_path, f'[daemon]\nmetrics_file = "{textfile}"\n'
                 'http_listen = "[::]:9100"\nhttp_allow = ["192.168.1.10"]\n'
                 + printer('serial = "A"', name="a"))
    assert main(["check-config", str(path)]) == 0
    out, err = capsys.readouterr()
    assert f"  metrics file: {textfile}\n" in out
    assert "  status page and /metrics: http://[::]:9100/ (allowed: 192.168.1.10/32)\n" in out
    assert "printer a: port 9101 (assigned)" in out  # 9100 is the status page's
    assert f"the directory {textfile.parent} does not exist" in err
    path = write(tmp_path, printer('serial = "A"', name="a"))
    assert main(["check-config", str(path)]) == 0
    assert "  metrics file: off\n  status page and /metrics: off\n" in capsys.readouterr().out


def test_check_config_says_what_is_announced_and_where(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, '[daemon]\nbind = ["127.0.0.1"]\nlocation = "Hall"\n'
                 + printer('serial = "A"', 'mdns_name = "Front desk"', name="a")
                 + printer('serial = "B"', "mdns = false", name="b"))
    assert main(["check-config", str(path)]) == 0
    out = capsys.readouterr().out
    assert ("  mDNS/DNS-SD: auto (avahi if it is on the system bus, else umdns); nothing is "
            'announced while bind is loopback only; location "Hall"\n') in out
    assert '  mdns          as "Front desk", location "Hall"\n' in out
    assert "  mdns          no (mdns = false)\n" in out


def test_check_config_reports_each_problem_with_key_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "[daemon]\nbase_port = 0\n" + printer('match = "03f0/4117/*"'))

    assert main(["check-config", str(path)]) == 2

    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"{path}:2: daemon: base_port: must be an integer from 1 to 65000" in captured.err
    assert f"{path}:5: printer 'laserjet': match: '03f0/4117/*' is not" in captured.err


@pytest.mark.parametrize(("text", "code"), [(TWO_PRINTERS, 0), ("[daemon]\nauto = 1\n", 2)],
                         ids=["valid", "invalid"])
def test_check_config_reads_the_file_named_by_the_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    text: str, code: int,
) -> None:
    path = write(tmp_path, text)
    monkeypatch.setenv("PRINTER_SUPERVISOR_CONFIG", str(path))

    assert main(["check-config"]) == code

    captured = capsys.readouterr()
    assert str(path) in (captured.out if code == 0 else captured.err)


def test_check_config_on_a_missing_file_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.toml"

    assert main(["check-config", str(missing)]) == 2

    err = capsys.readouterr().err
    assert f"{missing}: file: does not exist" in err


@pytest.mark.parametrize("bind", ['["::", "0.0.0.0"]', '["::", "192.168.1.1"]',
                                  '["127.0.0.1", "127.0.0.1"]'])
def test_bind_lists_that_could_never_listen_are_refused(bind: str) -> None:
    with pytest.raises(ConfigError) as refused:
        parse_settings(f"[daemon]\nbind = {bind}\n")
    (problem,) = refused.value.problems
    assert problem.key == "daemon: bind" and problem.line == 2


def test_stall_timeout_is_the_daemons_unless_a_printer_sets_its_own() -> None:
    settings = parse_settings(
        '[daemon]\nstall_timeout = 120\n\n[[printer]]\nname = "own"\nmatch = "3f0/4117/*"\n'
        'stall_timeout = 30\n\n[[printer]]\nname = "inherits"\nmatch = "3f0/517/*"\n')
    assert settings.daemon.stall_timeout == 120.0
    assert [p.stall_timeout for p in settings.printers] == [30.0, None]
    assert DaemonSettings().stall_timeout == 60.0 and PrinterSettings("x").stall_timeout is None


def test_stall_timeout_in_uci_is_a_number_of_seconds() -> None:
    settings = parse_uci_settings("config daemon 'daemon'\n\toption stall_timeout '90'\n\n"
                                  "config printer 'lj'\n\toption match '3f0/4117/*'\n"
                                  "\toption stall_timeout '15'\n")
    assert (settings.daemon.stall_timeout, settings.printers[0].stall_timeout) == (90.0, 15.0)
    written = settings_to_uci(settings)
    assert "option stall_timeout '90'" in written and "option stall_timeout '15'" in written
    with pytest.raises(ConfigError, match="stall_timeout: must be a number"):
        parse_uci_settings("config printer 'lj'\n\toption match '3f0/4117/*'\n"
                           "\toption stall_timeout 'soon'\n")
