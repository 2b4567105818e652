"""The reference pages (man/*.rst → roff) say exactly what the code knows, and render cleanly:
every configuration key, log event, command, option and status field, and nothing else."""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from harness import require_peer

from supervisor.config.settings import DaemonSettings, PrinterSettings
from supervisor.core.metrics import (
    PrinterCounters,
    PrinterView,
    ProcessView,
    ServiceCounters,
    families,
)
from supervisor.core.status import DaemonStatus, PrinterStatus
from supervisor.ctl.cli import build_parser
from supervisor.protocol import CONFIG_ENV, HOTPLUG_KEYS, SOCKET_ENV

ROOT = Path(__file__).resolve().parent.parent
MAN = ROOT / "man"
PAGES = ["supervisorctl.1", "printer-supervisor.conf.5", "printer-supervisor.8"]
SOURCE = ROOT / "supervisor"


def sections(page: str) -> dict[str, str]:
    """The page's text by top-level heading (a line underlined with ===)."""
    lines = (MAN / f"{page}.rst").read_text(encoding="utf-8").splitlines()
    found: dict[str, list[str]] = {}
    current = ""
    for line, below in zip(lines, [*lines[1:], ""], strict=True):
        if below.startswith("===") and len(below) >= len(line) > 0:
            current = line
            found[current] = []
        elif current and not line.startswith("==="):
            found[current].append(line)
    return {title: "\n".join(body) for title, body in found.items()}


def terms(text: str) -> set[str]:
    """The names a definition list defines: ``name`` tokens on its unindented term lines."""
    return {name for line in text.splitlines() if line.startswith("``")
            for name in re.findall(r"``([^`]+)``", line)}


# -- the pages are built from their sources, and render --------------------------------------
@pytest.mark.parametrize("page", PAGES)
def test_the_committed_roff_is_what_the_source_renders_to(page: str, tmp_path: Path) -> None:
    out = tmp_path / page
    subprocess.run([sys.executable, "-m", "docutils", "--writer=manpage", "--halt=warning",
                    str(MAN / f"{page}.rst"), str(out)], check=True, timeout=60)

    def body(path: Path) -> list[str]:  # the generator's comment names its version
        return [line for line in path.read_text().splitlines() if not line.startswith('.\\"')]

    assert body(out) == body(MAN / page), f"run `make man` and commit man/{page}"


@pytest.mark.parametrize("page", PAGES)
def test_each_page_renders_without_warnings(page: str) -> None:
    groff = require_peer("groff", "groff-base")
    result = subprocess.run([groff, "-man", "-Tutf8", "-ww", "-z", str(MAN / page)],
                            capture_output=True, text=True, timeout=60, check=False,
                            env={**os.environ, "LC_ALL": "C.UTF-8"})
    assert (result.returncode, result.stderr) == (0, "")


def test_man_reads_them() -> None:
    man = require_peer("man", "man-db")
    result = subprocess.run([man, "-l", str(MAN / "supervisorctl.1")], capture_output=True,
                            text=True, timeout=60, check=False,
                            env={**os.environ, "MANPAGER": "cat", "MANWIDTH": "80"})
    assert result.returncode == 0 and "check-config" in result.stdout, result.stderr


# -- they say exactly what the code knows ----------------------------------------------------
def field_names(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def test_every_configuration_key_and_no_other() -> None:
    page = sections("printer-supervisor.conf.5")
    assert terms(page["DAEMON KEYS"]) == field_names(DaemonSettings)
    assert terms(page["PRINTER KEYS"]) == field_names(PrinterSettings)


def emitted_events() -> set[str]:
    """Every event name the code logs: the logger calls, the folded lines, the refusals."""
    events: set[str] = set()
    for path in SOURCE.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        events |= set(re.findall(
            r'\.(?:debug|info|warning|error|exception|critical)\(\s*"([a-z_]+)"', text))
        events |= set(re.findall(r'_folded\.log\(\s*"[a-z]+",\s*"([a-z_]+)"', text))
        events |= set(re.findall(r'getattr\([^)]*\)\(\s*"([a-z_]+)"', text))
        events |= set(re.findall(r'return\s*\(?\s*"([a-z_]+)",\s*"(?:debug|info|warning|error)"',
                                 text))
        events |= set(re.findall(r'(?:\{"event": |\._tell\()"([a-z_]+)"', text))  # the log's own
    return events


def test_every_log_event_and_no_other() -> None:
    code = emitted_events()
    assert {"job_finished", "client_refused", "client_probe", "state_changed"} <= code
    assert terms(sections("printer-supervisor.8")["EVENTS"]) == code


def test_every_status_field_and_no_other() -> None:
    status = sections("printer-supervisor.8")["STATUS"]
    daemon, printers = status.split("Printer fields:")
    assert terms(daemon) == field_names(DaemonStatus)
    assert terms(printers) == field_names(PrinterStatus)


def test_every_metric_and_no_other() -> None:
    counters = PrinterCounters()
    view = PrinterView(name="lp", state="ready", state_since_s=0.0, port=9100, product=None,
                       serial=None, waiting=0, listener_failed=False, firmware_present=True,
                       counters=counters)
    process = ProcessView(version="1", python="3", start_time_s=0.0, uptime_s=0.0, rss_bytes=0,
                          cpu_s=0.0)
    exposed = {f.name for f in families([view], ServiceCounters(), process)}
    assert terms(sections("printer-supervisor.8")["METRICS"]) == exposed


def cli() -> tuple[set[str], set[str]]:
    """The commands, and every long option of supervisorctl and of its commands."""
    parser = build_parser()
    options = {o for a in parser._actions for o in a.option_strings if o.startswith("--")}
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for command in subparsers.choices.values():
        options |= {o for a in command._actions for o in a.option_strings if o.startswith("--")}
    return set(subparsers.choices), options


def test_every_command_and_option_and_no_other() -> None:
    commands, options = cli()
    page = sections("supervisorctl.1")
    assert {term.split()[0] for term in terms(page["COMMANDS"])} == commands
    text = (MAN / "supervisorctl.1.rst").read_text(encoding="utf-8")
    assert set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", text)) == options


def test_every_variable_notify_reads() -> None:
    environment = sections("supervisorctl.1")["ENVIRONMENT"]
    assert {CONFIG_ENV, SOCKET_ENV, " ".join(HOTPLUG_KEYS)} <= terms(environment)


def test_readme_points_to_the_pages_not_to_spec() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "SPEC" not in readme
    for page in ("supervisorctl(1)", "printer-supervisor.conf(5)", "printer-supervisor(8)"):
        assert page in readme
