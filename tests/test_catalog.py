"""The firmware catalog: parsing, lookup by PRODUCT glob, the firmware setting, FWVER detection."""

from __future__ import annotations

import re

import pytest

from supervisor.core.catalog import (
    CatalogError,
    FirmwareEntry,
    entry_for,
    firmware_for,
    firmware_loaded,
    load_catalog,
    parse_catalog,
)

SMALL = '''
[[firmware]]
product = "3f0/4117/*"
model = "HP LaserJet 1018"
file = "sihp1018.dl"
reason = "loses its firmware at power-off"

[[firmware]]
product = "3f0/2b17/100"
model = "HP LaserJet 1020"
file = "sihp1020.dl"
reason = "loses its firmware at power-off"
'''
CATALOG = parse_catalog(SMALL)
ID_1018 = "MFG:Hewlett-Packard;MDL:HP LaserJet 1018;CMD:ACL;CLS:PRINTER;"


def test_parse_gives_entries_in_file_order() -> None:
    assert list(CATALOG) == [
        FirmwareEntry("3f0/4117/*", "HP LaserJet 1018", "sihp1018.dl",
                      "loses its firmware at power-off"),
        FirmwareEntry("3f0/2b17/100", "HP LaserJet 1020", "sihp1020.dl",
                      "loses its firmware at power-off"),
    ]


def test_empty_catalog_is_allowed() -> None:
    assert parse_catalog("") == ()


ENTRY = 'product = "3f0/4117/*"\nmodel = "HP LaserJet 1018"\nfile = "sihp1018.dl"\nreason = "r"\n'


@pytest.mark.parametrize(("text", "expected"), [
    ("[[firmware]]\n" + ENTRY.replace('file = "sihp1018.dl"\n', ""),
     r"entry 1 \(HP LaserJet 1018\): 'file' must be a non-empty string"),
    ("[[firmware]]\n" + ENTRY.replace('"r"', '""'), r"entry 1 .*'reason' must be"),
    ("[[firmware]]\n" + ENTRY.replace('"r"', "3"), r"entry 1 .*'reason' must be"),
    ("[[firmware]]\n" + ENTRY + "colour = true\n", r"entry 1 .*unknown key 'colour'"),
    ("[[firmware]]\n" + ENTRY.replace("3f0/4117", "03f0/4117"), r"entry 1 .*'03f0/4117/\*'"),
    ("[[firmware]]\n" + ENTRY.replace("3f0/4117", "3F0/4117"), r"entry 1 .*'3F0/4117/\*'"),
    ("[[firmware]]\n" + ENTRY.replace("3f0/4117/*", "3f0:4117"), r"entry 1 .*lowercase hex"),
    ("[[firmware]]\n" + ENTRY.replace("sihp1018.dl", "../etc/passwd"), r"entry 1 .*plain file"),
    ("[[firmware]]\n" + ENTRY + "[[firmware]]\n" + ENTRY.replace("1018", "1018b"),
     r"entry 2 \(HP LaserJet 1018b\): product '3f0/4117/\*' already listed by entry 1"),
    ("[[firmware]]\n" + ENTRY + "[[firmware]]\nmodel = 7\n", r"^firmware entry 2: "),
    ("firmware = 3\n", r"array of tables"),
    ("[[printer]]\n", r"unknown key 'printer'"),
    ("[[firmware]\n", r"firmware catalog: .*line 1"),
])
def test_invalid_catalogs_are_refused_naming_the_entry(text: str, expected: str) -> None:
    with pytest.raises(CatalogError, match=expected):
        parse_catalog(text)


@pytest.mark.parametrize(("product", "model"), [
    ("3f0/4117/100", "HP LaserJet 1018"),
    ("3f0/4117/0", "HP LaserJet 1018"),
    ("3f0/2b17/100", "HP LaserJet 1020"),
    ("3f0/2b17/101", None),  # that entry names one bcdDevice only
    ("3f0/41170/100", None),
    ("13f0/4117/100", None),
    ("3F0/4117/100", None),  # PRODUCT is lowercase; matching is case-sensitive
    ("4a9/1234/1", None),
])
def test_lookup_by_product_glob(product: str, model: str | None) -> None:
    entry = entry_for(product, CATALOG)
    assert (entry.model if entry else None) == model


@pytest.mark.parametrize(("setting", "product", "expected"), [
    ("auto", "3f0/4117/100", "sihp1018.dl"),
    ("auto", "4a9/1234/1", None),
    ("none", "3f0/4117/100", None),
    ("sihp1020.dl", "3f0/4117/100", "sihp1020.dl"),  # the user knows better than the catalog
    ("sihp1020.dl", "4a9/1234/1", "sihp1020.dl"),
    ("/opt/fw/custom.dl", "4a9/1234/1", "/opt/fw/custom.dl"),
])
def test_firmware_setting(setting: str, product: str, expected: str | None) -> None:
    assert firmware_for(setting, product, CATALOG) == expected


@pytest.mark.parametrize(("device_id", "expected"), [
    (None, None),
    ("", None),
    (ID_1018, False),
    (ID_1018 + "FWVER:20051028;", True),
    ("MFG:Hewlett-Packard;FWVER:20051028;MDL:HP LaserJet 1018;", True),
    ("MFG:Hewlett-Packard;MDL:HP LaserJet 1018;FWVER:20051028", True),  # no final ;
    ("MFG:HP;MDL:LaserJet 1018; fwver : 20051028 ;", True),
    ("MFG:HP;MDL:LaserJet 1018;FWVER:;", False),
    ("MFG:HP;MDL:LaserJet 1018;DES:FWVER missing;", False),
])
def test_fwver_detection(device_id: str | None, expected: bool | None) -> None:
    assert firmware_loaded(device_id) is expected


# -- the packaged catalog ------------------------------------------------------------------------
HEX = "(0|[1-9a-f][0-9a-f]*)"  # what the kernel writes: lowercase, no leading zeros
WELL_FORMED_GLOB = re.compile(rf"{HEX}/{HEX}/(\*|{HEX})")


def test_packaged_catalog_loads_with_every_model_of_the_reference() -> None:
    catalog = load_catalog()
    by_product = {entry.product: entry.file for entry in catalog}
    assert by_product == {
        "3f0/517/*": "sihp1000.dl",
        "3f0/1317/*": "sihp1005.dl",
        "3f0/4117/*": "sihp1018.dl",
        "3f0/2b17/*": "sihp1020.dl",
        "3f0/3d17/*": "sihpP1005.dl",
        "3f0/3e17/*": "sihpP1006.dl",
        "3f0/4817/*": "sihpP1005.dl",
        "3f0/4917/*": "sihpP1006.dl",
        "3f0/3f17/*": "sihpP1505.dl",
    }


@pytest.mark.parametrize("entry", load_catalog(), ids=lambda e: e.model)
def test_packaged_entry_is_well_formed(entry: FirmwareEntry) -> None:
    assert WELL_FORMED_GLOB.fullmatch(entry.product), entry.product
    assert entry.file.endswith(".dl")
    assert "power-off" in entry.reason
    assert entry.model


def test_packaged_catalog_matches_what_the_kernel_writes() -> None:
    assert firmware_for("auto", "3f0/4117/100", load_catalog()) == "sihp1018.dl"
    assert firmware_for("auto", "3f0/517/100", load_catalog()) == "sihp1000.dl"
    assert firmware_for("auto", "3f0/4917/100", load_catalog()) == "sihpP1006.dl"
    assert firmware_for("auto", "3f0/c17/100", load_catalog()) is None  # a LaserJet with flash
