"""Firmware push against a pty printer that needs a blob; the ioctl number per architecture."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from supervisor.core.catalog import firmware_loaded
from supervisor.lab.virtual import DEFAULT_DEVICE_ID, FWVER_FIELD, VirtualPrinter
from supervisor.workers.device import open_device
from supervisor.workers.firmware import (
    LPIOC_GET_DEVICE_ID,
    FirmwareDeviceError,
    FirmwareError,
    FirmwareInvalid,
    FirmwareMissing,
    FirmwareNotLoaded,
    check_header,
    decode_device_id,
    find_firmware,
    push_firmware,
    read_device_id,
)

pytestmark = pytest.mark.timeout(30)

MakePrinter = Callable[..., VirtualPrinter]


@pytest.fixture
def blob() -> bytes:
    """Made up: real firmware is proprietary and never in this repository."""
    return b"\x1b%-12345X@PJL ENTER LANGUAGE=ACL\r\n" + os.urandom(200_000)


@pytest.fixture
def blob_file(tmp_path: Path, blob: bytes) -> Path:
    fw_dir = tmp_path / "firmware"
    fw_dir.mkdir()
    path = fw_dir / "sihp1018.dl"
    path.write_bytes(blob)
    return path


@pytest.fixture
def needy(make_printer: MakePrinter, blob: bytes) -> Iterator[tuple[VirtualPrinter, list[str]]]:
    """A LaserJet 1018 just powered on, reporting each new device ID into a list."""
    ids: list[str] = []
    yield make_printer(firmware=blob, on_device_id_change=ids.append), ids


# -- the push --------------------------------------------------------------------------------------
async def test_push_writes_the_whole_blob_and_the_printer_loads_it(
        needy: tuple[VirtualPrinter, list[str]], blob: bytes, blob_file: Path) -> None:
    printer, ids = needy
    assert not printer.firmware_loaded
    assert firmware_loaded(printer.device_id) is False

    result = await push_firmware(printer.path, blob_file)

    assert result.bytes_written == len(blob)
    assert result.verified_by == "complete-write"  # a pty answers the usblp ioctl with ENOTTY
    assert result.device_id is None
    assert 0 < result.seconds < 30
    assert printer.wait_for_bytes(len(blob)) == blob
    assert printer.firmware_loaded
    _wait(lambda: bool(ids))  # the callback runs in the reader thread, after the bytes
    assert printer.device_id == DEFAULT_DEVICE_ID + FWVER_FIELD
    assert firmware_loaded(printer.device_id) is True
    assert ids == [DEFAULT_DEVICE_ID + FWVER_FIELD]


async def test_a_partial_blob_does_not_load(needy: tuple[VirtualPrinter, list[str]],
                                            blob: bytes, tmp_path: Path) -> None:
    printer, ids = needy
    half = tmp_path / "half.dl"
    half.write_bytes(blob[: len(blob) // 2])
    await push_firmware(printer.path, half)
    assert printer.wait_for_bytes(len(blob) // 2) == blob[: len(blob) // 2]
    assert not printer.firmware_loaded
    assert ids == []


async def test_verified_by_ioctl_when_the_id_shows_fwver(
        needy: tuple[VirtualPrinter, list[str]], blob: bytes, blob_file: Path) -> None:
    printer, _ = needy
    reads: list[Path] = []

    def read_id(node: Path) -> str:  # the usblp ioctl, as the printer would answer it
        reads.append(node)
        return printer.device_id

    result = await push_firmware(printer.path, blob_file, read_id=read_id)
    assert result.verified_by == "ioctl"
    assert result.device_id == DEFAULT_DEVICE_ID + FWVER_FIELD
    assert reads[0] == printer.path


async def test_no_fwver_after_the_push_is_transient(make_printer: MakePrinter,
                                                    blob_file: Path) -> None:
    printer = make_printer(firmware=b"something else entirely")
    with pytest.raises(FirmwareNotLoaded, match="still has no FWVER") as caught:
        await push_firmware(printer.path, blob_file, deadline_s=1.0,
                            read_id=lambda _node: printer.device_id)
    assert not caught.value.permanent


async def test_missing_file_names_it_and_every_directory(tmp_path: Path) -> None:
    dirs = [tmp_path / "lib-firmware-hp", tmp_path / "foo2zjs"]
    with pytest.raises(FirmwareMissing) as caught:
        find_firmware("sihp1020.dl", dirs)
    message = str(caught.value)
    assert "sihp1020.dl" in message
    assert all(str(d) in message for d in dirs)
    assert caught.value.permanent
    assert caught.value.dirs == tuple(dirs)
    # an installed user has the man page, not the source tree's firmware/README.md
    assert message.endswith("(how to obtain it: man 8 printer-supervisor, section FIRMWARE)")


def test_find_takes_the_first_directory_that_has_it(tmp_path: Path, blob_file: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "sihp1018.dl").mkdir()  # a directory of that name is no firmware
    assert find_firmware("sihp1018.dl", [tmp_path / "absent", empty, blob_file.parent,
                                         tmp_path]) == blob_file
    assert find_firmware(str(blob_file), []) == blob_file
    with pytest.raises(FirmwareMissing, match=f"firmware file {tmp_path}/nope.dl does not exist"):
        find_firmware(str(tmp_path / "nope.dl"), [blob_file.parent])


@pytest.mark.parametrize("start", [b"\x1b%-12345X@PJL", b"\xbe\xef\x00\x01"])
def test_headers_of_firmware_files_pass(start: bytes) -> None:
    check_header(start)


@pytest.mark.parametrize("start", [b"", b"%!PS-Adobe-3.0", b"\x1b%-12345", b"\xef\xbe", b"PK\x03"])
def test_other_files_are_invalid(start: bytes) -> None:
    with pytest.raises(FirmwareInvalid) as caught:
        check_header(start)
    assert caught.value.permanent


async def test_bad_header_writes_nothing(printer: VirtualPrinter, tmp_path: Path) -> None:
    wrong = tmp_path / "sihp1018.dl"
    wrong.write_bytes(b"<html>404 Not Found</html>" + bytes(1000))
    with pytest.raises(FirmwareInvalid, match=r"sihp1018\.dl: not a printer firmware file"):
        await push_firmware(printer.path, wrong)
    # The node was never opened: a job can still take it, and nothing reached the paper.
    opened = await open_device(printer.path, bidirectional=False, deadline_s=1)
    os.write(opened.fd, b"job")
    os.close(opened.fd)
    assert printer.wait_for_bytes(3) == b"job"


async def test_unreadable_file_is_invalid(tmp_path: Path, printer: VirtualPrinter) -> None:
    with pytest.raises(FirmwareInvalid, match="cannot read firmware file"):
        await push_firmware(printer.path, tmp_path)  # a directory
    assert printer.paper == b""


async def test_absent_node_gives_up_at_the_deadline(tmp_path: Path, blob_file: Path) -> None:
    started = time.monotonic()
    with pytest.raises(FirmwareDeviceError, match=r"lp7: ENOENT.*gave up after") as caught:
        await push_firmware(tmp_path / "dev/usb/lp7", blob_file, deadline_s=0.3)
    assert time.monotonic() - started < 5
    assert not caught.value.permanent
    assert isinstance(caught.value, FirmwareError)


async def test_unplug_during_the_push_is_a_transient_device_error(
        make_printer: MakePrinter, tmp_path: Path) -> None:
    big = tmp_path / "big.dl"
    big.write_bytes(b"\xbe\xef" + bytes(8 << 20))
    stalled, resume = threading.Event(), threading.Event()

    def stall(_data: bytes) -> bytes:  # the printer stops reading (paper out) until resumed
        stalled.set()
        resume.wait(10)
        return b""

    printer = make_printer(responder=stall)
    push = asyncio.create_task(push_firmware(printer.path, big))
    assert await asyncio.to_thread(stalled.wait, 10)
    unplug = threading.Thread(target=printer.unplug)
    unplug.start()  # it stops the reader first: once resumed, it reads no more
    resume.set()
    with pytest.raises(FirmwareDeviceError, match="EIO") as caught:
        await push
    assert not caught.value.permanent
    await asyncio.to_thread(unplug.join, 10)
    assert len(printer.paper) < len(b"\xbe\xef" + bytes(8 << 20))


async def test_cancelling_a_stalled_push_stops_the_writer_and_closes_the_node(
        make_printer: MakePrinter, tmp_path: Path) -> None:
    big = tmp_path / "big.dl"
    big.write_bytes(b"\xbe\xef" + bytes(1 << 20))
    stalled, resume = threading.Event(), threading.Event()

    def stall(_data: bytes) -> bytes:
        stalled.set()
        resume.wait(10)
        return b""

    printer = make_printer(responder=stall)
    fds_before = set(os.listdir("/proc/self/fd"))
    push = asyncio.create_task(push_firmware(printer.path, big))
    assert await asyncio.to_thread(stalled.wait, 10)
    started = time.monotonic()
    push.cancel()
    with pytest.raises(asyncio.CancelledError):
        await push  # the writer is blocked in poll: only its stop flag ends it before 60 s
    assert time.monotonic() - started < 2
    assert set(os.listdir("/proc/self/fd")) <= fds_before  # the node's fd is closed
    resume.set()


# -- the device ID -------------------------------------------------------------------------------
def test_read_device_id_on_a_pty_is_unknown(printer: VirtualPrinter) -> None:
    assert read_device_id(printer.path) is None


def test_read_device_id_of_an_absent_node_is_unknown(tmp_path: Path) -> None:
    assert read_device_id(tmp_path / "lp0") is None


def _reply(text: bytes, *, swapped: bool = False, size: int = 1024) -> bytes:
    length = (len(text) + 2).to_bytes(2, "little" if swapped else "big")
    return (length + text).ljust(size, b"\0")


@pytest.mark.parametrize(("raw", "expected"), [
    (_reply(b"MFG:HP;MDL:LaserJet 1018;FWVER:1;"), "MFG:HP;MDL:LaserJet 1018;FWVER:1;"),
    (_reply(b"MFG:HP;MDL:LaserJet 1018;", swapped=True), "MFG:HP;MDL:LaserJet 1018;"),
    (_reply(b"MFG:Hewlett-Packard;", swapped=True, size=100), "MFG:Hewlett-Packard;"),
    (_reply("MFG:HP;MDL:\xe9t\xe9;".encode()), "MFG:HP;MDL:\xe9t\xe9;"),  # UTF-8
    (_reply(b"MFG:HP;MDL:\xe9t\xe9;"), "MFG:HP;MDL:\ufffdt\ufffd;"),  # not UTF-8: replaced
    (_reply(b"MFG:HP;\x1b[2J\nMDL:X;"), "MFG:HP;\ufffd[2J\ufffdMDL:X;"),  # no control chars
    (_reply(b"MFG:HP;MDL:X;")[:10], "MFG:HP;M"),  # truncated: what arrived, not more
    (b"\x00\x02" + bytes(100), None),
    (b"\x00", None),
    (b"", None),
])
def test_decode_device_id(raw: bytes, expected: str | None) -> None:
    assert decode_device_id(raw) == expected


def test_length_counts_itself_and_stops_at_it() -> None:
    assert decode_device_id(b"\x00\x08MFG:HP;garbage") == "MFG:HP"


@pytest.mark.parametrize(("machine", "number"), [
    ("x86_64", 0x84005001),
    ("i686", 0x84005001),
    ("aarch64", 0x84005001),
    ("armv7l", 0x84005001),
    ("riscv64", 0x84005001),
    ("mips", 0x44005001),
    ("mipsel", 0x44005001),
    ("mips64", 0x44005001),
    ("ppc", 0x44005001),
    ("ppc64le", 0x44005001),
    ("sparc64", 0x44005001),
])
def test_ioctl_number_per_architecture(machine: str, number: int) -> None:
    assert LPIOC_GET_DEVICE_ID(1024, machine) == number


def test_ioctl_number_encodes_the_length() -> None:
    assert LPIOC_GET_DEVICE_ID(64, "x86_64") == 0x80405001
    assert LPIOC_GET_DEVICE_ID(8191, "mips") == 0x5FFF5001
    with pytest.raises(ValueError, match="13 bits"):
        LPIOC_GET_DEVICE_ID(8192, "mips")


def _wait(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)
