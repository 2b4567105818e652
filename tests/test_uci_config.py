"""OpenWrt's form of the configuration: /etc/config/printer-supervisor read and written."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from harness import ServiceThread, daemon_defaults, free_port, send_job
from test_config import SPEC_EXAMPLE

from supervisor.config import loader as config
from supervisor.config.loader import load_settings
from supervisor.config.settings import ConfigError
from supervisor.config.tomlform import parse_settings
from supervisor.config.uci import parse_uci
from supervisor.config.uciform import parse_uci_settings, settings_to_uci
from supervisor.ctl import client
from supervisor.ctl.cli import main
from supervisor.lab.virtual import VirtualPrinter

# Written as OpenWrt's own files are: a comment header, tabs, every quoting style, a `list`,
# an anonymous section, options in any order.
OPENWRT_STYLE = """\
# /etc/config/printer-supervisor
config daemon 'daemon'
\toption control_socket '/var/run/printer-supervisor/control.sock'
\toption log_max_bytes 262144
\toption event_source "none"
\tlist firmware_dirs '/lib/firmware/hp'
\tlist firmware_dirs /usr/share/foo2zjs/firmware
\tlist bind '::'
\toption location 'Room 101, it'\\''s upstairs'
\toption mdns 'auto'

config printer 'laserjet'
\toption match '3f0/4117/*'   # the LaserJet 1018
\toption serial 'CNB1234567'
\toption port '9101'
\toption bidirectional '1'
\tlist allow '192.168.1.0/24'
\tlist allow '::1'
\toption idle_timeout '2.5'
\toption mdns_name 'Front desk'

config printer
\toption name 'office-2'
\toption device '/dev/usb/lp1'
\toption bidirectional 'no'
\toption mdns 'off'
\toption allow '10.0.0.0/8'
"""


def test_an_openwrt_style_file_means_what_it_says() -> None:
    settings = parse_uci_settings(OPENWRT_STYLE)
    d = settings.daemon
    assert d.control_socket == Path("/var/run/printer-supervisor/control.sock")
    assert (d.log_max_bytes, d.event_source, d.bind) == (262144, "none", ("::",))
    assert d.firmware_dirs == (Path("/lib/firmware/hp"), Path("/usr/share/foo2zjs/firmware"))
    assert d.location == "Room 101, it's upstairs"
    laserjet, office = settings.printers
    assert (laserjet.name, laserjet.match, laserjet.serial, laserjet.port) == (
        "laserjet", "3f0/4117/*", "CNB1234567", 9101)
    assert [str(n) for n in laserjet.allow] == ["192.168.1.0/24", "::1/128"]
    assert (laserjet.idle_timeout, laserjet.mdns_name) == (2.5, "Front desk")
    assert (office.name, office.device, office.bidirectional, office.mdns) == (
        "office-2", Path("/dev/usb/lp1"), False, False)
    assert [str(n) for n in office.allow] == ["10.0.0.0/8"]  # one `option` for a list
    assert settings.warnings == ()


def test_unknown_options_and_sections_are_warned_about_not_refused() -> None:
    settings = parse_uci_settings("config daemon\n\toption colour blue\n"
                                  "config printer 'lj'\n\toption device /dev/usb/lp0\n"
                                  "\toption speed fast\nconfig web\n\toption port 80\n")
    assert [p.name for p in settings.printers] == ["lj"]
    assert len(settings.warnings) == 3
    colour, speed, web = settings.warnings
    assert colour.startswith("printer-supervisor.@daemon[0] (line 2): unknown option 'colour'")
    assert speed.startswith("printer-supervisor.lj (line 5): unknown option 'speed'")
    assert "section type 'web' ignored" in web


@pytest.mark.parametrize(("text", "key", "line", "message"), [
    ("config daemon\n\toption base_port 'ninety'\n", "@daemon[0]: base_port", 2,
     "must be an integer"),
    ("config daemon\n\toption base_port '70000'\n", "daemon: base_port", 2, "1 to 65000"),
    ("config daemon\n\toption auto 'maybe'\n", "@daemon[0]: auto", 2, "must be 1 or 0"),
    ("config printer 'lj'\n\toption device /dev/usb/lp0\n\tlist port 1\n\tlist port 2\n",
     "lj: port", 4, "single `option`"),
    ("config printer 'lj'\n\toption match 'HP'\n", "printer 'lj': match", 2, "PRODUCT glob"),
    ("config printer\n\toption match '3f0/*'\n", "@printer[0]: name", 1,
     "anonymous printer section needs `option name`"),
    ("config daemon\nconfig daemon\n", "@daemon[1]", 2, "second `config daemon`"),
    ("config printer 'lj'\n\toption port '9100\n", "syntax", 2, "unterminated"),
])
def test_problems_name_the_section_option_and_line(text: str, key: str, line: int,
                                                   message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_uci_settings(text)
    [problem] = caught.value.problems
    assert key in problem.key and message in problem.message and problem.line == line


def test_no_log_file_is_said_off() -> None:
    settings = parse_uci_settings("config daemon\n\toption log_file 'off'\n")
    assert settings.daemon.log_file is None
    assert "option log_file 'off'" in settings_to_uci(settings)


def test_toml_to_uci_to_toml_keeps_every_setting() -> None:
    text = SPEC_EXAMPLE + (
        '\n[[printer]]\nname = "office-2"\ndevice = "/dev/usb/lp3"\nbidirectional = false\n'
        'mdns = false\nmdns_name = "It\'s \\"quoted\\""\nlocation = "Hall"\nmax_clients = 4\n'
        'idle_timeout = 2.5\n')
    text = text.replace("[daemon]\n", '[daemon]\nmdns = "umdns"\nlocation = "Room 1"\n'
                        'metrics_file = "/var/prometheus/printer_supervisor.prom"\n'
                        'http_listen = "[::]:8631"\nhttp_allow = ["192.168.1.0/24", "::1"]\n', 1)
    text = text.replace('log_file = "/var/log/printer-supervisor/events.jsonl"',
                        'log_file = ""').replace("auto = true ", "auto = false")
    from_toml = parse_settings(text)
    written = settings_to_uci(from_toml)
    back = parse_uci_settings(written)
    assert dataclasses.replace(back, source=None) == from_toml
    assert "config printer 'laserjet'" in written and "\toption name 'office-2'" in written


def test_check_config_recognises_uci_by_its_content(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    good, bad = tmp_path / "printer-supervisor", tmp_path / "broken"
    good.write_text(OPENWRT_STYLE, encoding="utf-8")
    bad.write_text("config printer 'lj'\n\toption device /dev/usb/lp0\n\toption port x\n")
    assert main(["check-config", str(good)]) == 0
    assert "printer laserjet: port 9101" in capsys.readouterr().out
    assert main(["check-config", str(bad)]) == 2
    assert f"{bad}:3: printer-supervisor.lj: port: must be an integer" in capsys.readouterr().err


def test_config_toml_wins_over_uci_where_both_exist(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    toml, uci = tmp_path / "config.toml", tmp_path / "printer-supervisor"
    monkeypatch.setattr(config, "DEFAULT_CONFIG_PATH", toml)
    monkeypatch.setattr(config, "DEFAULT_UCI_PATH", uci)
    assert config.config_path(None, {}) == (toml, False)
    uci.write_text("config daemon\n")
    assert config.config_path(None, {}) == (uci, False)
    toml.write_text("[daemon]\n")
    assert config.config_path(None, {}) == (toml, False)


def test_the_client_finds_the_socket_in_a_uci_file(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PRINTER_SUPERVISOR_SOCKET", raising=False)
    path = tmp_path / "printer-supervisor"
    path.write_text(OPENWRT_STYLE)
    assert client.socket_path(None, str(path)) == "/var/run/printer-supervisor/control.sock"
    path.write_text("config daemon\n\toption event_source none\n")
    assert client.socket_path(None, str(path)) == "/run/printer-supervisor/control.sock"


def test_the_service_runs_and_reloads_from_uci(tmp_path: Path,
                                               printer: VirtualPrinter) -> None:
    port = free_port()
    daemon = daemon_defaults(tmp_path)
    uci = tmp_path / "printer-supervisor"

    def write(extra: str) -> None:
        lines = ["config daemon"]
        for key, value in daemon.items():
            items = value if isinstance(value, list) else [value]
            kind = "list" if isinstance(value, list) else "option"
            lines += [f"\t{kind} {key} '{item}'" for item in items]
        lines += ["", "config printer 'lp'", f"\toption device '{printer.path}'",
                  f"\toption port '{port}'", extra]
        uci.write_text("\n".join(lines) + "\n", encoding="utf-8")

    write("\toption mdns_name 'Before'")
    service = ServiceThread(tmp_path, [], **daemon)
    service.config = uci  # the service reads this file instead of the TOML one
    service.start()
    try:
        assert service.service is not None and service.service.settings.source == uci
        service.log.wait_for("listener_started", printer="lp")
        send_job(port, b"from uci")
        assert printer.wait_for_bytes(8) == b"from uci"
        write("\toption idle_timeout 'soon'")  # broken: the running configuration stays
        service.reload()
        failed = service.log.wait_for("config_reloaded", ok=False)
        assert f"{uci}:" in failed["error"] and "idle_timeout: must be a number" in failed["error"]
        write("\toption mdns_name 'After'\n\toption colour 'blue'")
        service.reload()
        service.log.wait_for("config_reloaded", ok=True)
        assert "unknown option 'colour'" in service.log.wait_for("config_warning")["warning"]
        assert service.service.settings.printers[0].mdns_name == "After"
    finally:
        service.stop()


def test_load_settings_reads_either_form(tmp_path: Path) -> None:
    uci, toml = tmp_path / "a", tmp_path / "b"
    uci.write_text("# comment\n\nconfig daemon\n\toption base_port 9300\n")
    toml.write_text("[daemon]\nbase_port = 9300\n")
    assert load_settings(uci, required=True).daemon == load_settings(toml, required=True).daemon


@pytest.mark.parametrize("text", [
    "config daemon 'daemon'\n\toption control_socket '/var/run/x.sock'\n",
    'config daemon\n\toption control_socket "/a b.sock"  # the socket\n',
    "config daemon\n\toption\tcontrol_socket\t/bare.sock\n",
    "# control_socket in a comment\nconfig daemon\n\toption log_file off\n",
])
def test_the_socket_line_reader_agrees_with_the_uci_parser(text: str) -> None:
    [daemon] = parse_uci(text)
    assert client.control_socket_uci_line(text.encode()) == daemon.options.get("control_socket")


@pytest.mark.parametrize("text", [
    "config printer 'x'\n\toption control_socket '/no'\n",
    "config daemon\n\toption control_socket 'it'\\''s'\n",
    'config daemon\n\toption control_socket "/a\\\\b"\n',
    "config daemon\n\tlist control_socket /x\n",
    "config daemon\n\toption control_socket /a; option control_socket /b\n",
    "config daemon\n\toption control_socket /a\n\toption control_socket /b\n",
])
def test_anything_else_goes_to_the_uci_parser(text: str) -> None:
    assert client.control_socket_uci_line(text.encode()) is client.UNSURE
