"""OpenWrt's form of the configuration: /etc/config/printer-supervisor read and written."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import pytest
from harness import ServiceThread, daemon_defaults, free_port, send_job
from test_config import SPEC_EXAMPLE

from supervisor.config import loader as config
from supervisor.config.loader import load_settings
from supervisor.config.settings import ConfigError
from supervisor.config.tomlform import parse_settings
from supervisor.config.uci import UciError, parse_uci, quote
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
    "c daemon\n\to control_socket /short.sock\n",
    "config daemon\n\toption control_socket /a\u00a0b.sock # NBSP: part of the word\n",
    "config daemon\n\toption control_socket '/q.sock'# a comment glued\n",
    "config daemon\n\toption control_socket ''\n",
    "config daemon\n\toption control_socket /a\n\toption control_socket ''\n",
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
    # A line that only looks like the option: inside a quoted value, after a `;`, in a second
    # daemon section (the parser takes the first), past CR-only line ends or a NUL.
    "config daemon\n\toption location 'a\n\toption control_socket /no\n'\n",
    "config daemon\n\toption location it's\n\toption control_socket /no\n'\n",
    "config daemon 'd'\n\toption auto 1 ; config printer p\n\toption control_socket /no\n",
    "config daemon 'a'\nconfig daemon 'b'\n\toption control_socket /no\n",
    "config daemon\r\toption control_socket /no\r",
    "config daemon\n\toption control_socket /a\0\n",
    "config daemon\n\toption control_socket /a /b\n",
    "config daemon\n\toption control_socket '/a' /b\n",
    "config daemon\n\toption 'control_socket' /a\n",
    "config daemon\n\toption control_socket /a\\\n",
])
def test_anything_else_goes_to_the_uci_parser(text: str) -> None:
    assert client.control_socket_uci_line(text.encode()) is client.UNSURE
    try:
        sections = parse_uci(text)
    except UciError:
        return  # uci refuses it too: the client falls back to the default socket
    daemon = next((s for s in sections if s.type == "daemon"), None)
    assert daemon is None or daemon.options.get("control_socket") != "/no"


def test_the_shipped_openwrt_config_is_read_by_the_socket_line_reader() -> None:
    shipped = Path(__file__).resolve().parent.parent / "units/openwrt/printer-supervisor.config"
    assert client.control_socket_uci_line(shipped.read_bytes()) == (
        "/var/run/printer-supervisor/control.sock")


# -- libuci's verdicts -----------------------------------------------------------------------
# One table per way the reader once disagreed with OpenWrt's libuci (shared/reference/openwrt.md
# §1, measured with `uci show` on 643 files): what uci loads, or refuses with its reason and the
# line. Rows marked "file.c" follow from reading libuci's parser, not from that run.
@dataclass(frozen=True)
class Refused:
    reason: str  # uci's words, "Parse error (REASON)"
    line: int


Loads = dict[str, dict[str, object]]  # section (`uci show` name) → its options
Verdict = Loads | Refused


def read_by_uci_rules(text: str | bytes) -> Verdict:
    try:
        return {s.ref: dict(s.options) for s in parse_uci(text, "x")}
    except UciError as exc:
        return Refused(exc.message, exc.line)


def assert_verdict(text: str | bytes, expected: Verdict) -> None:
    got = read_by_uci_rules(text)
    if isinstance(expected, Refused):
        assert isinstance(got, Refused), got
        assert expected.reason in got.reason and got.line == expected.line, got
    else:
        assert got == expected


@pytest.mark.parametrize(("text", "expected"), [
    (b"config t\n\toption v 'a\r\nb'\n", {"x.@t[0]": {"v": "a\r\nb"}}),
    (b"config t\n\toption v \"a\rb\"\n", {"x.@t[0]": {"v": "a\rb"}}),
    (b"config t\r\n\toption v x\r\n", {"x.@t[0]": {"v": "x"}}),  # CR outside: whitespace
    (b"config t\n\toption v a\rb\n", Refused("too many arguments", 2)),
    (b"config t\r\toption v x\r", Refused("too many arguments", 1)),  # CR-only: one line
], ids=["crlf-in-quotes", "cr-in-quotes", "crlf-outside", "cr-splits-a-bare-word", "cr-only"])
def test_1_cr_is_data_in_quotes_and_whitespace_outside(tmp_path: Path, text: bytes,
                                                       expected: Verdict) -> None:
    assert_verdict(text, expected)
    path = tmp_path / "printer-supervisor"  # the loader reads the file's bytes as they are
    path.write_bytes(text.replace(b"config t", b"config daemon").replace(b"v", b"location"))
    if isinstance(expected, Refused):
        with pytest.raises(ConfigError, match=expected.reason):
            load_settings(path, required=True)
    elif "\r" in expected["x.@t[0]"]["v"]:  # a CR reaches the check, as any control character
        with pytest.raises(ConfigError, match=r"location: 'a\\r(\\n)?b' holds a control"):
            load_settings(path, required=True)
    else:
        assert load_settings(path, required=True).daemon.location == "x"


@pytest.mark.parametrize(("text", "expected"), [
    ("config t\n\toption v Café\u00a0Bar\n", {"x.@t[0]": {"v": "Café\u00a0Bar"}}),
    ("config t\n\toption v a\u2028b\n", {"x.@t[0]": {"v": "a\u2028b"}}),
    ("config t\n\toption v a\u3000b\n", {"x.@t[0]": {"v": "a\u3000b"}}),
    ("config t\n\toption v a\x1c\x1d\x1e\x1fb\n", {"x.@t[0]": {"v": "a\x1c\x1d\x1e\x1fb"}}),
    ("config t\n\toption v a\vb\n", Refused("too many arguments", 2)),
    ("config t\n\toption v a\fb\n", Refused("too many arguments", 2)),
    ("config t\n\v\f option v a\v\n", {"x.@t[0]": {"v": "a"}}),
], ids=["nbsp", "u2028", "u3000", "x1c-x1f", "vt-splits", "ff-splits", "leading-vt-ff"])
def test_2_whitespace_is_c_isspace(text: str, expected: Verdict) -> None:
    assert_verdict(text, expected)


@pytest.mark.parametrize(("text", "uci"), [
    ("# a comment\vconfig daemon\n", False),  # VT ends no line: all of it is the comment
    ("\u3000config daemon\n", False),  # U+3000 is no whitespace: `\u3000config` is no command
    ("\x1cconfig daemon\n", False),
    ("\v\f config daemon\n", True),
    ("c daemon\n\to base_port 9300\n", True),  # uci's short form (§1.11)
    ("p printer-supervisor\n", True),
    ("c = 1\n", False),  # TOML
])
def test_2_the_toml_uci_decision_splits_as_uci_does(text: str, uci: bool) -> None:
    assert config.is_uci(text) is uci
    assert config.is_uci(text.encode()) is uci
    assert client._is_uci(text.encode()) is uci


@pytest.mark.parametrize(("text", "expected"), [
    ("config t\n\toption location Office 1st floor\n", Refused("too many arguments", 2)),
    ("config t\n\toption port 9100 9101\n", Refused("too many arguments", 2)),
    ("config printer p extra\n", Refused("too many arguments", 1)),
    ("config t\n\tlist allow a b\n", Refused("too many arguments", 2)),
    ("config t\n\toption location 'Office 1st floor' # where\n",
     {"x.@t[0]": {"location": "Office 1st floor"}}),
], ids=["value-with-spaces", "two-ports", "config-extra", "list-extra", "quoted"])
def test_3_extra_words_refuse_the_whole_file(text: str, expected: Verdict) -> None:
    assert_verdict(text, expected)


def test_3_a_value_with_spaces_is_a_syntax_problem_with_its_section_option_and_line() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_uci_settings("config daemon\n\toption base_port 9200\n"
                           "\toption location Office 1st floor\n")
    [problem] = caught.value.problems
    assert (problem.key, problem.line) == ("syntax", 3)
    assert "printer-supervisor.@daemon[0]: location" in problem.message
    assert "too many arguments" in problem.message


@pytest.mark.parametrize(("text", "expected"), [
    ("config t\n\toption mdns-name x\n", Refused("invalid character in name field", 2)),
    ("config t\n\toption 'a.b' x\n", Refused("invalid character in name field", 2)),
    ("config printer-x\n", {"x.@printer-x[0]": {}}),
    ("config 'a.b'\n", {"x.@a.b[0]": {}}),
    ("config 't~!'\n", {"x.@t~![0]": {}}),
    ("config 'café'\n", Refused("invalid character in type field", 1)),  # file.c
    ("config t 'a-b'\n", Refused("invalid character in name field", 1)),
    ("package 'a.b'\nconfig t\n", Refused("invalid character in name field", 1)),
    ("package\nconfig t\n", Refused("package", 1)),
    ("package \nconfig t\n", Refused("package", 1)),
    ("package x y\nconfig t\n", Refused("too many arguments", 1)),
    ("package printer-supervisor\nconfig t\n", {"x.@t[0]": {}}),
], ids=["option-dash", "option-dot", "type-dash", "type-dot", "type-punctuation",
        "type-not-ascii", "name-dash", "package-dot", "package-bare", "package-empty",
        "package-extra", "package-dash"])
def test_4_names_types_and_package_lines(text: str, expected: Verdict) -> None:
    assert_verdict(text, expected)


def test_4_a_section_type_uci_loads_is_warned_about_not_refused() -> None:
    settings = parse_uci_settings("config daemon\nconfig printer-x\n\toption port 1\n")
    assert [w for w in settings.warnings if "section type 'printer-x' ignored" in w]


def _anonymous(position: int, type_: str) -> str:
    """uci's name for an anonymous section (list.c: cfg, position, djb hash of the type)."""
    digest = 5381
    for byte in type_.encode():
        digest = (digest * 33 + byte) & 0xFFFFFFFF
    return f"cfg{position:02x}{digest & 0xFFFF:04x}"


@pytest.mark.parametrize(("text", "expected"), [
    ("config printer p\n\toption port 1\nconfig daemon p\n",
     Refused("section of different type overwrites prior section with same name", 3)),
    ("config printer p\n\toption port 1\nconfig printer p\n\toption device /d\n",
     {"x.p": {"port": "1", "device": "/d"}}),
    (f"config printer\nconfig daemon {_anonymous(1, 'printer')}\n",  # file.c
     Refused("section of different type overwrites prior section with same name", 2)),
    (f"config printer\nconfig printer {_anonymous(1, 'printer')}\n\toption port 1\n",  # file.c
     {"x.@printer[0]": {"port": "1"}}),
], ids=["other-type", "same-type-merges", "anonymous-other-type", "anonymous-same-type"])
def test_5_a_named_section_reopened_with_another_type_is_an_error(text: str,
                                                                  expected: Verdict) -> None:
    assert_verdict(text, expected)


@pytest.mark.parametrize(("text", "expected"), [
    ("config t\n\toption port 1\n\toption port ''\n", {"x.@t[0]": {"port": "1"}}),
    ("config t\n\tlist allow a\n\toption allow ''\n", {"x.@t[0]": {"allow": ("a",)}}),
    ("config t\n\toption port ''\n", {"x.@t[0]": {}}),
    ("config t\n\toption port\n", {"x.@t[0]": {}}),
    ("config t\n\toption port 1\n\toption port # none\n", {"x.@t[0]": {"port": "1"}}),
    ("config t\n\tlist allow a\n\tlist allow ''\n", {"x.@t[0]": {"allow": ("a", "")}}),
], ids=["option", "list", "alone", "no-value", "comment-for-value", "empty-list-item"])
def test_6_an_empty_option_in_a_file_changes_nothing(text: str, expected: Verdict) -> None:
    assert_verdict(text, expected)


def test_6_an_empty_option_keeps_the_port_in_the_settings() -> None:
    settings = parse_uci_settings("config printer 'lj'\n\toption device /dev/usb/lp0\n"
                                  "\toption port 9101\n\toption port ''\n")
    assert settings.printers[0].port == 9101


@pytest.mark.parametrize(("text", "expected"), [
    ("config t\n\toption location 'one' ; option port 9101\n",
     {"x.@t[0]": {"location": "one", "port": "9101"}}),
    ("config t\n\toption port 9104;option location x\n", {"x.@t[0]": {"port": "9104"}}),
    ("config t\n\toption location a;b\n", {"x.@t[0]": {"location": "a"}}),
    ("config t\n; option port 1\n", Refused("invalid command", 2)),
    ("config t\n\toption location 'one';option port 9101\n",  # file.c: after a quote, it splits
     {"x.@t[0]": {"location": "one", "port": "9101"}}),
    ("config t ; option port 1\n", Refused("too many arguments", 1)),  # file.c: `;` was the name
    ("config t\n\toption port 1 ;\n", Refused("invalid command", 2)),  # file.c: LF is no command
], ids=["after-whitespace", "glued-drops-the-rest", "glued-ends-the-value", "line-start",
        "glued-after-quote", "in-the-name-slot", "at-line-end"])
def test_7_semicolons_as_uci_reads_them(text: str, expected: Verdict) -> None:
    assert_verdict(text, expected)


@pytest.mark.parametrize(("text", "expected"), [
    ("'config' printer p\n", Refused("invalid command", 1)),
    ("config t\n\t\"option\" port 1\n", Refused("invalid command", 2)),
    ("config t\n\t\\option port 1\n", Refused("invalid command", 2)),
    ("config\vt\n", Refused("invalid command", 1)),  # file.c: only space or tab ends it
    ("config\n", Refused("invalid command", 1)),
], ids=["single-quoted", "double-quoted", "escaped", "vt-after", "alone"])
def test_8_the_command_word_is_literal(text: str, expected: Verdict) -> None:
    assert_verdict(text, expected)


@pytest.mark.parametrize(("text", "expected"), [
    (b"config t\n\toption port 1\x00junk\n", {"x.@t[0]": {"port": "1"}}),
    (b"config t\n\toption port 1\x00junk\n\n\toption device /d\n",
     {"x.@t[0]": {"port": "1", "device": "/d"}}),
    # file.c: the read after the NUL goes on with the next line, joined to this one
    (b"config t\n\toption port 1\x00junk\n\toption device /d\n", Refused("too many arguments", 2)),
    (b"config t\n\x00option port 1\n\toption device /d\n", {"x.@t[0]": {"device": "/d"}}),
], ids=["ends-the-value", "then-a-blank-line", "joins-the-next-line", "at-line-start"])
def test_9_nul_ends_a_value(text: bytes, expected: Verdict) -> None:
    assert_verdict(text, expected)


@pytest.mark.parametrize(("text", "expected"), [
    (b"config t\n\toption location 'Caf\xe9'\n", {"x.@t[0]": {"location": "Caf\ufffd"}}),
    (b"config t\n\toption location Caf\xe9 # Latin-1\n", {"x.@t[0]": {"location": "Caf\ufffd"}}),
    (b"config t\n\tlist v '\xff\xfe'\n\tlist v ok\n", {"x.@t[0]": {"v": ("\ufffd\ufffd", "ok")}}),
    ("config t\n\toption location 'Café'\n".encode(), {"x.@t[0]": {"location": "Café"}}),
], ids=["quoted", "bare", "list", "utf8"])
def test_10_bytes_that_are_not_utf8_load(tmp_path: Path, text: bytes, expected: Verdict) -> None:
    assert_verdict(text, expected)
    path = tmp_path / "printer-supervisor"
    path.write_bytes(b"config daemon\n\toption location 'Caf\xe9, 1st floor'\n"
                     b"\toption control_socket '/run/x\xff.sock'\n")
    settings = load_settings(path, required=True)
    assert settings.daemon.location == "Caf\ufffd, 1st floor"
    assert settings.daemon.control_socket == Path("/run/x\ufffd.sock")
    assert client.socket_path(None, str(path)) == "/run/x\ufffd.sock"  # the service's path


@pytest.mark.parametrize(("text", "expected"), [
    ("c t 'n'\n\to port 1\n\tl allow a\n\tl allow b\n",
     {"x.n": {"port": "1", "allow": ("a", "b")}}),
    ("p x\nc t\n", {"x.@t[0]": {}}),
    ("co t\n", Refused("invalid command", 1)),
], ids=["c-o-l", "p", "only-one-letter"])
def test_11_short_command_forms(tmp_path: Path, text: str, expected: Verdict) -> None:
    assert_verdict(text, expected)
    path = tmp_path / "printer-supervisor"
    path.write_text("c daemon\n\to base_port 9300\n\tl bind '::1'\n")
    settings = load_settings(path, required=True)
    assert (settings.daemon.base_port, settings.daemon.bind) == (9300, ("::1",))


# -- what the project writes, read back ------------------------------------------------------
@pytest.mark.parametrize("value", [
    "plain", "it's", "a b  c", "'", "\\", '"', "a;b", "a #b", "#", ";", "two\nlines",
    "cr\r\nlf", "\t", " lead", "Café\u00a0Bar", "\u3000", "x\\\n", "option port 1",
])
def test_quote_is_read_back_as_written(value: str) -> None:
    [section] = parse_uci(f"config t\n\toption v {quote(value)}\n\tlist w {quote(value)}\n")
    assert section.options == {"v": value, "w": (value,)}


def test_the_shipped_openwrt_config_reads_back_as_written(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parent.parent
    settings = load_settings(root / "units" / "openwrt" / "printer-supervisor.config",
                             required=True)
    assert settings.warnings == ()
    again = tmp_path / "printer-supervisor"
    again.write_text(settings_to_uci(settings), encoding="utf-8")
    assert dataclasses.replace(load_settings(again, required=True), source=None) == (
        dataclasses.replace(settings, source=None))
