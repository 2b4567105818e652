"""Opening a printer's device node for one job: retried while absent or busy, up to a deadline."""

from __future__ import annotations

import asyncio
import errno
import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from supervisor.core.devices import node_refusal

OPEN_DEADLINE_S: Final = 30.0  # p910nd retries every 10 s forever; we give up and say why
OPEN_FIRST_DELAY_S: Final = 0.05
OPEN_MAX_DELAY_S: Final = 2.0
#: Worth retrying: the node is missing or not yet bound, or another opener holds it.
RETRY_ERRNOS: Final = frozenset(
    {errno.ENOENT, errno.ENODEV, errno.ENXIO, errno.EBUSY, errno.EAGAIN, errno.EIO}
)


class DeviceOpenError(Exception):
    """The device could not be opened; the message says why and for how long we tried."""


@dataclass(frozen=True)
class OpenedDevice:
    """An open device node and whether replies can be read from it."""

    fd: int
    readable: bool


def _flags(bidirectional: bool) -> int:
    access = os.O_RDWR if bidirectional else os.O_WRONLY
    # O_NOCTTY: a pty standing in for a printer must never become our controlling terminal.
    return access | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


async def open_device(path: Path, *, bidirectional: bool,
                      deadline_s: float | None = None) -> OpenedDevice:
    """Open `path` for a job, retrying transient errors with backoff until `deadline_s`.

    A path that is there but is not a printer's node (a file, a directory) is refused at once,
    DeviceOpenError, without a byte written to it: a job never lands in a file.
    """
    if deadline_s is None:
        deadline_s = OPEN_DEADLINE_S
    started = time.monotonic()
    deadline = started + deadline_s
    delay = OPEN_FIRST_DELAY_S
    while True:
        try:
            return _open_node(path, bidirectional)
        except OSError as exc:
            name = errno.errorcode.get(exc.errno or 0, "error")
            if exc.errno not in RETRY_ERRNOS:
                raise DeviceOpenError(f"cannot open {path}: {name} ({exc.strerror})") from None
            if time.monotonic() + delay > deadline:
                raise DeviceOpenError(
                    f"cannot open {path}: {name} ({exc.strerror}); gave up after "
                    f"{time.monotonic() - started:.1f} s of retries"
                ) from None
        await asyncio.sleep(delay)
        delay = min(delay * 2, OPEN_MAX_DELAY_S)


def _open_node(path: Path, bidirectional: bool) -> OpenedDevice:
    """Open `path` if it is a printer's node (a character device, or a FIFO); OSError as
    os.open raises it; DeviceOpenError, before a byte is written, if it is anything else.

    Checked before the open (a file or a directory is never opened) and again on the open fd
    (the path may have been replaced in between). Symlinks are followed: udev's by-id links
    lead to the lp node, so O_NOFOLLOW would refuse real printers.
    """
    try:
        mode: int | None = os.stat(path).st_mode
    except FileNotFoundError:
        mode = None  # not there (yet): the open says so, and is retried
    if mode is not None:
        _refuse(path, mode)
    # A FIFO opened read-write would hand our own job back to us as "printer replies".
    readable = bidirectional and not (mode is not None and stat.S_ISFIFO(mode))
    fd = os.open(path, _flags(readable))
    try:
        opened = os.fstat(fd).st_mode
        _refuse(path, opened)
    except BaseException:
        os.close(fd)
        raise
    return OpenedDevice(fd, readable and not stat.S_ISFIFO(opened))


def _refuse(path: Path, mode: int) -> None:
    if (why := node_refusal(path, mode)) is not None:
        raise DeviceOpenError(f"cannot open {path}: {why}")
