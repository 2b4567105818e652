"""What `status` reports (SPEC §6), built from the registry and the printers' models."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class JobStatus:
    """The job a printer is serving now, as far as it got."""

    client: str  # "address:port"
    since: str  # when its first byte came (ISO 8601, UTC)
    bytes_in: int  # received from the client so far
    bytes_written: int  # accepted by the printer so far


@dataclass(frozen=True)
class PrinterStatus:
    """One printer's line in `status`; unknown values are None."""

    name: str
    state: str
    product: str | None
    serial: str | None
    device: str | None
    port: int
    bidirectional: bool
    firmware: str | None
    jobs: int
    bytes: int
    queued: int
    error: str | None
    since: str
    mdns: str | None = None  # the name it is announced under over mDNS/DNS-SD, if it is
    error_since: str | None = None  # when `error` was first seen
    job: JobStatus | None = None  # the running job, None when there is none
    stalled_since: str | None = None  # the printer has taken no data since, while data waits
    stall_reason: str | None = None  # why, in words (see core/stall.py); None when no stall


@dataclass(frozen=True)
class DaemonStatus:
    version: str
    pid: int
    event_source: str
    uptime_s: float
    mdns: str = "off"  # off, unavailable, or the responder in use (avahi, umdns)
    http: str | None = None  # the address the status page and /metrics listen on, if they do
    metrics_file: str | None = None  # the Prometheus textfile kept, if one is
    error: str | None = None  # the service's own problems that still hold (a port taken)


def iso_utc(moment: datetime) -> str:
    """`2026-11-23T12:00:00Z`: whole seconds, UTC, as the status contract shows."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def human_bytes(value: object) -> str:
    """A byte count for people: 512 B, 3.0 MiB; "?" when it is not a count."""
    if not isinstance(value, int) or isinstance(value, bool):
        return "?"
    if value < 1024:
        return f"{value} B"
    amount, shown = float(value), "B"
    for unit in ("KiB", "MiB", "GiB"):
        amount, shown = amount / 1024, unit
        if amount < 1024:
            break
    return f"{amount:.1f} {shown}"


def status_document(daemon: DaemonStatus, printers: list[PrinterStatus]) -> dict[str, Any]:
    """The object `status --json` prints."""
    return {"daemon": asdict(daemon), "printers": [asdict(p) for p in printers]}


def status_line(printers: list[PrinterStatus]) -> str:
    """One line for systemd's STATUS=: each printer's state and port, a stall and its reason,
    and errors if any."""
    if not printers:
        return "no printers yet"
    parts = [f"{p.name} {p.state}" + (f" :{p.port}" if p.state in ("ready", "serving") else "")
             + (f" STALLED ({p.stall_reason})" if p.stalled_since is not None else "")
             for p in printers]
    errors = sum(p.error is not None for p in printers)
    return "; ".join(parts) + (f" ({errors} with errors: supervisorctl status)" if errors else "")
