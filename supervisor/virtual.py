"""A virtual USB printer: a pty in raw mode behind a devfs path, recording what it is sent.

Shared by `supervisorctl demo` and the tests. The service opens the pty's slave side exactly as
it opens /dev/usb/lpN; a thread reads the master side (the "paper") and can answer like a
bidirectional printer. Closing the master makes the slave fail with EIO, as an unplugged usblp.
"""

from __future__ import annotations

import os
import select
import threading
import time
import tty
from collections.abc import Callable
from pathlib import Path

PJL_STATUS_QUERY = b"@PJL INFO STATUS"
PJL_STATUS_REPLY = b'@PJL INFO STATUS\r\nCODE=10001\r\nDISPLAY="Ready"\r\nONLINE=TRUE\r\n\x0c'

Responder = Callable[[bytes], bytes]


def pjl_status_responder(data: bytes) -> bytes:
    """Answer each `@PJL INFO STATUS` in `data` (new bytes) as a ready LaserJet does."""
    return PJL_STATUS_REPLY * data.count(PJL_STATUS_QUERY)


class VirtualPrinter:
    """A pty standing in for `devfs/node`; `paper` is every byte the printer received."""

    def __init__(self, devfs: Path, node: str = "usb/lp0", *,
                 responder: Responder | None = pjl_status_responder) -> None:
        self.path = devfs / node
        self._responder = responder
        self._paper = bytearray()
        self._cond = threading.Condition()
        self._master = -1
        self._slave = -1
        self._stop_r = self._stop_w = -1
        self._thread: threading.Thread | None = None
        self._scan_from = 0

    def plug(self) -> VirtualPrinter:
        """Create the pty and its devfs link, and start reading what is printed."""
        self._master, self._slave = os.openpty()
        self._stop_r, self._stop_w = os.pipe()
        tty.setraw(self._slave)
        tty.setraw(self._master)
        os.set_blocking(self._master, False)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.is_symlink() or self.path.exists():
            self.path.unlink()
        # Keep our slave fd open: otherwise the master reads EIO whenever no job holds the node.
        self.path.symlink_to(os.ttyname(self._slave))
        self._thread = threading.Thread(target=self._read_loop, name="virtual-printer",
                                        daemon=True)
        self._thread.start()
        return self

    def unplug(self) -> None:
        """Pull the cable: the node disappears and an open one fails with EIO."""
        if self.path.is_symlink():
            self.path.unlink()
        self._stop_thread()
        for fd in (self._master, self._slave):
            if fd >= 0:
                os.close(fd)
        self._master = self._slave = -1

    close = unplug

    @property
    def paper(self) -> bytes:
        with self._cond:
            return bytes(self._paper)

    def wait_for_bytes(self, count: int, timeout_s: float = 10.0) -> bytes:
        """Block until at least `count` bytes were printed (or the timeout); return the paper."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while len(self._paper) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            return bytes(self._paper)

    def send(self, data: bytes) -> None:
        """Printer → host bytes (the backchannel), e.g. an unsolicited status."""
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(self._master, view):]
            except BlockingIOError:
                select.select([], [self._master], [], 1.0)

    def _read_loop(self) -> None:
        while True:
            ready, _, _ = select.select([self._master, self._stop_r], [], [])
            if self._stop_r in ready:
                return
            try:
                chunk = os.read(self._master, 1 << 16)
            except BlockingIOError:
                continue
            except OSError:
                return
            if not chunk:
                return
            self._record(chunk)

    def _record(self, chunk: bytes) -> None:
        with self._cond:
            self._paper += chunk
            # Look for queries across chunk borders: rescan a query's length of overlap.
            start = max(0, self._scan_from - len(PJL_STATUS_QUERY) + 1)
            new = bytes(self._paper[start:])
            self._scan_from = len(self._paper)
            self._cond.notify_all()
        if self._responder is not None and (reply := self._responder(new)):
            self.send(reply)

    def _stop_thread(self) -> None:
        if self._thread is not None:
            os.write(self._stop_w, b"x")
            self._thread.join(5)
            self._thread = None
            os.close(self._stop_r)
            os.close(self._stop_w)

    def __enter__(self) -> VirtualPrinter:
        return self.plug()

    def __exit__(self, *exc: object) -> None:
        self.unplug()
