"""`supervisorctl firmware [list]`, and check-config's warning about missing firmware files."""

from __future__ import annotations

from pathlib import Path

import pytest

from supervisor.core.catalog import load_catalog
from supervisor.ctl.cli import main
from supervisor.workers.firmware import HOW_TO_OBTAIN

ROOT = Path(__file__).resolve().parent.parent

BLOB = b"\x1b%-12345X@PJL ENTER LANGUAGE=ACL\r\n" + bytes(64)  # made here, never a real one


def configure(tmp_path: Path, printers: str = "", *, present: tuple[str, ...] = ()) -> Path:
    """A config whose firmware_dirs are two temporary directories; `present` files in the 2nd."""
    first, second = tmp_path / "fw-a", tmp_path / "fw-b"
    first.mkdir()
    second.mkdir()
    for name in present:
        (second / name).write_bytes(BLOB)
    path = tmp_path / "config.toml"
    path.write_text(f'[daemon]\nfirmware_dirs = ["{first}", "{second}"]\n{printers}',
                    encoding="utf-8")
    return path


def rows(out: str) -> dict[str, str]:
    """Table rows by model (the model names are the catalog's, which may contain spaces)."""
    models = {entry.model for entry in load_catalog()}
    return {model: line for line in out.splitlines() for model in models
            if line.startswith(model + "  ")}


@pytest.mark.parametrize("argv", [["firmware"], ["firmware", "list"]], ids=["bare", "list"])
def test_firmware_list_says_where_each_file_is(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    config = configure(tmp_path, present=("sihp1018.dl",))

    assert main(["--config", str(config), *argv]) == 0

    out = capsys.readouterr().out
    table = rows(out)
    assert len(table) == len(load_catalog())
    found = table["HP LaserJet 1018"]
    assert found.split()[-3:] == ["3f0/4117/*", "sihp1018.dl",
                                  str(tmp_path / "fw-b" / "sihp1018.dl")]
    assert "missing" not in found
    missing = table["HP LaserJet 1020"]
    assert "3f0/2b17/*" in missing and "sihp1020.dl" in missing
    assert f"missing (searched {tmp_path / 'fw-a'}, {tmp_path / 'fw-b'})" in missing
    assert f"1 of {len(load_catalog())} present" in out
    assert "Host-based" not in out  # reasons only with -v
    assert "How to obtain missing files: man 8 printer-supervisor, section FIRMWARE" in out


def test_firmware_list_verbose_gives_the_reason(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = configure(tmp_path)

    assert main(["firmware", "-v", "--config", str(config)]) == 0

    lines = capsys.readouterr().out.splitlines()
    row = next(i for i, line in enumerate(lines) if line.startswith("HP LaserJet 1018  "))
    assert lines[row + 1].startswith("    Host-based LaserJet")
    assert "sihp1018.dl" in " ".join(lines[row + 1:row + 4])


def test_firmware_list_on_an_invalid_config_says_so(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[daemon]\nfirmware_dirs = 3\n", encoding="utf-8")

    assert main(["--config", str(config), "firmware"]) == 2

    assert "firmware_dirs: must be a list" in capsys.readouterr().err


# -- check-config --------------------------------------------------------------------------------
AUTO_1018 = '[[printer]]\nname = "laserjet"\nmatch = "3f0/4117/*"\n'
EXPLICIT = '[[printer]]\nname = "office"\nserial = "A"\nfirmware = "sihp1020.dl"\n'
NONE = '[[printer]]\nname = "plain"\nmatch = "3f0/4117/100"\nfirmware = "none"\n'
STATIC = '[[printer]]\nname = "lp0"\ndevice = "/dev/usb/lp0"\n'


@pytest.mark.parametrize(("printers", "present", "warned"), [
    (AUTO_1018, (), ["laserjet: firmware auto (match 3f0/4117/* is HP LaserJet 1018, "
                     "3f0/4117/*): firmware file sihp1018.dl not found in"]),
    (AUTO_1018, ("sihp1018.dl",), []),
    (AUTO_1018.replace("*", "100"), (), ["laserjet: firmware auto (match 3f0/4117/100"]),
    (EXPLICIT, (), ['office: firmware "sihp1020.dl": firmware file sihp1020.dl not found in']),
    (EXPLICIT, ("sihp1020.dl",), []),
    (NONE + STATIC, (), []),
    (AUTO_1018 + EXPLICIT, ("sihp1020.dl",), ["laserjet: "]),
], ids=["auto-missing", "auto-present", "auto-exact-product", "explicit-missing",
        "explicit-present", "none-and-static", "one-of-two"])
def test_check_config_warns_about_missing_firmware(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], printers: str,
        present: tuple[str, ...], warned: list[str]) -> None:
    config = configure(tmp_path, printers, present=present)

    assert main(["check-config", str(config)]) == 0

    out, err = capsys.readouterr()
    assert f"{config}: valid" in out
    warnings = err.splitlines()
    assert len(warnings) == len(warned), err
    for line, fragment in zip(warnings, warned, strict=True):
        assert line.startswith("warning: printer " + fragment)
        assert f"{tmp_path / 'fw-a'}, {tmp_path / 'fw-b'}" in line
        assert "waits in firmware-needed" in line
        # The installed man page, not a file of the source tree, says how to get the file.
        assert "(how to obtain it: man 8 printer-supervisor, section FIRMWARE)" in line
        assert "README" not in line


def test_the_page_the_messages_name_says_how_to_obtain_the_files() -> None:
    """The section named by the warning exists in printer-supervisor(8), and says where the
    files come from and where they go."""
    page = ROOT / "man" / "printer-supervisor.8.rst"
    assert HOW_TO_OBTAIN == "man 8 printer-supervisor, section FIRMWARE"
    section = page.read_text(encoding="utf-8").split("\nFIRMWARE\n========\n", 1)[1]
    section = section.split("\n=====", 1)[0]
    for needed in ("printer-driver-foo2zjs", "getweb 1018", "sihp1018.dl", "/lib/firmware/hp/",
                   "/usr/share/foo2zjs/firmware/", "firmware_dirs", "OpenWrt"):
        assert needed in section, needed
    roff = (ROOT / "man" / "printer-supervisor.8").read_text(encoding="utf-8")
    assert ".SH FIRMWARE" in roff
