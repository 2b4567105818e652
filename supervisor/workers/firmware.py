"""Firmware push: find the file, write it to the printer's node, verify by the IEEE-1284 ID.

The protocol is `cat sihp1018.dl > /dev/usb/lp0` (see reference/firmware.md): write the whole
file. Afterwards the printer's device ID gains `FWVER` where the usblp ioctl can read it; where it
cannot (a pty, a stale sysfs copy), a complete write counts as loaded.

Errors share `FirmwareError.permanent`: a missing or wrong file is permanent (the printer is
parked until the user acts); anything from the device is transient (retried with backoff).
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import os
import select
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from supervisor.core.catalog import firmware_loaded
from supervisor.core.devices import DEVICE_ID_MAX_CHARS, clean_device_string
from supervisor.workers.device import DeviceOpenError, open_device

DEVICE_ID_BUFFER_BYTES: Final = 1024  # what usblp and foo2zjs's usb_printerid use
PUSH_DEADLINE_S: Final = 60.0
VERIFY_WINDOW_S: Final = 5.0  # after the write, look this long for FWVER to appear
VERIFY_INTERVAL_S: Final = 0.5
WRITE_CHUNK_BYTES: Final = 64 << 10
_POLL_SLICE_MS: Final = 100  # how often a blocked write looks at the stop flag
PJL_UEL: Final = b"\x1b%-12345X"
BEEF_HEADER: Final = b"\xbe\xef"
#: Where an installed user reads how to obtain the files (the page's FIRMWARE section).
HOW_TO_OBTAIN: Final = "man 8 printer-supervisor, section FIRMWARE"

# The ioctl direction encoding differs per architecture (include/uapi/asm-generic/ioctl.h and
# the arch overrides). Prefix of the machine (uname -m) → (_IOC_READ, _IOC_SIZEBITS).
_IOC_ARCH: Final[tuple[tuple[tuple[str, ...], tuple[int, int]], ...]] = (
    (("mips", "ppc", "powerpc", "sparc", "alpha"), (2, 13)),
    (("parisc",), (1, 14)),  # parisc swaps _IOC_READ and _IOC_WRITE
)
_IOC_GENERIC: Final = (2, 14)  # x86, arm, arm64, riscv, s390, loongarch...
_IOC_NRSHIFT: Final = 0
_IOC_TYPESHIFT: Final = 8
_IOC_SIZESHIFT: Final = 16


class FirmwareError(Exception):
    """A firmware push that did not succeed; `permanent` ones wait for the user, not a retry."""

    permanent: bool = False


class FirmwareMissing(FirmwareError):
    """The firmware file is in none of the directories searched."""

    permanent = True

    def __init__(self, name: str, dirs: Sequence[Path]) -> None:
        self.name = name
        self.dirs = tuple(dirs)
        if Path(name).is_absolute():
            message = f"firmware file {name} does not exist"
        elif self.dirs:
            searched = ", ".join(str(d) for d in self.dirs)
            message = f"firmware file {name} not found in {searched}"
        else:
            message = f"firmware file {name} not found: no firmware_dirs configured"
        super().__init__(f"{message} (how to obtain it: {HOW_TO_OBTAIN})")


class FirmwareInvalid(FirmwareError):
    """The firmware file is not one: unreadable, or without a PJL or BE EF header."""

    permanent = True


class FirmwareDeviceError(FirmwareError):
    """The printer's node could not be opened or written (busy, gone, stalled): retry."""


class FirmwareNotLoaded(FirmwareError):
    """The whole file was written, but the printer's device ID still has no FWVER: retry."""


@dataclass(frozen=True)
class PushResult:
    """A finished push: how much, how long, and how we know the printer took it."""

    bytes_written: int
    seconds: float
    verified_by: Literal["ioctl", "complete-write"]
    device_id: str | None = None  # the ID read after the push, when the ioctl works


# -- the device ID --------------------------------------------------------------------------------
def LPIOC_GET_DEVICE_ID(length: int, machine: str | None = None) -> int:  # noqa: N802 (kernel name)
    """`_IOC(_IOC_READ, 'P', 1, length)` for `machine` (default: this one's, as uname -m)."""
    arch = (machine if machine is not None else os.uname().machine).lower()
    ioc_read, size_bits = next(
        (enc for prefixes, enc in _IOC_ARCH if arch.startswith(prefixes)), _IOC_GENERIC
    )
    if not 0 < length < 1 << size_bits:
        raise ValueError(f"ioctl size {length} does not fit in {size_bits} bits")
    dir_shift = _IOC_SIZESHIFT + size_bits
    return ((ioc_read << dir_shift) | (length << _IOC_SIZESHIFT)
            | (ord("P") << _IOC_TYPESHIFT) | (1 << _IOC_NRSHIFT))


def decode_device_id(raw: bytes) -> str | None:
    """The ID text of an ioctl reply: 2-byte length (itself included) first, big-endian or not."""
    if len(raw) < 2:
        return None
    big, little = int.from_bytes(raw[:2], "big"), int.from_bytes(raw[:2], "little")
    if 2 <= big <= len(raw):
        length = big
    elif 2 <= little <= len(raw):
        length = little  # some printers send the length byte-swapped
    else:
        length = len(raw)  # as usblp does: clamp, the NUL below ends it
    # What the printer chose: any bytes. Cleaned as usblp's sysfs copy is (sources/sysfs.py).
    return clean_device_string(raw[2:length].split(b"\0", 1)[0], DEVICE_ID_MAX_CHARS) or None


def read_device_id(node: Path, length: int = DEVICE_ID_BUFFER_BYTES) -> str | None:
    """The printer's IEEE-1284 ID by usblp ioctl; None when it cannot be read now.

    None covers: another opener holds the node (usblp allows one: EBUSY), not a usblp node
    (ENOTTY/EINVAL, e.g. a pty), the node gone. The ID is advisory — the caller then treats the
    printer as needing firmware, and the push reports real device errors with context.
    """
    try:
        fd = os.open(node, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        buf = bytearray(length)
        fcntl.ioctl(fd, LPIOC_GET_DEVICE_ID(length), buf, True)
    except OSError:
        return None
    finally:
        os.close(fd)
    return decode_device_id(bytes(buf))


# -- the file --------------------------------------------------------------------------------------
def find_firmware(name: str, dirs: Sequence[Path]) -> Path:
    """The first `dirs/name` that is a file (an absolute `name` as is); else FirmwareMissing."""
    path = Path(name)
    candidates = [path] if path.is_absolute() else [d / name for d in dirs]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise FirmwareMissing(name, () if path.is_absolute() else dirs)


def check_header(data_start: bytes) -> None:
    """Refuse a file that does not start like a firmware download (PJL UEL or BE EF)."""
    if not data_start.startswith((PJL_UEL, BEEF_HEADER)):
        shown = data_start[:16].hex(" ") if data_start else "an empty file"
        raise FirmwareInvalid(
            f"not a printer firmware file: it starts with {shown}, not a PJL header "
            r"(\x1b%-12345X) or BE EF"
        )


def _read_blob(blob_path: Path) -> bytes:
    try:
        data = blob_path.read_bytes()
    except OSError as exc:
        raise FirmwareInvalid(f"cannot read firmware file {blob_path}: "
                              f"{exc.strerror or exc}") from None
    try:
        check_header(data[:16])
    except FirmwareInvalid as exc:
        raise FirmwareInvalid(f"{blob_path}: {exc}") from None
    return data


# -- the push --------------------------------------------------------------------------------------
async def push_firmware(node: Path, blob_path: Path, *, deadline_s: float = PUSH_DEADLINE_S,
                        read_id: Callable[[Path], str | None] = read_device_id) -> PushResult:
    """Write the firmware file to `node` in full, then verify; FirmwareError when it failed.

    `deadline_s` bounds opening (busy or absent node: retried) and writing. Never call this
    while a job holds the printer: usblp allows one opener.
    """
    started = time.monotonic()
    deadline = started + deadline_s
    blob = await asyncio.to_thread(_read_blob, blob_path)
    try:
        opened = await open_device(node, bidirectional=False,
                                    deadline_s=max(0.0, deadline - time.monotonic()))
    except DeviceOpenError as exc:
        raise FirmwareDeviceError(f"firmware {blob_path.name}: {exc}") from None
    stop = threading.Event()
    writer = asyncio.ensure_future(asyncio.to_thread(_write_all, opened.fd, blob, deadline, stop))
    try:
        written = await asyncio.shield(writer)
    except asyncio.CancelledError:
        stop.set()  # the thread still owns the fd: let it end before closing
        await asyncio.wait({writer})
        if not writer.cancelled():
            writer.exception()  # retrieved: it is the ECANCELED we caused
        raise
    except OSError as exc:
        name = errno.errorcode.get(exc.errno or 0, "error")
        raise FirmwareDeviceError(f"writing firmware {blob_path.name} to {node} failed: "
                                  f"{name} ({exc.strerror or exc})") from None
    finally:
        if writer.done():
            os.close(opened.fd)
        else:  # cancelled twice while waiting: close once the thread lets go
            writer.add_done_callback(lambda _f: os.close(opened.fd))
    device_id, verified = await _verify(node, read_id, deadline)
    if not verified:
        raise FirmwareNotLoaded(f"wrote {blob_path.name} ({written} bytes) to {node}, but the "
                                f"printer's device ID still has no FWVER: {device_id}")
    return PushResult(written, time.monotonic() - started,
                      "ioctl" if device_id is not None else "complete-write", device_id)


async def _verify(node: Path, read_id: Callable[[Path], str | None],
                  deadline: float) -> tuple[str | None, bool]:
    """Read the ID until it shows FWVER (a short window); no ID at all → a complete write counts."""
    window_end = min(time.monotonic() + VERIFY_WINDOW_S, deadline)
    while True:
        device_id = await asyncio.to_thread(read_id, node)
        loaded = firmware_loaded(device_id)
        if loaded is None:
            return None, True
        if loaded or time.monotonic() + VERIFY_INTERVAL_S > window_end:
            return device_id, loaded
        await asyncio.sleep(VERIFY_INTERVAL_S)


def _write_all(fd: int, data: bytes, deadline: float, stop: threading.Event) -> int:
    """Write all of `data` to the non-blocking `fd`, polling when full; OSError on failure."""
    view = memoryview(data)
    total = 0
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    while total < len(data):
        if stop.is_set():
            raise OSError(errno.ECANCELED, "firmware push cancelled")
        try:
            total += os.write(fd, view[total:total + WRITE_CHUNK_BYTES])
            continue
        except BlockingIOError:
            pass
        except InterruptedError:
            continue
        _wait_writable(poller, total, len(data), deadline=deadline, stop=stop)
    # usblp answers a non-blocking write once the transfer is queued, and close() cancels one
    # still in flight: wait until it reports POLLOUT, i.e. the last transfer is done.
    while not _wait_writable(poller, total, len(data), deadline=deadline, stop=stop):
        pass
    return total


def _wait_writable(poller: select.poll, written: int, size: int, *, deadline: float,
                   stop: threading.Event) -> bool:
    """One poll slice for POLLOUT: True when writable; OSError on stop, loss or deadline."""
    if stop.is_set():
        raise OSError(errno.ECANCELED, "firmware push cancelled")
    if time.monotonic() >= deadline:
        raise OSError(errno.ETIMEDOUT, f"printer took only {written} of {size} bytes "
                      "before the deadline")
    for _fd, events in poller.poll(_POLL_SLICE_MS):
        if events & (select.POLLERR | select.POLLHUP | select.POLLNVAL):
            raise OSError(errno.EIO, "the printer went away during the push")
        return True
    return False
