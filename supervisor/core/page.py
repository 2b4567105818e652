"""The read-only status page: the status document and the last log events as HTML (pure).

One self-contained document: no scripts, no images, no fonts or style sheets from elsewhere
(the server also forbids them with a Content-Security-Policy), so it works on a LAN with no
internet and shows nothing a browser could be tricked into running.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from supervisor.core.stall import NOT_TAKING_DATA, OFFLINE, OUT_OF_PAPER, PRINTER_ERROR
from supervisor.core.status import human_bytes

REFRESH_S: Final = 30
_SHOWN_ELSEWHERE: Final = frozenset({"timestamp", "level", "event", "printer", "logger",
                                      "exc_info"})

_STYLE: Final = """
body{font:15px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;background:#fff}
h1{font-size:1.3em;margin:0 0 .2em}h2{font-size:1.1em;margin:1.4em 0 .4em}
p.daemon{color:#555;margin:0}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:.35em .6em;border-bottom:1px solid #ddd;vertical-align:top}
th{background:#f4f4f4}code{font-size:.95em}
.state{font-weight:600}.ready,.serving{color:#176f2c}.firmware-needed{color:#9a5b00}
.absent{color:#777}.error{color:#a11}.quiet{color:#777}
td.level-warning{color:#9a5b00}td.level-error,td.level-critical{color:#a11}
.stall{border:2px solid #a11;background:#fdecea;color:#611;padding:.6em .9em;margin:.8em 0;
font-size:1.1em}.stall strong{color:#a11}
"""
#: What a person reads, and does, for each reason a printer gives for a stall.
_STALL_WORDS: Final = {
    OUT_OF_PAPER: ("it is out of paper", "Add paper: the job goes on by itself."),
    OFFLINE: ("it is offline", "Put it online (its Online or Ready button), or switch it on: "
              "the job goes on by itself."),
    PRINTER_ERROR: ("it reports an error", "Look at its panel: a paper jam, an open cover, "
                    "toner or ink. Once that is fixed the job goes on by itself."),
    NOT_TAKING_DATA: ("it takes no data and gives no reason",
                      "Look at the printer: paper, a jam, its panel, the cable. The job goes on "
                      "as soon as it takes data again."),
}


def escape(text: object) -> str:
    """Text for HTML element content and double-quoted attributes."""
    return (str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;").replace("'", "&#39;"))


def printer_uri(host: str, port: int) -> str:
    """What to give CUPS (or any AppSocket client) to print here."""
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"socket://{shown}:{port}"


def render_page(status: Mapping[str, Any], events: Sequence[Mapping[str, Any]],
                host: str) -> str:
    """The page for `status` (the status document) and `events` (oldest first), with each
    printer's URI on `host` (the name the browser reached this page by)."""
    daemon = status["daemon"]
    printers = status["printers"]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="refresh" content="{REFRESH_S}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Printers on {escape(host)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>Printers on {escape(host)}</h1>",
        f'<p class="daemon">printer-supervisor {escape(daemon["version"])}, up '
        f'{_duration(daemon["uptime_s"])}; hotplug events from {escape(daemon["event_source"])}'
        + (f'; <span class="error">{escape(daemon["error"])}</span>'
           if daemon.get("error") else "") + "</p>",
        *(_stall_notice(p) for p in printers if p.get("stalled_since")),
        "<h2>Printers</h2>",
        _printers_table(printers, host),
        "<h2>Recent events</h2>",
        _events_table(events),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _printers_table(printers: Sequence[Mapping[str, Any]], host: str) -> str:
    if not printers:
        return '<p class="quiet">No printer yet: plug one in.</p>'
    rows = ["<table><thead><tr><th>Printer</th><th>State</th><th>Port</th><th>Add it as</th>"
            "<th>Printing now</th><th>Jobs</th><th>Waiting</th><th>Last error</th></tr></thead>"
            "<tbody>"]
    for p in printers:
        listening = p["state"] in ("ready", "serving")
        uri = printer_uri(host, p["port"])
        error = (f'<span class="error">{escape(p["error"])}</span>'
                 f'<br><span class="quiet">since {escape(p.get("error_since") or "?")}</span>'
                 if p["error"] else '<span class="quiet">none</span>')
        what = " ".join(escape(v) for v in (p.get("product"), p.get("serial")) if v)
        rows.append(
            f'<tr id="printer-{escape(p["name"])}"><td><strong>{escape(p["name"])}</strong>'
            + (f'<br><span class="quiet">{what}</span>' if what else "") + "</td>"
            f'<td><span class="state {escape(p["state"])}">{escape(p["state"])}</span>'
            f'<br><span class="quiet">since {escape(p["since"])}</span></td>'
            f'<td>{p["port"]}</td>'
            f"<td><code>{escape(uri)}</code>"
            + ("" if listening else '<br><span class="quiet">(not listening now)</span>')
            + f"</td><td>{_job_cell(p)}</td>"
            f'<td>{p["jobs"]}</td><td>{p["queued"]}</td><td>{error}</td></tr>')
    rows.append("</tbody></table>")
    return "\n".join(rows)


def _stall_notice(printer: Mapping[str, Any]) -> str:
    """The banner over the table: which printer stopped printing, why, and what to do."""
    reason = str(printer.get("stall_reason") or NOT_TAKING_DATA)
    what, todo = _STALL_WORDS.get(reason, (reason, ""))
    job = printer.get("job") or {}
    waiting = job.get("bytes_in", 0) - job.get("bytes_written", 0)
    return (f'<div class="stall" id="stall-{escape(printer["name"])}" role="alert">'
            f'<strong>{escape(printer["name"])} is not printing: {escape(what)}.</strong> '
            f"{escape(todo)}<br>It has taken no data since "
            f'{escape(_when(printer["stalled_since"]))} UTC'
            + (f"; {escape(human_bytes(waiting))} of the job wait here for it" if waiting > 0
               else "")
            + (f', and {escape(printer["queued"])} more client(s) wait their turn'
               if printer.get("queued") else "")
            + ".</div>")


def _job_cell(printer: Mapping[str, Any]) -> str:
    job = printer.get("job")
    if not job:
        return '<span class="quiet">nothing</span>'
    stalled = (f'<br><strong class="error">stalled: {escape(printer.get("stall_reason"))}'
               "</strong>" if printer.get("stalled_since") else "")
    return (f'from {escape(job["client"])}<br><span class="quiet">since '
            f'{escape(_when(job["since"]))}</span><br>{escape(human_bytes(job["bytes_in"]))} '
            f'received, {escape(human_bytes(job["bytes_written"]))} sent to the printer{stalled}')


def _events_table(events: Sequence[Mapping[str, Any]]) -> str:
    if not events:
        return '<p class="quiet">No events yet.</p>'
    rows = ['<table><thead><tr><th>Time (UTC)</th><th>Level</th><th>Event</th><th>Printer</th>'
            "<th>Details</th></tr></thead><tbody>"]
    for event in reversed(events):  # newest first
        level = str(event.get("level", ""))
        details = " ".join(f"{escape(key)}={escape(_short(value))}"
                           for key, value in event.items() if key not in _SHOWN_ELSEWHERE)
        rows.append(f'<tr><td>{escape(_when(event.get("timestamp", "")))}</td>'
                    f'<td class="level-{escape(level)}">{escape(level)}</td>'
                    f'<td>{escape(event.get("event", ""))}</td>'
                    f'<td>{escape(event.get("printer") or "")}</td><td>{details}</td></tr>')
    rows.append("</tbody></table>")
    return "\n".join(rows)


def _when(timestamp: object) -> str:
    """`2026-11-29T06:39:03.826489Z` → `2026-11-29 06:39:03`."""
    return str(timestamp)[:19].replace("T", " ")


def _short(value: object, limit: int = 200) -> str:
    text = str(value)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _duration(seconds: float) -> str:
    whole = int(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{secs} s"
