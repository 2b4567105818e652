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


def _is_fifo(path: Path) -> bool:
    try:
        return stat.S_ISFIFO(path.stat().st_mode)
    except OSError:
        return False


async def open_device(path: Path, *, bidirectional: bool,
                      deadline_s: float | None = None) -> OpenedDevice:
    """Open `path` for a job, retrying transient errors with backoff until `deadline_s`."""
    if deadline_s is None:
        deadline_s = OPEN_DEADLINE_S
    # A FIFO opened read-write would hand our own job back to us as "printer replies".
    readable = bidirectional and not _is_fifo(path)
    started = time.monotonic()
    deadline = started + deadline_s
    delay = OPEN_FIRST_DELAY_S
    while True:
        try:
            return OpenedDevice(os.open(path, _flags(readable)), readable)
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
