"""observe.log against structlog, the library it replaced: the same calls give the same records
(structlog with the chain the service had: TimeStamper iso/utc, dict_tracebacks, JSONRenderer)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import structlog

from supervisor.observe import log

ISO_Z = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


def calls(get_logger: Callable[[str], Any]) -> None:
    """What the service's modules do with a logger."""
    plain = get_logger("supervisor")
    plain.info("daemon_started", version="0.1.0", pid=123, config=None, printers=2)
    printer = plain.bind(printer="laserjet")
    printer.bind(client="[::1]:5").info("job_finished", bytes_in=184, seconds=0.25)
    printer.warning("client_rejected", client="10.0.0.9:1", reason="not in allow")
    printer.debug("state_changed", **{"from": "ready"}, to="serving", trigger="job_started")
    printer.error("listener_failed", port=9100, error="port 9100 is in use", retry_s=1.0)
    printer.info("odd", path=ValueError("not JSON"), items=["a", 1, None], nested={"k": 2})
    try:
        try:
            raise KeyError("inner")
        except KeyError as exc:
            raise RuntimeError("outer") from exc
    except RuntimeError:
        printer.exception("forwarder_crashed", error="RuntimeError('outer')")
    try:
        try:
            raise OSError(5, "I/O error")
        except OSError:
            raise ValueError("while handling") from None
    except ValueError:
        plain.exception("rescan_failed")


@pytest.fixture
def structlog_lines() -> Iterator[list[str]]:
    lines: list[str] = []

    def keep(_logger: object, _method: str, rendered: str) -> str:
        lines.append(rendered)
        raise structlog.DropEvent

    def add_level(_logger: object, method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
        event_dict["level"] = "error" if method == "exception" else method
        return event_dict

    structlog.configure(
        processors=[structlog.contextvars.merge_contextvars,
                    structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
                    add_level, structlog.processors.dict_tracebacks,
                    structlog.processors.JSONRenderer(), keep],
        wrapper_class=structlog.make_filtering_bound_logger(10),
        logger_factory=structlog.ReturnLoggerFactory(), cache_logger_on_first_use=False)
    try:
        yield lines
    finally:
        structlog.reset_defaults()


def ours() -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    log.configure(lambda record, _level: records.append(json.loads(json.dumps(record,
                                                                             default=repr))),
                  log.DEBUG)
    try:
        calls(log.get_logger)
    finally:
        log.configure(None)
    return records


def comparable(record: dict[str, Any]) -> dict[str, Any]:
    """What both must agree on: every field and its order; times by format; exceptions by
    type, message, cause and frames (structlog adds its own extra keys there)."""
    out = dict(record)
    assert ISO_Z.fullmatch(out.pop("timestamp")), record
    if "exception" in out:
        out["exception"] = [{"exc_type": e["exc_type"], "exc_value": e["exc_value"],
                             "is_cause": e["is_cause"],
                             "frames": [(f["filename"], f["lineno"], f["name"])
                                        for f in e["frames"]]}
                            for e in out["exception"]]
    return out


def test_the_same_records_as_structlog(structlog_lines: list[str]) -> None:
    calls(structlog.get_logger)
    theirs = [comparable(json.loads(line)) for line in structlog_lines]
    mine = [comparable(record) for record in ours()]
    assert [list(r) for r in mine] == [list(r) for r in theirs]  # field order too
    for a, b in zip(mine, theirs, strict=True):
        if "exception" in a:  # the calls are on other lines of this file: frames differ there
            for x, y in zip(a.pop("exception"), b.pop("exception"), strict=True):
                assert (x["exc_type"], x["exc_value"], x["is_cause"]) == (
                    y["exc_type"], y["exc_value"], y["is_cause"])
                assert [f[2] for f in x["frames"]] == [f[2] for f in y["frames"]]
        assert a == b


def test_levels_below_the_threshold_are_not_even_built() -> None:
    records: list[dict[str, Any]] = []
    log.configure(lambda record, _level: records.append(record), log.WARNING)
    try:
        logger = log.get_logger().bind(printer="p")
        logger.debug("a")
        logger.info("b")
        logger.warning("c")
        logger.error("d")
    finally:
        log.configure(None)
    assert [(r["event"], r["level"], r["printer"]) for r in records] == [
        ("c", "warning", "p"), ("d", "error", "p")]


def test_without_a_sink_nothing_happens() -> None:
    log.configure(None)
    log.get_logger().error("nowhere", x=1)  # neither raises nor prints
