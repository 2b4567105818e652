"""A stalled printer (pure): when a job's wait for the printer becomes a stall, when it ends,
and what the printer's port status (LPGETSTATUS) says the reason is.

A stall is a printer that has accepted no byte for `stall_timeout` seconds while data waits for
it: out of paper, jammed, switched offline, or in error. It is reported, never acted on: the
job goes on when the printer takes data again (paper added), and the clients waiting behind it
keep their place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

#: The default `stall_timeout`, in seconds. Twice the longest pause a healthy printer makes
#: between two pages: a laser printer warming up from deep sleep (up to ~30 s) or a host-based
#: one (LaserJet 1018, foo2zjs models) printing the page it holds before it takes the next
#: (5-15 s). A stall is only reported, so a late report costs a minute's wait for the answer;
#: an early one would cry wolf on every first page of the morning.
DEFAULT_STALL_TIMEOUT_S: Final = 60.0
#: The printer's port status, as usblp (and the parallel-port lp driver) return it for the
#: LPGETSTATUS ioctl: IEEE 1284 status lines (include/uapi/linux/lp.h).
LP_PERRORP: Final = 0x08  # set: no error
LP_PSELECD: Final = 0x10  # set: selected (online)
LP_POUTPA: Final = 0x20  # set: paper empty
OUT_OF_PAPER: Final = "out of paper"
OFFLINE: Final = "offline"
PRINTER_ERROR: Final = "printer error"
#: No reason the printer could give: its node answers no LPGETSTATUS (a pty, a FIFO), or its
#: status lines say all is well while it takes no data. Never a guess.
NOT_TAKING_DATA: Final = "not taking data"
REASONS: Final = (OUT_OF_PAPER, OFFLINE, PRINTER_ERROR, NOT_TAKING_DATA)


def stall_reason(port_status: int | None) -> str:
    """The words for a stall given the printer's port status (None: it gave none).

    Paper first: a printer out of paper usually also drops its select and error lines, and
    "out of paper" is the one that tells a person what to do.
    """
    if port_status is None:
        return NOT_TAKING_DATA
    if port_status & LP_POUTPA:
        return OUT_OF_PAPER
    if not port_status & LP_PSELECD:
        return OFFLINE
    if not port_status & LP_PERRORP:
        return PRINTER_ERROR
    return NOT_TAKING_DATA


@dataclass(frozen=True)
class Stalled:
    """A stall began: the printer has taken nothing since `since` (monotonic seconds)."""

    since: float


@dataclass(frozen=True)
class Resumed:
    """The stall that began at `since` is over; it lasted `seconds` (to the tick that saw it)."""

    since: float
    seconds: float


class StallWatch:
    """One job's stall detector, fed at each tick with how long the pump has been waiting for
    the printer (see Pump.device_blocked_since) and answering with what changed."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self.since: float | None = None  # when the current stall began; None: no stall

    @property
    def stalled(self) -> bool:
        return self.since is not None

    def observe(self, now: float, blocked_since: float | None) -> Stalled | Resumed | None:
        """`blocked_since`: since when the printer has taken no byte while data waits for it
        (monotonic seconds), or None when it is not what the job waits for."""
        if self.since is not None:
            if blocked_since == self.since:
                return None  # still the same wait
            since, self.since = self.since, None  # bytes moved: over (another wait may begin)
            return Resumed(since, max(0.0, now - since))
        if blocked_since is not None and now - blocked_since >= self.timeout_s:
            self.since = blocked_since
            return Stalled(blocked_since)
        return None
