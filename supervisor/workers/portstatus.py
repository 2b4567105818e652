"""Asking a printer why it takes no data: the LPGETSTATUS ioctl on its open lp node.

usblp answers it from the printer's GET_PORT_STATUS request (the parallel-port lp driver from
its status lines), as CUPS's usb backend reads it; core/stall.py turns the bits into words. A
node that answers no such ioctl (a pty, a FIFO, /dev/null: ENOTTY or EINVAL) gives no reason,
and neither does an error: the printer then is "not taking data", never a guess.

`ioctl` is the seam: tests feed it the bits a printer would answer (no usblp on CI machines).
It is looked up when called, so a test may replace it in this module.
"""

from __future__ import annotations

import struct
from fcntl import ioctl
from typing import Final

from supervisor.core.stall import stall_reason

#: include/uapi/linux/lp.h: `#define LPGETSTATUS 0x060b` (a plain number, not _IOR): the
#: driver writes the status as an int at the address passed.
LPGETSTATUS: Final = 0x060B


def read_port_status(fd: int) -> int | None:
    """The printer's port status bits, or None when its node cannot say (any OSError)."""
    answer = bytearray(4)
    try:
        ioctl(fd, LPGETSTATUS, answer)  # mutates `answer` in place
    except OSError:
        return None
    value: int = struct.unpack("=i", answer)[0]
    return value & 0xFF


def read_reason(fd: int) -> str:
    """Why the printer on `fd` takes no data, in words: see core.stall.stall_reason."""
    return stall_reason(read_port_status(fd))
