"""The pure parts of the metrics: the text format, the families, the status page."""

from __future__ import annotations

import math

import pytest

from supervisor.core.exposition import Family, Histogram, Sample, escape_label, render
from supervisor.core.exposition import format_value as fmt
from supervisor.core.metrics import (
    FAILURE_KINDS,
    PrinterCounters,
    PrinterView,
    ProcessView,
    ServiceCounters,
    families,
)
from supervisor.core.page import printer_uri, render_page


# -- the text format -------------------------------------------------------------------------
@pytest.mark.parametrize(("value", "text"), [
    (0, "0"), (3, "3"), (2.0, "2"), (0.25, "0.25"), (1e-7, "1e-07"), (2**60, str(2**60)),
    (1795934339.291496, "1795934339.291496"), (math.inf, "+Inf"), (-math.inf, "-Inf"),
    (math.nan, "NaN"), (-1.5, "-1.5"),
])
def test_values(value: float, text: str) -> None:
    assert fmt(value) == text


@pytest.mark.parametrize(("raw", "escaped"), [
    ("plain", "plain"), ('say "hi"', 'say \\"hi\\"'), ("a\\b", "a\\\\b"),
    ("two\nlines", "two\\nlines"),
    ("Drucker für's Büro", "Drucker für's Büro"),
])
def test_label_values_are_escaped(raw: str, escaped: str) -> None:
    assert escape_label(raw) == escaped


def test_a_family_renders_help_type_and_samples_in_order() -> None:
    family = Family("x_total", "counter", "Line one\nback\\slash",
                    (Sample({"printer": 'a"b'}, 1), Sample({}, 2.5)))
    assert render([family]) == (
        "# HELP x_total Line one\\nback\\\\slash\n"
        "# TYPE x_total counter\n"
        'x_total{printer="a\\"b"} 1\n'
        "x_total 2.5\n")
    assert render([]) == ""


def test_a_histogram_is_cumulative_with_sum_and_count() -> None:
    histogram = Histogram((0.1, 1.0, 10.0))
    for seconds in (0.05, 0.1, 0.5, 20.0):
        histogram.observe(seconds)
    lines = render([Family("d_seconds", "histogram", "h", histogram.samples({"p": "x"}))])
    assert lines.splitlines()[2:] == [
        'd_seconds_bucket{p="x",le="0.1"} 2',  # bounds are inclusive
        'd_seconds_bucket{p="x",le="1"} 3',
        'd_seconds_bucket{p="x",le="10"} 3',
        'd_seconds_bucket{p="x",le="+Inf"} 4',
        'd_seconds_sum{p="x"} 20.65',
        'd_seconds_count{p="x"} 4',
    ]


@pytest.mark.parametrize("buckets", [(), (1.0, 0.5), (1.0, 1.0)])
def test_histogram_buckets_must_increase(buckets: tuple[float, ...]) -> None:
    with pytest.raises(ValueError, match="increasing"):
        Histogram(buckets)


# -- the families ----------------------------------------------------------------------------
PROCESS = ProcessView(version="0.1.0", python="3.11.7", start_time_s=1.0e9, uptime_s=12.5,
                      rss_bytes=20 << 20, cpu_s=0.75)


def view(name: str = "lp", state: str = "ready", **changes: object) -> PrinterView:
    fields: dict[str, object] = dict(
        name=name, state=state, state_since_s=1.0e9, port=9101, product="3f0/4117/100",
        serial="CNB1", waiting=2, listener_failed=False, firmware_present=None,
        counters=PrinterCounters())
    fields.update(changes)
    return PrinterView(**fields)  # type: ignore[arg-type]


def samples(text: str) -> dict[str, float]:
    """`name{labels}` → value, for every sample line."""
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
            for line in text.splitlines() if line and not line.startswith("#")}


def test_the_state_is_one_hot_and_every_kind_is_there_from_the_start() -> None:
    shown = samples(render(families([view(state="serving")], ServiceCounters(), PROCESS)))
    states = {k: v for k, v in shown.items() if k.startswith("printer_supervisor_printer_state{")}
    assert states == {
        'printer_supervisor_printer_state{printer="lp",state="absent"}': 0,
        'printer_supervisor_printer_state{printer="lp",state="firmware-needed"}': 0,
        'printer_supervisor_printer_state{printer="lp",state="ready"}': 0,
        'printer_supervisor_printer_state{printer="lp",state="serving"}': 1,
    }
    for kind in FAILURE_KINDS:  # a rate() over a series needs it before the first failure
        assert shown[f'printer_supervisor_jobs_failed_total{{printer="lp",kind="{kind}"}}'] == 0
    assert shown['printer_supervisor_printer_info{printer="lp",product="3f0/4117/100",'
                 'serial="CNB1",port="9101"}'] == 1
    assert shown['printer_supervisor_clients_waiting{printer="lp"}'] == 2
    assert shown['printer_supervisor_hotplug_events_total{source="notify",relevance="invalid"}'] \
        == 0
    assert shown["printer_supervisor_resident_memory_bytes"] == 20 << 20
    assert shown['printer_supervisor_build_info{version="0.1.0",python="3.11.7"}'] == 1


def test_jobs_are_counted_by_outcome_with_their_bytes_and_duration() -> None:
    counters = PrinterCounters()
    counters.job(seconds=0.2, written=100, read=7, failure=None)
    counters.job(seconds=700.0, written=5, read=0, failure="timeout")
    shown = samples(render(families([view(counters=counters)], ServiceCounters(), PROCESS)))
    assert shown['printer_supervisor_jobs_finished_total{printer="lp"}'] == 1
    assert shown['printer_supervisor_jobs_failed_total{printer="lp",kind="timeout"}'] == 1
    assert shown['printer_supervisor_device_written_bytes_total{printer="lp"}'] == 105
    assert shown['printer_supervisor_device_read_bytes_total{printer="lp"}'] == 7
    assert shown['printer_supervisor_job_duration_seconds_bucket{printer="lp",le="0.5"}'] == 1
    assert shown['printer_supervisor_job_duration_seconds_bucket{printer="lp",le="600"}'] == 1
    assert shown['printer_supervisor_job_duration_seconds_bucket{printer="lp",le="+Inf"}'] == 2


def test_the_firmware_file_is_shown_only_for_printers_that_need_one() -> None:
    text = render(families([view("a", firmware_present=True), view("b", firmware_present=False),
                            view("c")], ServiceCounters(), PROCESS))
    present = {k: v for k, v in samples(text).items()
               if k.startswith("printer_supervisor_firmware_file_present")}
    assert present == {'printer_supervisor_firmware_file_present{printer="a"}': 1,
                       'printer_supervisor_firmware_file_present{printer="b"}': 0}


def test_a_printer_keeps_its_counters_for_the_whole_run() -> None:
    service = ServiceCounters()
    first = service.printer("lp")
    first.jobs_finished = 3
    assert service.printer("lp") is first  # a reload's new runtime gets the same object


# -- the page --------------------------------------------------------------------------------
STATUS = {"daemon": {"version": "0.1.0", "uptime_s": 3725.0, "event_source": "udev",
                     "error": None},
          "printers": [{"name": "lp", "state": "ready", "port": 9101, "jobs": 4, "queued": 0,
                        "product": "3f0/4117/100", "serial": None,
                        "error": "<script>alert(1)</script>",
                        "error_since": "2026-11-29T06:00:00Z", "since": "2026-11-29T05:00:00Z"}]}


def test_the_page_shows_each_printer_with_its_uri_and_escapes_everything() -> None:
    events = [{"timestamp": "2026-11-29T06:39:03.826489Z", "level": "info",
               "event": "job_finished", "printer": "lp", "client": "<b>x</b>"}]
    page = render_page(STATUS, events, "printserver.lan")
    assert "socket://printserver.lan:9101" in page
    assert "<script" not in page and "&lt;script&gt;" in page
    assert "&lt;b&gt;x&lt;/b&gt;" in page and "2026-11-29 06:39:03" in page
    assert "since 2026-11-29T06:00:00Z" in page and "up 1 h 2 min" in page
    assert "src=" not in page and "href=" not in page  # nothing to load


@pytest.mark.parametrize(("host", "uri"), [
    ("192.168.1.1", "socket://192.168.1.1:9101"), ("fd00::1", "socket://[fd00::1]:9101"),
    ("router.lan", "socket://router.lan:9101"),
])
def test_printer_uris(host: str, uri: str) -> None:
    assert printer_uri(host, 9101) == uri
