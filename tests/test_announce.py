"""The announcement core: names unique on the host, TXT records as CUPS reads them."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from supervisor.core.announce import (
    NAME_MAX_BYTES,
    UUID_NAMESPACE,
    Subject,
    loopback_only,
    model_name,
    plan,
    printer_uuid,
    txt_record,
    uuid5,
)

LJ1018 = "MFG:Hewlett-Packard;MDL:HP LaserJet 1018;CMD:ACL;CLS:PRINTER;"


def subject(printer: str = "lj", **fields: object) -> Subject:
    values: dict[str, object] = {"port": 9100, "device_id": LJ1018,
                                 "identity": "03f0:4117:CNB1234567", "serial": "CNB1234567"}
    values.update(fields)
    return Subject(printer=printer, **values)  # type: ignore[arg-type]


@pytest.mark.parametrize(("mfg", "mdl", "expected"), [
    ("Hewlett-Packard", "HP LaserJet 1018", "HP LaserJet 1018"),
    ("HP", "LaserJet 1018", "HP LaserJet 1018"),
    ("Brother", "HL-1110 series", "Brother HL-1110 series"),
    ("Samsung", "Samsung M2020 Series", "Samsung M2020 Series"),
    ("EPSON", "L3150 Series", "EPSON L3150 Series"),
    ("Hitachi", "H 100", "Hitachi H 100"),
    (None, "HP LaserJet 1018", "HP LaserJet 1018"),
    ("Kyocera", None, "Kyocera"),
    (None, None, None),
])
def test_model_name_does_not_repeat_the_maker(mfg: str | None, mdl: str | None,
                                              expected: str | None) -> None:
    assert model_name(mfg, mdl) == expected


def test_txt_record_carries_what_cups_builds_the_device_id_from() -> None:
    txt = txt_record(subject(location="upstairs"))
    uuid = printer_uuid(subject())
    assert txt == ("txtvers=1", "qtotal=1", "rp=?snmp=false", "ty=HP LaserJet 1018",
                   "product=(HP LaserJet 1018)", "usb_MFG=Hewlett-Packard",
                   "usb_MDL=HP LaserJet 1018", "usb_CMD=ACL", "note=upstairs", "priority=50",
                   f"UUID={uuid}")


def test_txt_record_of_a_printer_without_a_device_id_uses_the_usb_strings() -> None:
    txt = txt_record(subject(device_id=None, manufacturer="Brother", model="HL-1110 series",
                             serial=None, identity="04f9:0054@1-1"))
    assert txt == ("txtvers=1", "qtotal=1", "rp=?snmp=false", "ty=Brother HL-1110 series",
                   "product=(HL-1110 series)", "usb_MFG=Brother", "usb_MDL=HL-1110 series",
                   "priority=50")


def test_txt_record_of_a_bare_static_node_has_no_empty_string() -> None:
    txt = txt_record(Subject(printer="office", port=9102))
    assert txt == ("txtvers=1", "qtotal=1", "rp=?snmp=false", "priority=50")
    assert all(txt)


def test_txt_strings_are_cut_at_255_bytes_on_a_character_boundary() -> None:
    txt = txt_record(subject(location="é" * 300))
    note = next(t for t in txt if t.startswith("note="))
    assert len(note.encode()) <= 255 and note.encode().decode() == note


def test_uuid_is_stable_per_identity_and_absent_without_a_serial() -> None:
    assert printer_uuid(subject()) == printer_uuid(subject(printer="renamed", port=9200))
    assert printer_uuid(subject()) != printer_uuid(subject(identity="03f0:4117:OTHER"))
    assert printer_uuid(subject(serial=None, identity="03f0:4117@2-1")) is None
    # Fixed forever: a CUPS queue made from a dnssd:// URI carries it (?uuid=).
    assert printer_uuid(subject()) == "be651898-4237-5f6b-8717-7d392d85af47"


@pytest.mark.parametrize("name", ["03f0:4117:CNB1234567", "04f9:0054:É-серийный", ""])
def test_uuid5_is_the_standard_one(name: str) -> None:
    assert uuid5(UUID_NAMESPACE, name) == str(uuid.uuid5(uuid.UUID(bytes=UUID_NAMESPACE), name))


def test_default_name_is_the_model_at_the_host() -> None:
    assert plan([subject()], "router")["lj"].name == "HP LaserJet 1018 @ router"


def test_a_configured_name_is_used_as_is() -> None:
    assert plan([subject(mdns_name="Office Laser")], "router")["lj"].name == "Office Laser"


def test_two_printers_of_one_model_are_told_apart_by_their_own_names() -> None:
    names = {p: a.name for p, a in plan([subject("left"), subject("right")], "r").items()}
    assert names == {"left": "HP LaserJet 1018 (left) @ r",
                     "right": "HP LaserJet 1018 (right) @ r"}


def test_a_default_name_that_a_configured_one_takes_is_qualified() -> None:
    names = plan([subject("a", mdns_name="HP LaserJet 1018 @ r"), subject("b")], "r")
    assert names["a"].name == "HP LaserJet 1018 @ r"
    assert names["b"].name == "HP LaserJet 1018 (b) @ r"


def test_names_compare_without_case_and_what_still_clashes_is_numbered() -> None:
    names = plan([subject("a", mdns_name="Laser"),
                  subject("b", device_id="MDL:laser;", mdns_name=None)], "")
    assert names["a"].name == "Laser"
    assert names["b"].name == "laser (b)"
    clash = plan([subject("b", device_id=None, mdns_name=None), subject("c", mdns_name="b")], "")
    assert {a.name for a in clash.values()} == {"b", "b #2"}


def test_long_names_keep_the_host_and_fit_one_label() -> None:
    long_model = f"MFG:HP;MDL:{'LaserJet Professional Extra Long Model Name ' * 3};"
    name = plan([subject(device_id=long_model)], "router")["lj"].name
    assert name.endswith(" @ router") and len(name.encode()) <= NAME_MAX_BYTES


@pytest.mark.parametrize(("bind", "expected"), [
    (["127.0.0.1"], True), (["::1", "127.0.0.1"], True), (["::"], False),
    (["0.0.0.0"], False), (["127.0.0.1", "192.168.1.1"], False),
])
def test_loopback_only(bind: list[str], expected: bool) -> None:
    assert loopback_only(bind) is expected


def test_default_names_hold_no_control_characters() -> None:
    # RFC 6763 §4.1.1 forbids 0x00-0x1F and 0x7F in instance names (C1 is no better).
    hostile = subject(device_id="MFG:Evil\x1b[2J\nCorp;MDL:Laser\tJet\x7f\x9b;",
                      manufacturer="x\x00y", model="a\rb")
    names = plan([hostile, subject("two", device_id=None, manufacturer="M\x1b",
                                   model="Jet\u2028Line")], "host\x07")
    for announcement in names.values():
        name = announcement.name
        assert not any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 or c in "\u2028\u2029"
                       for c in name), repr(name)
        assert len(name.encode()) <= NAME_MAX_BYTES
    assert names["lj"].name == "Evil\ufffd[2J\ufffdCorp Laser\ufffdJet\ufffd\ufffd @ host\ufffd"


def test_every_txt_key_is_in_the_reference_page_and_rp_in_the_readme() -> None:
    """What a TXT record may carry is what printer-supervisor.conf(5) lists under `mdns`; the
    README's CUPS section says what `rp` does for a queue added by hand."""
    root = Path(__file__).resolve().parent.parent
    keys = {text.split("=", 1)[0] for text in txt_record(subject(location="hall"))}
    assert {"rp", "usb_MDL", "UUID"} <= keys
    page = (root / "man" / "printer-supervisor.conf.5.rst").read_text(encoding="utf-8")
    mdns = page.split("\n``mdns``\n", 1)[1].split("\n\n", 1)[0]
    assert {key for key in keys if f"``{key}``" in mdns} == keys
    assert "``rp=?snmp=false``" in mdns and "socket://host:port/?snmp=false" in mdns
    readme = (root / "README.md").read_text(encoding="utf-8")
    assert "socket://ROUTER:9101/?snmp=false" in readme and "rp=?snmp=false" in readme
