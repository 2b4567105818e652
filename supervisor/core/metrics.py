"""The service's metrics: counters kept while it runs, and the families it exposes (pure).

Counters live here, keyed by printer name, for the whole run: a reload that restarts a printer
hands its successor the same counters, so nothing goes backwards while the process runs (a
restart starts them over, which Prometheus' rate() and increase() expect). Labels are bounded:
a printer's name, and fixed sets of kinds, results, reasons and sources.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final

from supervisor.core.exposition import Family, Histogram, MetricType, Sample
from supervisor.core.machine import STATES
from supervisor.core.stall import REASONS as STALL_REASONS

PREFIX: Final = "printer_supervisor"
#: Print jobs last from a tenth of a second (a status query) to ten minutes (a long PDF).
JOB_DURATION_BUCKETS_S: Final = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
#: Why a job failed: the client went away, the printer failed, the client went quiet, or the
#: service ended it (unplug, stop, reload).
FAILURE_KINDS: Final = ("client", "device", "timeout", "aborted")
FIRMWARE_RESULTS: Final = ("ok", "failed", "missing")
REFUSAL_REASONS: Final = ("allow", "max_clients", "max_clients_per_address")
HOTPLUG_SOURCES: Final = ("udev", "kernel", "notify")
HOTPLUG_RELEVANCE: Final = ("relevant", "ignored", "invalid")
RELOAD_RESULTS: Final = ("ok", "failed")


@dataclass
class PrinterCounters:
    """What one printer has done since the service started."""

    jobs_finished: int = 0
    jobs_failed: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FAILURE_KINDS, 0))
    bytes_written: int = 0  # to the printer, by every job (failed ones too)
    bytes_read: int = 0  # from the printer (bidirectional)
    durations: Histogram = field(default_factory=lambda: Histogram(JOB_DURATION_BUCKETS_S))
    firmware: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(FIRMWARE_RESULTS, 0))
    refused: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REFUSAL_REASONS, 0))
    stalls: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STALL_REASONS, 0))

    def job(self, *, seconds: float, written: int, read: int, failure: str | None) -> None:
        """A job ended: finished when `failure` is None, else failed of that kind."""
        if failure is None:
            self.jobs_finished += 1
        else:
            self.jobs_failed[failure] += 1
        self.bytes_written += written
        self.bytes_read += read
        self.durations.observe(seconds)


@dataclass
class ServiceCounters:
    """What the service as a whole has done since it started."""

    hotplug: dict[tuple[str, str], int] = field(default_factory=lambda: {
        (source, relevance): 0 for source in HOTPLUG_SOURCES for relevance in HOTPLUG_RELEVANCE})
    reconciles: int = 0
    reloads: dict[str, int] = field(default_factory=lambda: dict.fromkeys(RELOAD_RESULTS, 0))
    printers: dict[str, PrinterCounters] = field(default_factory=dict)

    def printer(self, name: str) -> PrinterCounters:
        """The counters of printer `name`, made on first use and kept for the whole run."""
        counters = self.printers.get(name)
        if counters is None:
            counters = self.printers[name] = PrinterCounters()
        return counters


@dataclass(frozen=True)
class PrinterView:
    """One printer as the metrics show it now."""

    name: str
    state: str
    state_since_s: float  # Unix time it entered its state
    port: int
    product: str | None
    serial: str | None
    waiting: int
    listener_failed: bool
    firmware_present: bool | None  # None: it gets no firmware, or which is not known yet
    counters: PrinterCounters
    stalled: bool = False  # its printer takes no data while a job waits (a stall)
    job_written: int = 0  # bytes the running job has written to the printer so far
    job_read: int = 0  # ...and read from it


@dataclass(frozen=True)
class ProcessView:
    """The service process now."""

    version: str
    python: str
    start_time_s: float  # Unix time
    uptime_s: float
    rss_bytes: int
    cpu_s: float


def families(printers: Sequence[PrinterView], service: ServiceCounters,
             process: ProcessView) -> list[Family]:
    """Every family, printers' first, in a fixed order (a scrape diffs cleanly)."""
    return [*_printer_families(printers), *_service_families(service, process)]


def _family(name: str, kind: MetricType, help_text: str, samples: Iterable[Sample]) -> Family:
    return Family(f"{PREFIX}_{name}", kind, help_text, tuple(samples))


def _printer_families(printers: Sequence[PrinterView]) -> list[Family]:
    def each(value: float, p: PrinterView, **extra: str) -> Sample:
        return Sample({"printer": p.name, **extra}, value)

    def by(label: str, keys: Sequence[str],
           counts: Callable[[PrinterCounters], dict[str, int]]) -> Iterable[Sample]:
        """One sample per printer and `label` value: a counter kept by kind."""
        return (each(counts(p.counters)[key], p, **{label: key})
                for p in printers for key in keys)

    durations = [s for p in printers for s in p.counters.durations.samples({"printer": p.name})]
    return [
        _family("printer_info", "gauge",
                "Always 1; the printer's USB PRODUCT id, serial and TCP port as labels.",
                (each(1, p, product=p.product or "", serial=p.serial or "", port=str(p.port))
                 for p in printers)),
        _family("printer_state", "gauge",
                "1 for the state the printer is in now, 0 for the others.",
                (each(int(p.state == state), p, state=state)
                 for p in printers for state in STATES)),
        _family("printer_state_changed_timestamp_seconds", "gauge",
                "Unix time the printer entered its current state.",
                (each(p.state_since_s, p) for p in printers)),
        _family("jobs_finished_total", "counter",
                "Jobs that reached the printer whole.",
                (each(p.counters.jobs_finished, p) for p in printers)),
        _family("jobs_failed_total", "counter",
                "Jobs that ended early, by kind: client (its connection failed), device (the "
                "printer failed), timeout (idle_timeout), aborted (unplug, stop or reload).",
                by("kind", FAILURE_KINDS, lambda c: c.jobs_failed)),
        _family("device_written_bytes_total", "counter",
                "Bytes written to the printer by jobs, failed ones included, and by the "
                "running job so far.",
                (each(p.counters.bytes_written + p.job_written, p) for p in printers)),
        _family("device_read_bytes_total", "counter",
                "Bytes read from the printer and relayed to clients (bidirectional), the "
                "running job's so far included.",
                (each(p.counters.bytes_read + p.job_read, p) for p in printers)),
        _family("printer_stalled", "gauge",
                "1 while the printer takes no data though a job waits for it (stall_timeout).",
                (each(int(p.stalled), p) for p in printers)),
        _family("stalls_total", "counter",
                "Stalls by the reason first given: out of paper, offline, printer error, not "
                "taking data.",
                by("reason", STALL_REASONS, lambda c: c.stalls)),
        _family("job_duration_seconds", "histogram",
                "How long jobs took, from their first byte to their end.", durations),
        _family("firmware_pushes_total", "counter",
                "Firmware pushes by result: ok, failed, or missing (the file was not found).",
                by("result", FIRMWARE_RESULTS, lambda c: c.firmware)),
        _family("firmware_file_present", "gauge",
                "1 if the firmware file the printer needs is in firmware_dirs, 0 if not; only "
                "printers that need one.",
                (each(int(p.firmware_present), p) for p in printers
                 if p.firmware_present is not None)),
        _family("clients_waiting", "gauge",
                "Clients connected and waiting for the printer.",
                (each(p.waiting, p) for p in printers)),
        _family("connections_refused_total", "counter",
                "Connections closed at once, by reason: allow, max_clients, "
                "max_clients_per_address.",
                by("reason", REFUSAL_REASONS, lambda c: c.refused)),
        _family("listener_error", "gauge",
                "1 while the printer's port cannot be listened on (the log says why).",
                (each(int(p.listener_failed), p) for p in printers)),
    ]


def _service_families(service: ServiceCounters, process: ProcessView) -> list[Family]:
    return [
        _family("hotplug_events_total", "counter",
                "Hotplug events by source (udev, kernel, notify) and relevance (relevant: about "
                "a USB printer; ignored: not; invalid: could not be read).",
                (Sample({"source": source, "relevance": relevance}, count)
                 for (source, relevance), count in service.hotplug.items())),
        _family("reconciles_total", "counter",
                "Scans of the device tree compared with the known printers.",
                (Sample({}, service.reconciles),)),
        _family("reloads_total", "counter",
                "Configuration reloads by result: ok, or failed (the old one stays in force).",
                (Sample({"result": result}, count) for result, count in service.reloads.items())),
        _family("build_info", "gauge",
                "Always 1; the service's version and Python's as labels.",
                (Sample({"version": process.version, "python": process.python}, 1),)),
        _family("start_time_seconds", "gauge", "Unix time the service started.",
                (Sample({}, round(process.start_time_s, 3)),)),
        _family("uptime_seconds", "gauge", "Seconds since the service started.",
                (Sample({}, round(process.uptime_s, 3)),)),
        _family("resident_memory_bytes", "gauge", "Resident memory of the service process.",
                (Sample({}, process.rss_bytes),)),
        _family("cpu_seconds_total", "counter",
                "CPU time of the service process, user and system.",
                (Sample({}, round(process.cpu_s, 3)),)),
    ]
