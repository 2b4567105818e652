"""`supervisorctl migrate-p910nd`: UCI as libuci reads it, and p910nd sections as [[printer]]."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from supervisor.config.migrate import (
    UciError,
    UciSection,
    driver_files,
    parse_uci,
    to_toml,
    to_uci,
)
from supervisor.config.settings import Settings
from supervisor.config.tomlform import parse_settings
from supervisor.config.uciform import parse_uci_settings
from supervisor.ctl.cli import main

# The file OpenWrt's packages feed installs (net/p910nd/files/p910nd.config)...
OPENWRT_DEFAULT = """\
config p910nd
\toption device        /dev/usb/lp0
\toption port          0
\toption bidirectional 1
\toption enabled       0
"""
# ...and the same after LuCI or `uci commit` rewrote it.
OPENWRT_COMMITTED = """
config p910nd
\toption device '/dev/usb/lp0'
\toption port '0'
\toption bidirectional '1'
\toption enabled '0'
"""


def sections(text: str) -> list[tuple[str, str | None, dict[str, object]]]:
    return [(s.type, s.name, dict(s.options)) for s in parse_uci(text)]


def uncommented(toml: str) -> str:
    """The TOML with its commented-out entries restored (prose comments are `# `)."""
    return re.sub(r"(?m)^#(?! )", "", toml)


def convert(text: str) -> tuple[Settings, list[str], str]:
    migration = to_toml(parse_uci(text))
    return parse_settings(migration.text), migration.notes, migration.text


# -- UCI syntax ----------------------------------------------------------------------------------
DEFAULT_OPTIONS = {"device": "/dev/usb/lp0", "port": "0", "bidirectional": "1", "enabled": "0"}


@pytest.mark.parametrize(("text", "expected"), [
    (OPENWRT_DEFAULT, [("p910nd", None, DEFAULT_OPTIONS)]),
    (OPENWRT_COMMITTED, [("p910nd", None, DEFAULT_OPTIONS)]),
    ("config p910nd 'office'\n  option device \"/dev/usb/lp1\"\n",
     [("p910nd", "office", {"device": "/dev/usb/lp1"})]),
    ("config p910nd\n\toption mdns_note 'upstairs, by the door'\n",
     [("p910nd", None, {"mdns_note": "upstairs, by the door"})]),
    ("config p910nd\n\toption mdns_note 'it'\\''s here'\n",
     [("p910nd", None, {"mdns_note": "it's here"})]),
    ('config p910nd\n\toption mdns_ty "say \\"hi\\" \\\\ bye"\n',
     [("p910nd", None, {"mdns_ty": 'say "hi" \\ bye'})]),
    ("config p910nd\n\toption mdns_ty it\\ is\\'\n", [("p910nd", None, {"mdns_ty": "it is'"})]),
    ("config p910nd # the printer\n\toption port '1' # upstairs\n\toption device /dev/lp0#x\n",
     [("p910nd", None, {"port": "1", "device": "/dev/lp0"})]),
    ("config p910nd\n\toption mdns_note '# not a comment; nor this'\n",
     [("p910nd", None, {"mdns_note": "# not a comment; nor this"})]),
    ("# comment\n\n   # indented comment\nconfig p910nd\n\n\t\n\toption port 2\n",
     [("p910nd", None, {"port": "2"})]),
    ("config p910nd 'lp' ; option port 3 ;option device /dev/usb/lp3\n",  # after whitespace
     [("p910nd", "lp", {"port": "3", "device": "/dev/usb/lp3"})]),
    ("c p910nd\n\to port 4\n", [("p910nd", None, {"port": "4"})]),
    ("package p910nd\n\nconfig p910nd\n", [("p910nd", None, {})]),
    ("config p910nd\r\n\toption port '5'\r\n", [("p910nd", None, {"port": "5"})]),
    ("config p910nd\n\toption mdns_note 'two\nlines'\n",
     [("p910nd", None, {"mdns_note": "two\nlines"})]),
    ("config p910nd\n\toption mdns_note con\\\ntinued\n",
     [("p910nd", None, {"mdns_note": "continued"})]),
    ("config p910nd\n\toption port '1'\n\toption port '2'\n\toption bind ''\n",
     [("p910nd", None, {"port": "2"})]),
    ("config p910nd\n\tlist allow a\n\tlist allow 'b c'\n",
     [("p910nd", None, {"allow": ("a", "b c")})]),
    ("config p910nd 'a'\n\toption port 1\nconfig p910nd\nconfig p910nd 'a'\n\toption device /d\n",
     [("p910nd", "a", {"port": "1", "device": "/d"}), ("p910nd", None, {})]),
    ("config other\nconfig p910nd 'x'\n", [("other", None, {}), ("p910nd", "x", {})]),
], ids=["openwrt-default", "uci-committed", "double-quoted", "spaces", "uci-escaped-quote",
        "backslash-in-double-quotes", "backslash-bare", "trailing-comments", "hash-in-quotes",
        "blank-and-comment-lines", "semicolons", "short-commands", "package-line", "crlf",
        "multi-line-value", "line-continuation", "last-wins-and-empty-changes-nothing", "list",
        "named-section-reopened", "other-type"])
def test_parse_uci(text: str, expected: list[tuple[str, str | None, dict[str, object]]]) -> None:
    assert sections(text) == expected


def test_sections_are_named_as_uci_show_names_them() -> None:
    parsed = parse_uci("config p910nd\nconfig p910nd 'office'\nconfig p910nd\n")
    assert [s.ref for s in parsed] == ["p910nd.@p910nd[0]", "p910nd.office", "p910nd.@p910nd[2]"]
    assert [s.line for s in parsed] == [1, 2, 3]


@pytest.mark.parametrize(("text", "line", "message"), [
    ("\n\toption port 0\n", 2, "before the first config section"),
    ("config p910nd\n\toption device '/dev/usb/lp0\n\toption port 0\n", 2, "unterminated '"),
    ('config p910nd\n\toption device "/dev/usb/lp0\\"\n', 2, 'unterminated "'),
    ("config p910nd\n\tdevice /dev/usb/lp0\n", 2, "invalid command 'device'"),
    ("config\n", 1, "section type"),
], ids=["option-first", "unterminated-single", "unterminated-double", "bad-command", "no-type"])
def test_parse_uci_refuses_what_uci_refuses(text: str, line: int, message: str) -> None:
    with pytest.raises(UciError) as caught:
        parse_uci(text)
    assert caught.value.line == line
    assert message in caught.value.message


# -- mapping -------------------------------------------------------------------------------------
@pytest.mark.parametrize("text", [OPENWRT_DEFAULT, OPENWRT_COMMITTED],
                         ids=["openwrt-default", "uci-committed"])
def test_the_openwrt_default_is_written_disabled_and_loads_when_uncommented(text: str) -> None:
    settings, notes, toml = convert(text)

    assert settings.printers == ()
    assert settings.daemon.auto is False
    assert "#[[printer]]" in toml
    [note] = notes
    assert re.match(r"p910nd\.@p910nd\[0\] \(line [12]\): enabled '0': the entry is written "
                    "commented out", note)
    [printer] = parse_settings(uncommented(toml)).printers
    assert (printer.name, str(printer.device), printer.port, printer.bidirectional) == (
        "p910nd-0", "/dev/usb/lp0", 9100, True)
    assert printer.is_static


TWO_ENABLED = """
config p910nd 'LaserJet'
\toption device '/dev/usb/lp0'
\toption port '0'
\toption bidirectional '1'
\toption enabled '1'

config p910nd
\toption device '/dev/usb/lp1'
\toption port '3'
\toption bidirectional 'off'
\toption enabled 'yes'
"""


def test_enabled_sections_become_printers() -> None:
    settings, notes, _ = convert(TWO_ENABLED)

    assert [(p.name, str(p.device), p.port, p.bidirectional) for p in settings.printers] == [
        ("laserjet", "/dev/usb/lp0", 9100, True), ("p910nd-3", "/dev/usb/lp1", 9103, False)]
    assert notes == []


@pytest.mark.parametrize(("options", "expected", "noted"), [
    ("", {"device": "/dev/lp0", "port": 9100, "bidirectional": False}, ["enabled not set"]),
    ("option enabled 1\noption port 7",
     {"device": "/dev/lp7", "port": 9107, "bidirectional": False}, []),
    ("option enabled 1\noption device /dev/usb/lp0\noption port 12",
     {"port": None}, ["port '12' not carried over"]),
    ("option enabled 1\noption device /dev/usb/lp0\noption port x",
     {"port": None}, ["port 'x' not carried over"]),
    ("option enabled 1\noption device /dev/usb/lp0\noption bidirectional maybe",
     {"bidirectional": False}, ["bidirectional 'maybe' is not a boolean"]),
    ("option enabled sometimes\noption device /dev/usb/lp0",
     {"port": 9100}, ["enabled 'sometimes' is not a boolean"]),
    ("option enabled 1\noption device '/dev/usb/lp \"0\"\\'",
     {"device": '/dev/usb/lp "0"\\'}, []),
    ("option enabled 1\noption device /dev/usb/lp0\noption runas_root 1",
     {"port": 9100}, ["runas_root '1' not carried over"]),
    ("option enabled 1\noption device /dev/usb/lp0\noption mdns 1\noption mdns_ty 'HP LJ'\n"
     "option mdns_note 'it'\\''s here'\noption mdns_cmd ZJS\noption mdns_mfg HP",
     {"port": 9100, "mdns": True, "mdns_name": "HP LJ", "location": "it's here"},
     ["mdns_mfg 'HP', mdns_cmd 'ZJS' not carried over: the service announces the make, model "
      "and command set the printer itself reports"]),
    ("option enabled 1\noption device /dev/usb/lp0\noption mdns 0\noption mdns_ty 'HP LJ'",
     {"port": 9100, "mdns": False, "mdns_name": None}, []),
    ("option enabled 1\noption device /dev/usb/lp0\noption mdns 1\n"
     f"option mdns_ty '{'x' * 64}'",
     {"mdns": True, "mdns_name": None},
     [f"mdns_ty '{'x' * 64}' not carried over: '{'x' * 64}' is 64 bytes of UTF-8"]),
    ("option enabled 1\noption device /dev/usb/lp0\noption mdns perhaps",
     {"mdns": False}, ["mdns 'perhaps' is not a boolean"]),
    ("option enabled 1\noption device /dev/usb/lp0",
     {"mdns": True, "mdns_name": None, "location": None}, []),
    ("option enabled 1\noption device /dev/usb/lp0\noption colour blue\nlist allow x",
     {"port": 9100}, ["colour 'blue' not carried over", "list allow 'x' not carried over"]),
], ids=["nothing-set", "defaults", "port-two-digits", "port-not-a-digit", "bidirectional-odd",
        "enabled-odd", "odd-device-path", "runas-root", "mdns-on", "mdns-off", "mdns-ty-long",
        "mdns-odd", "mdns-unset", "unknown"])
def test_each_option(options: str, expected: dict[str, object], noted: list[str]) -> None:
    text = "config p910nd\n" + "".join(f"\t{line}\n" for line in options.splitlines())
    settings, notes, _ = convert(text)

    [printer] = settings.printers
    for key, value in expected.items():
        got = getattr(printer, key)
        assert (str(got) if key == "device" else got) == value, key
    for fragment in noted:
        assert any(fragment in note for note in notes), (fragment, notes)
    assert all(note.startswith("p910nd.@p910nd[0] (line 1): ") for note in notes)
    if not noted:
        assert notes == []


def test_an_agreed_bind_becomes_the_daemon_bind() -> None:
    text = TWO_ENABLED.replace("'1'\n\n", "'1'\n\toption bind '192.168.1.1'\n\n") + (
        "\toption bind '192.168.1.1'\n")
    settings, notes, _ = convert(text)

    assert settings.daemon.bind == ("192.168.1.1",)
    assert len(notes) == 2
    assert all("bind '192.168.1.1' carried over as [daemon] bind" in n for n in notes)


@pytest.mark.parametrize(("second", "fragment"), [
    ("\toption bind '10.0.0.1'\n", "the sections disagree (laserjet: 192.168.1.1, p910nd-3: "
                                   "10.0.0.1)"),
    ("", "the sections disagree (laserjet: 192.168.1.1, p910nd-3: 0.0.0.0 (no bind))"),
], ids=["different", "one-unset"])
def test_a_bind_the_sections_disagree_on_is_a_note(second: str, fragment: str) -> None:
    text = TWO_ENABLED.replace("'1'\n\n", "'1'\n\toption bind '192.168.1.1'\n\n") + second
    settings, notes, _ = convert(text)

    assert settings.daemon.bind == ("::",)
    assert notes and all(fragment in n and "not carried over" in n for n in notes)
    assert notes[0].startswith("p910nd.LaserJet (line 2): bind '192.168.1.1'")


def test_a_bind_to_a_host_name_is_a_note() -> None:
    settings, notes, _ = convert("config p910nd\n\toption enabled 1\n\toption bind router.lan\n")

    assert settings.daemon.bind == ("::",)
    assert notes == ["p910nd.@p910nd[0] (line 1): bind 'router.lan' not carried over: [daemon] "
                     "bind takes IP addresses, such as 192.168.1.1 or ::"]


def test_names_are_sanitised_and_unique() -> None:
    text = ("config p910nd 'Office_Printer'\n\toption enabled 1\n\toption device /dev/usb/lp0\n"
            "config p910nd 'office_printer'\n\toption enabled 1\n\toption device /dev/usb/lp1\n"
            "\toption port 1\n")
    settings, _, _ = convert(text)

    assert [p.name for p in settings.printers] == ["office_printer", "office_printer-2"]


def test_a_port_or_device_used_twice_still_loads() -> None:
    text = ("config p910nd\n\toption enabled 1\n\toption device /dev/usb/lp0\n"
            "config p910nd\n\toption enabled 1\n\toption device /dev/usb/lp1\n"
            "config p910nd\n\toption enabled 1\n\toption device /dev/usb/lp0\n\toption port 5\n")
    settings, notes, toml = convert(text)

    assert [(p.name, str(p.device), p.port) for p in settings.printers] == [
        ("p910nd-0", "/dev/usb/lp0", 9100), ("p910nd-0-2", "/dev/usb/lp1", None)]
    assert any(n.startswith("p910nd.@p910nd[1] (line 4): port 9100 not carried over: it is "
                            "also the port of 'p910nd-0'") for n in notes)
    assert any(n.startswith("p910nd.@p910nd[2] (line 7): device /dev/usb/lp0 is also the "
                            "device of 'p910nd-0'") for n in notes)
    assert "commented out because its device is also the device of 'p910nd-0'" in toml


def test_a_disabled_leftover_gives_way_to_the_served_section() -> None:
    text = OPENWRT_COMMITTED + TWO_ENABLED.replace("'LaserJet'", "'office'")
    settings, notes, toml = convert(text)

    assert [(p.name, p.port) for p in settings.printers] == [("office", 9100), ("p910nd-3", 9103)]
    assert any("port 9100 not carried over: it is also the port of 'office'" in n
               for n in notes)
    # Uncommenting the leftover does not break the file either (it names the same node).
    assert "device /dev/usb/lp0 is also the device of 'office'" in " ".join(notes)
    assert "p910nd-0" in toml


def test_a_relative_device_is_commented_out() -> None:
    settings, notes, toml = convert("config p910nd\n\toption enabled 1\n\toption device usb/lp0\n")

    assert settings.printers == ()
    assert "commented out because device is not an absolute path" in toml
    assert notes == ["p910nd.@p910nd[0] (line 1): device 'usb/lp0' not carried over: it must be "
                     "an absolute path such as /dev/usb/lp0; the entry is written commented "
                     "out: fix device, then uncomment it"]


def test_other_sections_are_noted_in_file_order() -> None:
    migration = to_toml(parse_uci("config p910nd\n\toption enabled 0\nconfig dummy 'x'\n"),
                        source="/tmp/p910nd")

    assert migration.text.startswith("# printer-supervisor configuration converted from "
                                     "/tmp/p910nd\n")
    assert [n.split(":")[0] for n in migration.notes] == [
        "p910nd.@p910nd[0] (line 1)", "p910nd.x (line 3)"]
    assert "section type 'dummy' ignored" in migration.notes[1]


def test_to_toml_takes_sections_built_by_hand() -> None:
    section = UciSection("p910nd", "desk", 0, 1, {"device": "/dev/usb/lp4", "port": "4",
                                                  "enabled": "1"})
    [printer] = parse_settings(to_toml([section]).text).printers
    assert (printer.name, printer.port) == ("desk", 9104)


# -- the command ---------------------------------------------------------------------------------
def test_command_prints_toml_and_notes(tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    uci = tmp_path / "p910nd"
    uci.write_text(OPENWRT_COMMITTED + "\toption runas_root '1'\n" + TWO_ENABLED,
                   encoding="utf-8")

    assert main(["migrate-p910nd", str(uci)]) == 0

    out, err = capsys.readouterr()
    assert out.startswith(f"# printer-supervisor configuration converted from {uci}\n")
    settings = parse_settings(out)
    assert [p.name for p in settings.printers] == ["laserjet", "p910nd-3"]
    lines = err.splitlines()
    assert lines[0].startswith("p910nd.@p910nd[0] (line 2): enabled '0'")
    assert any(line.startswith("p910nd.@p910nd[0] (line 2): runas_root '1' not carried over")
               for line in lines)
    assert all(line.startswith("p910nd.") for line in lines)


def test_command_writes_a_file_and_will_not_overwrite_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    uci, out = tmp_path / "p910nd", tmp_path / "config.toml"
    uci.write_text(TWO_ENABLED, encoding="utf-8")

    assert main(["migrate-p910nd", str(uci), "-o", str(out)]) == 0
    assert capsys.readouterr().out == ""
    assert len(parse_settings(out.read_text(encoding="utf-8")).printers) == 2

    out.write_text("# mine\n", encoding="utf-8")
    assert main(["migrate-p910nd", str(uci), "-o", str(out)]) == 2
    assert "exists; add --force" in capsys.readouterr().err
    assert out.read_text(encoding="utf-8") == "# mine\n"

    assert main(["migrate-p910nd", str(uci), "-o", str(out), "--force"]) == 0
    assert len(parse_settings(out.read_text(encoding="utf-8")).printers) == 2


@pytest.mark.parametrize(("content", "message"), [
    (None, "cannot read"),
    ("config dummy\n\toption port 0\n", "has no `config p910nd` sections"),
    ("", "has no `config p910nd` sections"),
    ("config p910nd\n\toption device '/dev/usb/lp0\n", ":2: unterminated '"),
], ids=["missing", "no-p910nd", "empty", "syntax"])
def test_command_exits_2_when_there_is_nothing_to_convert(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | bytes | None,
        message: str) -> None:
    uci = tmp_path / "p910nd"
    if isinstance(content, bytes):
        uci.write_bytes(content)
    elif content is not None:
        uci.write_text(content, encoding="utf-8")

    assert main(["migrate-p910nd", str(uci)]) == 2

    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("supervisorctl migrate-p910nd: ")
    assert str(uci) in err and message in err


def test_a_file_that_is_not_utf8_converts_as_uci_loads_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """uci loads any bytes in a value (openwrt.md §1.10): the value is shown with U+FFFD."""
    uci = tmp_path / "p910nd"
    uci.write_bytes(b"config p910nd\n\toption device '/dev/usb/lp0'\n\toption port 0\n"
                    b"\toption enabled 1\n\toption mdns_note 'Caf\xe9'\n")
    assert main(["migrate-p910nd", str(uci)]) == 0
    settings = parse_settings(capsys.readouterr().out)
    assert settings.printers[0].location == "Caf\ufffd"


@pytest.mark.parametrize("command", ["migrate-p910nd", "firmware"])
def test_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([command, "--help"])
    assert exited.value.code == 0
    assert f"usage: supervisorctl {command}" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["'a\n[[printer]]\nname = \"evil\"\n#'", "'lp-0'", "'lp 0'",
                                  "'...'"])
def test_section_names_uci_would_refuse_are_refused(name: str) -> None:
    with pytest.raises(UciError, match="only A-Z"):
        parse_uci(f"config p910nd {name}\n\toption device '/dev/usb/lp0'\n")


P910ND_FULL = """\
config p910nd
\toption device '/dev/usb/lp0'
\toption port 0
\toption bidirectional 1
\toption enabled 1
\toption bind '192.168.1.1'
\toption mdns 1
\toption mdns_ty 'HP LaserJet 1018'
\toption mdns_note 'it'\\''s upstairs'

config p910nd 'office_b'
\toption device '/dev/usb/lp1'
\toption port 1
\toption enabled 0
\toption bind '192.168.1.1'
"""


@pytest.mark.parametrize("text", [TWO_ENABLED, P910ND_FULL], ids=["two", "full"])
def test_uci_output_means_what_the_toml_output_means(text: str) -> None:
    sections = parse_uci(text)
    as_toml, as_uci = to_toml(sections), to_uci(sections)
    assert as_uci.notes == as_toml.notes
    assert parse_uci_settings(as_uci.text) == parse_settings(as_toml.text)
    # Commented-out entries too, once uncommented (the same `#` convention in both forms).
    assert (parse_uci_settings(uncommented(as_uci.text))
            == parse_settings(uncommented(as_toml.text)))


def test_migrate_writes_uci_with_format_uci(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    source, out = tmp_path / "p910nd", tmp_path / "printer-supervisor"
    source.write_text(P910ND_FULL, encoding="utf-8")
    assert main(["migrate-p910nd", str(source), "--format", "uci", "-o", str(out)]) == 0
    written = out.read_text(encoding="utf-8")
    assert written.splitlines()[0].startswith("# printer-supervisor configuration converted")
    assert "config printer 'p910nd_0'" not in written  # names with "-" become an option
    assert "\toption name 'p910nd-0'" in written
    assert "\toption mdns_name 'HP LaserJet 1018'" in written
    assert main(["check-config", str(out)]) == 0
    capsys.readouterr()


# -- what p910nd's hotplug script writes (net/p910nd/files/p910nd.hotplug, 23.05 and later) ------
# The shipped default, enabled by the user, after the script saw an HP LaserJet 1022 (the bug
# report's printer: it needs no firmware) as its releases since 2024-03-31 write it...
HOTPLUG_1022 = """
config p910nd
\toption device '/dev/usb/lp0'
\toption port '0'
\toption bidirectional '1'
\toption enabled '1'
\toption usbvidpid '03f0/2c17'
\toption mdns '1'
\toption mdns_ty 'HP LaserJet 1022'
\toption mdns_product '(HP LaserJet 1022)'
\toption mdns_mfg 'Hewlett-Packard'
\toption mdns_mdl 'HP LaserJet 1022'
\toption mdns_cmd 'ZJS,PJL,ACL,HIPERPPDS'
\toption mdns_note 'Located near router'
\toption mdns_cls 'PRINTER'
\toption mdns_sn 'XB3F042'
\toption driver_file '/opt/p910nd_drivers/Hewlett-Packard_HP_LaserJet_1022_03f0_2c17.bin'

config hotplug
\toption driver_home '/opt/p910nd_drivers'
"""
# ...and a LaserJet 1020 (it needs sihp1020.dl after every power-on) as its first releases
# (January-February 2024) wrote it: the serial as the note, no mdns, the section made by it.
HOTPLUG_1020 = """
config p910nd
\toption bidirectional '0'
\toption port '0'
\toption enabled '1'
\toption usbvidpid '03f0/2b17'
\toption mdns_ty 'HP LaserJet 1020'
\toption mdns_product '(HP LaserJet 1020)'
\toption mdns_mfg 'Hewlett-Packard'
\toption mdns_mdl 'HP LaserJet 1020'
\toption mdns_cmd 'ACL'
\toption mdns_note 'SN:KJ0GN6H Auto-configured by p910nd hotplug'
\toption device '/dev/usb/lp0'
\toption driver_file '/opt/p910nd_drivers/Hewlett-Packard_HP_LaserJet_1020_03f0_2b17.bin'

config hotplug
\toption driver_home '/opt/p910nd_drivers'
"""
BLOB_1020 = "/opt/p910nd_drivers/Hewlett-Packard_HP_LaserJet_1020_03f0_2b17.bin"
OPENWRT_UCI = Path(__file__).resolve().parent.parent / "units/openwrt/printer-supervisor.config"


def hotplug_convert(text: str, present: set[str] | None = None,
                    ) -> tuple[Settings, list[str], str]:
    migration = to_toml(parse_uci(text), present=present)
    return parse_settings(migration.text), migration.notes, migration.text


def noted(notes: list[str], fragment: str) -> str:
    found = [note for note in notes if fragment in note]
    assert len(found) == 1, (fragment, notes)
    return found[0]


def test_the_bug_reports_laserjet_1022_is_matched_and_gets_no_blob() -> None:
    settings, notes, _ = hotplug_convert(HOTPLUG_1022, present={
        "/opt/p910nd_drivers/Hewlett-Packard_HP_LaserJet_1022_03f0_2c17.bin"})

    [printer] = settings.printers
    assert (printer.match, printer.device, printer.port) == ("3f0/2c17/*", None, 9100)
    assert (printer.firmware, printer.location, printer.mdns_name) == (
        "auto", None, "HP LaserJet 1022")
    assert noted(notes, "usbvidpid '03f0/2c17' carried over as match '3f0/2c17/*'")
    assert "device '/dev/usb/lp0' is left out" in noted(notes, "usbvidpid")
    blob = noted(notes, "driver_file '/opt/p910nd_drivers/Hewlett-Packard_HP_LaserJet_1022_"
                        "03f0_2c17.bin' not carried over: the printer does not need it")
    assert "catalog lists no firmware for 3f0/2c17 (HP LaserJet 1022)" in blob
    assert noted(notes, "mdns_note 'Located near router' not carried over as location")
    assert "mdns_cls 'PRINTER', mdns_sn 'XB3F042'" in noted(notes, "mdns_product")
    # The script's options and section are understood, not taken for strangers.
    assert not any("init script reads" in n or "ignored" in n for n in notes), notes


@pytest.mark.parametrize(("present", "firmware"), [
    ({BLOB_1020}, BLOB_1020), (None, BLOB_1020), (set(), "auto")],
    ids=["blob-there", "not-looked-for", "blob-missing"])
def test_a_laserjet_1020s_blob_becomes_its_firmware_where_it_lies(
        present: set[str] | None, firmware: str) -> None:
    settings, notes, _ = hotplug_convert(HOTPLUG_1020, present)

    [printer] = settings.printers
    assert (printer.match, printer.device, printer.firmware) == ("3f0/2b17/*", None, firmware)
    assert printer.bidirectional is False and printer.location is None
    said = noted(notes, f"driver_file '{BLOB_1020}'")
    assert "HP LaserJet 1020 (3f0/2b17) needs firmware after every power-on" in said
    assert "sihp1020.dl" in said
    if firmware == "auto":
        assert "is not there, so p910nd pushed nothing: the entry keeps firmware auto" in said
        assert "copy sihp1020.dl to /etc/printer-supervisor/firmware/" in said
    else:
        assert "carried over as firmware" in said
        assert "/opt/p910nd_drivers survives a sysupgrade only while /etc/sysupgrade.conf " \
               "lists it" in said
    assert noted(notes, "mdns_note 'SN:KJ0GN6H Auto-configured by p910nd hotplug' not "
                        "carried over as location")
    assert "p910nd ran without -b" in noted(notes, "bidirectional '0' carried over")


def test_without_driver_file_the_scripts_own_name_for_the_blob_is_used() -> None:
    """<driver_home>/<MFG>_<MDL>_<vid>_<pid>.bin, spaces as _, driver_home from the last
    `config hotplug` without its trailing slash."""
    text = (HOTPLUG_1020.replace(f"\toption driver_file '{BLOB_1020}'\n", "")
            .replace("'/opt/p910nd_drivers'", "'/mnt/sda1/blobs/'"))
    blob = "/mnt/sda1/blobs/Hewlett-Packard_HP_LaserJet_1020_03f0_2b17.bin"
    assert driver_files(parse_uci(text)) == [blob]

    settings, notes, _ = hotplug_convert(text, {blob})
    assert settings.printers[0].firmware == blob
    assert "the hotplug script's driver file " + blob + " carried over as firmware" in " ".join(
        notes)
    # Not there: nothing p910nd pushed, nothing to say; firmware auto finds sihp1020.dl.
    settings, notes, _ = hotplug_convert(text, set())
    assert settings.printers[0].firmware == "auto"
    assert not any("driver file" in n for n in notes)


def test_driver_home_defaults_to_the_scripts() -> None:
    text = HOTPLUG_1020.replace(f"\toption driver_file '{BLOB_1020}'\n", "").split(
        "config hotplug")[0]
    assert driver_files(parse_uci(text)) == [BLOB_1020]


@pytest.mark.parametrize(("options", "fragment"), [
    ("\toption driver_file '/opt/x.bin'\n",
     "driver_file '/opt/x.bin' not carried over: p910nd's hotplug script pushes it only to a "
     "printer whose usbvidpid it matches, and this section has none"),
    ("\toption usbvidpid 'lp0'\n",
     "usbvidpid 'lp0' not carried over: p910nd's hotplug script writes idVendor/idProduct"),
    ("\toption usbvidpid '03F0/2B17'\n\toption driver_file 'sihp1020.dl'\n",
     "driver_file 'sihp1020.dl' not carried over: not an absolute path"),
], ids=["blob-without-usbvidpid", "usbvidpid-odd", "blob-relative"])
def test_hotplug_options_that_cannot_be_carried_over(options: str, fragment: str) -> None:
    settings, notes, _ = hotplug_convert(
        "config p910nd\n\toption enabled 1\n\toption device /dev/usb/lp0\n" + options)

    [printer] = settings.printers
    assert printer.firmware == "auto"
    assert noted(notes, fragment)
    if "03F0" in options:
        assert printer.match == "3f0/2b17/*" and printer.device is None
    else:
        assert printer.match is None and str(printer.device) == "/dev/usb/lp0"


@pytest.mark.parametrize(("note", "location"), [
    ("SN:CNB1234567 Auto-configured by p910nd hotplug", None),
    ("Located near router", None),
    ("Located near router, 2nd shelf", "Located near router, 2nd shelf"),
    ("SN:CNB1234567", "SN:CNB1234567"),
], ids=["first-releases", "placeholder", "users-own", "users-serial"])
def test_only_a_users_own_mdns_note_becomes_the_location(note: str,
                                                         location: str | None) -> None:
    settings, notes, _ = convert("config p910nd\n\toption enabled 1\n\toption device "
                                 f"/dev/usb/lp0\n\toption mdns 1\n\toption mdns_note '{note}'\n")

    assert settings.printers[0].location == location
    assert (notes == []) is (location is not None)


def test_the_hotplug_section_is_read_and_only_its_strangers_noted() -> None:
    _, notes, _ = convert(HOTPLUG_1022.replace("'/opt/p910nd_drivers'\n",
                                               "'/opt/p910nd_drivers'\n\toption colour 'blue'\n"))
    assert noted(notes, "p910nd.@hotplug[0] (line 19): colour 'blue' not carried over: "
                        "p910nd's hotplug script reads only driver_home")


@pytest.mark.parametrize("hotplug", [True, False], ids=["script-was-there", "users-own"])
def test_bidirectional_is_kept_and_noted_where_the_hotplug_script_may_have_set_it(
        hotplug: bool) -> None:
    text = "config p910nd\n\toption enabled 1\n\toption bidirectional 1\n" + (
        "\toption usbvidpid '03f0/4117'\n" if hotplug else "\toption device /dev/usb/lp0\n")
    settings, notes, _ = convert(text)

    assert settings.printers[0].bidirectional is True
    said = [n for n in notes if n.startswith("p910nd.@p910nd[0] (line 1): bidirectional '1'")]
    assert len(said) == hotplug
    if hotplug:
        assert "carried over: p910nd ran with -b. Its hotplug script sets this option from " \
               "the printer's USB interface protocol" in said[0]
        assert "the service never rewrites it" in said[0]


def test_the_router_keeps_its_paths_and_ports_survive_a_reboot() -> None:
    """The output replaces the package's /etc/config/printer-supervisor: its [daemon] paths
    must be the package's (Debian's defaults would put the remembered ports in RAM)."""
    shipped = parse_uci_settings(OPENWRT_UCI.read_text(encoding="utf-8")).daemon
    for text in (HOTPLUG_1022, TWO_ENABLED):
        for convert_with, parse in ((to_toml, parse_settings), (to_uci, parse_uci_settings)):
            daemon = parse(convert_with(parse_uci(text)).text).daemon
            assert daemon == replace(shipped, auto=False)
    assert str(shipped.state_dir).startswith("/etc/")  # flash: /var and /tmp are RAM there
    assert str(shipped.firmware_dirs[0]).startswith("/etc/printer-supervisor/")


@pytest.mark.parametrize("form", ["toml", "uci"])
def test_command_looks_for_the_blobs_and_both_forms_check(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], form: str) -> None:
    home = tmp_path / "p910nd_drivers"
    home.mkdir()
    blob = home / "Hewlett-Packard_HP_LaserJet_1020_03f0_2b17.bin"
    blob.write_bytes(b"\x1b%-12345X@PJL ENTER LANGUAGE=ACL\r\n")
    source, out = tmp_path / "p910nd", tmp_path / f"out.{form}"
    source.write_text(
        HOTPLUG_1020.replace(BLOB_1020, str(blob)).replace(
            "'/opt/p910nd_drivers'", f"'{home}'") + HOTPLUG_1022.replace(
            "config hotplug\n\toption driver_home '/opt/p910nd_drivers'\n", "").replace(
            "'/dev/usb/lp0'", "'/dev/usb/lp1'").replace("port '0'", "port '1'"),
        encoding="utf-8")

    assert main(["migrate-p910nd", str(source), "--format", form, "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert f"driver_file '{blob}' carried over as firmware" in err
    assert "the printer does not need it" in err

    assert main(["check-config", str(out)]) == 0
    capsys.readouterr()
    load = parse_settings if form == "toml" else parse_uci_settings
    settings = load(out.read_text(encoding="utf-8"))
    assert [(p.match, p.port, p.firmware) for p in settings.printers] == [
        ("3f0/2b17/*", 9100, str(blob)), ("3f0/2c17/*", 9101, "auto")]

    blob.unlink()  # not there: firmware auto, and a note saying where sihp1020.dl goes
    assert main(["migrate-p910nd", str(source), "--format", form, "-o", str(out),
                 "--force"]) == 0
    assert f"driver_file '{blob}' is not there" in capsys.readouterr().err
    assert [p.firmware for p in load(out.read_text(encoding="utf-8")).printers] == [
        "auto", "auto"]
