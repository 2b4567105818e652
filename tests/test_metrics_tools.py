"""The metrics and the status page read by the real tools that will read them in the field:
`promtool check metrics` (no lint warning), a real Prometheus scraping /metrics, node_exporter's
textfile collector reading `metrics_file`, and a headless Chromium loading the status page
(which must fetch nothing but the page itself).

Every tool is a peer: missing, its test skips here and fails on CI. Every tool listens on
127.0.0.1 only, on a free port, and is killed when its test ends.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import struct
import subprocess
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from functools import partial
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from harness import ServiceThread, free_port, require_peer, send_job, wait_until

from supervisor.lab.virtual import VirtualPrinter

StartService = Callable[..., ServiceThread]
PREFIX = "printer_supervisor_"
TEXTFILE = "printer_supervisor.prom"
TOOL_WAIT_S = 30.0  # a tool's start-up, or Prometheus' first scrapes, on a loaded 2-core box


# -- the service ---------------------------------------------------------------------------------
def static(printer: VirtualPrinter, port: int) -> dict[str, object]:
    return {"name": "lp", "device": str(printer.path), "port": port}


def finished_job(printer: VirtualPrinter, port: int) -> None:
    data = b"\x1b%-12345X@PJL a finished job\r\n"
    before = len(printer.wait_for_bytes(0))  # the paper printed so far
    assert send_job(port, data) == b""
    assert printer.wait_for_bytes(before + len(data))[before:] == data


def reset_job(printer: VirtualPrinter, port: int) -> None:
    """A client that sends part of a job, then resets its connection: a failed job (client)."""
    before = len(printer.wait_for_bytes(0))
    with socket.create_connection(("127.0.0.1", port), timeout=15) as conn:
        conn.sendall(b"half a job")
        assert printer.wait_for_bytes(before + 10)[before:] == b"half a job"  # under way
        # SO_LINGER on, 0 s: close() sends a RST instead of a FIN.
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def get(url: str, timeout_s: float = 15.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout_s) as answer:
        return str(answer.read().decode())


def samples(text: str) -> dict[str, str]:
    """`name{labels}` → value, as the exposition shows them."""
    return {line.rsplit(" ", 1)[0]: line.rsplit(" ", 1)[1]
            for line in text.splitlines() if line and not line.startswith("#")}


def types(text: str) -> dict[str, str]:
    """Family name → its `# TYPE`."""
    return {line.split()[2]: line.split()[3]
            for line in text.splitlines() if line.startswith("# TYPE ")}


FINISHED = f'{PREFIX}jobs_finished_total{{printer="lp"}}'
FAILED_CLIENT = f'{PREFIX}jobs_failed_total{{printer="lp",kind="client"}}'
READY = f'{PREFIX}printer_state{{printer="lp",state="ready"}}'


# -- external processes --------------------------------------------------------------------------
@contextmanager
def running(argv: Sequence[str], log: Path, **kwargs: Any) -> Iterator[subprocess.Popen[bytes]]:
    """`argv` in its own process group, output to `log`; the whole group is killed after."""
    with log.open("wb") as output:
        proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=output,
                                stderr=subprocess.STDOUT, start_new_session=True, **kwargs)
    try:
        yield proc
    finally:
        end_group(proc)


def end_group(proc: subprocess.Popen[bytes], grace_s: float = 10.0) -> None:
    """SIGTERM to the process group `proc` leads (it started it), SIGKILL if it lingers."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break  # the group is gone
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            continue
        with suppress(ProcessLookupError):  # the leader is gone; its children may not be
            os.killpg(proc.pid, signal.SIGKILL)
        break
    proc.wait()


def alive(proc: subprocess.Popen[bytes], log: Path) -> None:
    if proc.poll() is not None:
        pytest.fail(f"{proc.args!r} exited with {proc.returncode}:\n"
                    + log.read_text(errors="replace")[-4000:])


def answers(url: str, proc: subprocess.Popen[bytes], log: Path) -> str | None:
    """The body at `url`, or None while nothing answers there yet (`proc` must be running)."""
    alive(proc, log)
    try:
        return get(url, timeout_s=5.0)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


# -- 1. promtool ---------------------------------------------------------------------------------
def promtool_check(promtool: str, text: str) -> tuple[int, str]:
    result = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                            text=True, timeout=60, check=False)
    return result.returncode, result.stdout + result.stderr


def test_promtool_accepts_the_scrape_and_the_textfile_without_a_lint_warning(
        printer: VirtualPrinter, start_service: StartService, tmp_path: Path) -> None:
    promtool = require_peer("/usr/bin/promtool", "prometheus")
    # The check can fail: a counter without _total is a lint problem, and promtool says so.
    code, said = promtool_check(promtool, "# HELP x_jobs Jobs.\n# TYPE x_jobs counter\n"
                                          "x_jobs 1\n")
    assert code != 0 and '"_total" suffix' in said, said

    port, http_port = free_port(), free_port()
    textfile = tmp_path / "textfile" / TEXTFILE
    textfile.parent.mkdir()
    service = start_service([static(printer, port)], http_listen=f"127.0.0.1:{http_port}",
                            metrics_file=str(textfile))
    service.log.wait_for("http_listener_started")
    service.log.wait_for("listener_started")
    finished_job(printer, port)
    reset_job(printer, port)
    service.log.wait_for("job_failed")
    url = f"http://127.0.0.1:{http_port}/metrics"
    wanted = {FINISHED: "1", FAILED_CLIENT: "1", READY: "1"}

    def shows_both_jobs(text: str) -> bool:
        shown = samples(text)
        return all(shown.get(key) == value for key, value in wanted.items())

    scraped = wait_until(lambda: (text := get(url)) and shows_both_jobs(text) and text,
                         what="both jobs in /metrics")
    written = wait_until(lambda: textfile.exists() and (text := textfile.read_text())
                         and shows_both_jobs(text) and text, what="both jobs in the textfile")
    for where, text in (("/metrics", scraped), (str(textfile), written)):
        families = types(text)
        assert len(families) >= 20, (where, families)
        assert families[f"{PREFIX}job_duration_seconds"] == "histogram", where
        assert samples(text)[f'{PREFIX}job_duration_seconds_count{{printer="lp"}}'] == "2", where
        assert {f"{PREFIX}build_info", f"{PREFIX}uptime_seconds",
                f"{PREFIX}printer_state"} <= families.keys(), where
        assert promtool_check(promtool, text) == (0, ""), where


# -- 2. Prometheus -------------------------------------------------------------------------------
def query(api: str, promql: str) -> list[dict[str, Any]]:
    """The instant vector `promql` evaluates to now."""
    answer = json.loads(get(f"{api}/api/v1/query?" + urllib.parse.urlencode({"query": promql})))
    assert answer["status"] == "success", answer
    return list(answer["data"]["result"])


def value(api: str, promql: str) -> str | None:
    """The value of the one series `promql` selects, or None while there is none."""
    result = query(api, promql)
    assert len(result) <= 1, result
    return str(result[0]["value"][1]) if result else None


def test_prometheus_scrapes_the_listener(printer: VirtualPrinter, start_service: StartService,
                                         tmp_path: Path) -> None:
    prometheus = require_peer("/usr/bin/prometheus", "prometheus")
    port, http_port, prom_port = free_port(), free_port(), free_port()
    job = "printer_supervisor"
    # JSON is YAML: Prometheus reads it as its configuration file.
    config = tmp_path / "prometheus.yml"
    config.write_text(json.dumps({
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s",
                   "evaluation_interval": "1s"},
        "scrape_configs": [{"job_name": job,
                            "static_configs": [{"targets": [f"127.0.0.1:{http_port}"]}]}],
    }, indent=2))
    service = start_service([static(printer, port)], http_listen=f"127.0.0.1:{http_port}")
    service.log.wait_for("http_listener_started")
    service.log.wait_for("listener_started")
    assert service.status()["daemon"]["http"] == f"127.0.0.1:{http_port}"  # the target
    api, log = f"http://127.0.0.1:{prom_port}", tmp_path / "prometheus.log"
    # Nothing else it needs: the console templates and libraries it is not given are absent
    # (/etc/prometheus/consoles), and it starts without them.
    with running([prometheus, f"--config.file={config}",
                  f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                  f"--web.listen-address=127.0.0.1:{prom_port}"], log,
                 cwd=tmp_path) as proc:
        finished_job(printer, port)
        wait_until(lambda: answers(f"{api}/-/ready", proc, log), TOOL_WAIT_S,
                   "Prometheus to be ready")

        def targets() -> list[tuple[str, str, str]]:
            found = json.loads(get(f"{api}/api/v1/targets"))["data"]["activeTargets"]
            return [(t["health"], t["lastError"], t["scrapeUrl"]) for t in found]

        def scraped(promql: str) -> bool:
            alive(proc, log)
            return value(api, promql) == "1"

        for promql in (f'up{{job="{job}"}}', FINISHED, READY,
                       f'{PREFIX}job_duration_seconds_count{{printer="lp"}}',
                       f'{PREFIX}build_info{{job="{job}"}}'):
            try:
                wait_until(partial(scraped, promql), TOOL_WAIT_S,
                           f"Prometheus to show {promql} = 1")
            except pytest.fail.Exception as failed:  # a failed scrape says why in its target
                pytest.fail(f"{failed}; its targets: {targets()}")
        assert value(api, READY.replace("ready", "serving")) == "0"
        # Every sample the listener exposes is a series in Prometheus: none was dropped.
        exposed = samples(get(f"http://127.0.0.1:{http_port}/metrics"))
        assert value(api, f'count({{__name__=~"{PREFIX}.+",job="{job}"}})') == str(len(exposed))
        assert targets() == [("up", "", f"http://127.0.0.1:{http_port}/metrics")]
        alive(proc, log)


# -- 3. node_exporter ----------------------------------------------------------------------------
def only_the_textfile_is_read(directory: Path) -> list[str]:
    """What is in `directory`; the only file the collector reads (*.prom) must be ours. A
    temporary file may be there for the instant of a write: it must not end in .prom."""
    names = sorted(p.name for p in directory.iterdir())
    assert [n for n in names if n.endswith(".prom")] in ([], [TEXTFILE]), names
    return names


def test_node_exporter_exposes_the_textfile_until_the_service_stops(
        printer: VirtualPrinter, start_service: StartService, tmp_path: Path) -> None:
    exporter = require_peer("/usr/bin/prometheus-node-exporter", "prometheus-node-exporter")
    directory = tmp_path / "textfile"
    directory.mkdir()
    port, exporter_port = free_port(), free_port()
    url, log = f"http://127.0.0.1:{exporter_port}/metrics", tmp_path / "node_exporter.log"
    with running([exporter, "--collector.disable-defaults", "--collector.textfile",
                  f"--collector.textfile.directory={directory}",
                  f"--web.listen-address=127.0.0.1:{exporter_port}"], log) as proc:
        wait_until(lambda: answers(url, proc, log), TOOL_WAIT_S, "node_exporter to answer")
        service = start_service([static(printer, port)], metrics_file=str(directory / TEXTFILE))
        service.log.wait_for("listener_started")
        finished_job(printer, port)

        def exposed() -> dict[str, str]:
            alive(proc, log)
            only_the_textfile_is_read(directory)
            shown = samples(get(url))
            # 1 when it cannot read or parse a *.prom (its log says why).
            assert shown["node_textfile_scrape_error"] == "0", log.read_text()[-4000:]
            return shown

        shown = wait_until(lambda: (s := exposed()).get(FINISHED) == "1" and s, TOOL_WAIT_S,
                           "node_exporter to show the finished job")
        assert shown[READY] == "1"
        assert f'node_textfile_mtime_seconds{{file="{directory / TEXTFILE}"}}' in shown
        assert f'{PREFIX}job_duration_seconds_bucket{{printer="lp",le="+Inf"}}' in shown
        # Written atomically: once a write is done, nothing but the file is left.
        wait_until(lambda: only_the_textfile_is_read(directory) == [TEXTFILE],
                   what=f"only {TEXTFILE} in {directory}")

        service.stop()
        assert only_the_textfile_is_read(directory) == []
        shown = exposed()
        assert [key for key in shown if key.startswith(PREFIX)] == []
        assert not [key for key in shown if key.startswith("node_textfile_mtime_seconds")]
        alive(proc, log)


# -- 4. headless Chromium ------------------------------------------------------------------------
BROWSER_FLAGS = (
    "--headless", "--no-sandbox",  # root has no user namespace sandbox here
    "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-breakpad", "--mute-audio",
    # Nothing resolves but 127.0.0.1: nothing leaves this machine whatever a page asks for, and
    # a request for anything else is still started (and so in the net log) before it fails.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
)
#: Elements that fetch something, or run something, or embed another document.
FETCHING_TAGS = frozenset({"script", "link", "img", "iframe", "frame", "object", "embed",
                           "video", "audio", "source", "track", "picture", "base", "svg"})
URL_ATTRIBUTES = frozenset({"src", "srcset", "href", "action", "formaction", "poster", "data",
                            "background", "ping", "manifest", "xlink:href"})


@dataclass
class Visit:
    """What the browser made of a page: its DOM and every URL its network stack requested."""

    url: str
    dom: str
    requested: list[str]
    tags: list[str] = field(default_factory=list)
    attributes: list[tuple[str, str, str]] = field(default_factory=list)  # tag, name, value
    styles: list[str] = field(default_factory=list)  # <style> contents and style= values


class _Dom(HTMLParser):
    def __init__(self, visit: Visit) -> None:
        super().__init__(convert_charrefs=True)
        self.visit = visit
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.visit.tags.append(tag)
        self._in_style = tag == "style"
        for name, text in attrs:
            self.visit.attributes.append((tag, name, text or ""))
            if name == "style":
                self.visit.styles.append(text or "")

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.visit.styles.append(data)


def net_log_urls(path: Path) -> list[str]:
    """Every URL in the net log's events: requests (`url`), and what streams, connections and
    host resolutions were made for (`destination`, `group_id`, `host` with a scheme)."""
    text = path.read_text(encoding="utf-8")
    try:
        document = json.loads(text)
    except json.JSONDecodeError:  # a browser that did not finish it leaves `]}` off
        document = json.loads(text.rstrip().rstrip(",") + "]}")
    urls = []
    for event in document["events"]:
        for key, param in (event.get("params") or {}).items():
            if not isinstance(param, str):
                continue
            if key == "url" or (key in ("destination", "group_id", "host") and "://" in param):
                urls.append(param)
    return urls


def visit(browser: str, url: str, scratch: Path) -> Visit:
    """Load `url` in the headless browser (a profile and a net log of its own in `scratch`)."""
    scratch.mkdir()
    net_log = scratch / "netlog.json"
    argv = [browser, *BROWSER_FLAGS, f"--user-data-dir={scratch / 'profile'}",
            f"--log-net-log={net_log}", "--dump-dom", url]
    env = {**os.environ, "HOME": str(scratch), "XDG_CONFIG_HOME": str(scratch / "config"),
           "XDG_CACHE_HOME": str(scratch / "cache")}
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True, env=env)
    try:
        out, err = proc.communicate(timeout=60)
    finally:
        end_group(proc)  # its zygote, GPU and renderer processes with it
    assert proc.returncode == 0, err.decode(errors="replace")[-4000:]
    assert net_log.exists(), err.decode(errors="replace")[-4000:]
    seen = Visit(url, out.decode(), net_log_urls(net_log))
    parser = _Dom(seen)
    parser.feed(seen.dom)
    parser.close()
    return seen


def problems(seen: Visit) -> list[str]:
    """Why the page is not self-contained: what it would fetch, and what the browser did fetch,
    from anywhere but its own origin. Any URL on its origin is allowed (a favicon there would
    be; the headless shell was not seen to ask for one)."""
    origin = urllib.parse.urlsplit(seen.url)

    def elsewhere(reference: str) -> bool:
        target = urllib.parse.urlsplit(urllib.parse.urljoin(seen.url, reference.strip()))
        return (target.scheme, target.netloc) != (origin.scheme, origin.netloc)

    found = [f"<{tag}>" for tag in seen.tags if tag in FETCHING_TAGS]
    for tag, name, text in seen.attributes:
        if name in URL_ATTRIBUTES and elsewhere(text):
            found.append(f"<{tag} {name}={text!r}>")
        if name.startswith("on"):
            found.append(f"<{tag} {name}=...> (a script)")
        if tag == "meta" and name == "content" and re.search(r"url\s*=", text, re.I):
            found.append(f"<meta content={text!r}> (a redirect)")
    found += [f"style {text.strip()[:80]!r}" for text in seen.styles
              if re.search(r"url\s*\(|@import", text, re.I)]
    if seen.url not in seen.requested:
        found.append(f"the net log does not show the page itself: {seen.requested}")
    found += [f"requested {url}" for url in seen.requested if elsewhere(url)]
    return found


class _Static(BaseHTTPRequestHandler):
    page = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(self.page)))
        self.end_headers()
        self.wfile.write(self.page)

    def log_message(self, fmt: str, *args: Any) -> None:
        pass  # not on the test's output


@contextmanager
def static_page(page: bytes) -> Iterator[str]:
    """`page` served at the URL given, on 127.0.0.1, by a throwaway server."""
    handler = type("Handler", (_Static,), {"page": page})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="static-page", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def test_the_checker_flags_a_page_that_fetches_from_elsewhere(tmp_path: Path) -> None:
    """The negative control: without it a checker that sees nothing would pass any page."""
    browser = require_peer("/usr/bin/chromium-headless-shell", "chromium-headless-shell")
    page = (b'<!DOCTYPE html><html><head><style>body{background:url("http://example.invalid/'
            b'bg.png")}</style></head><body><p>lp ready</p>'
            b'<img src="http://example.invalid/x.png" alt=""></body></html>')
    with static_page(page) as url:
        seen = visit(browser, url, tmp_path / "browser")
    found = problems(seen)
    assert "<img>" in found, found
    assert "<img src='http://example.invalid/x.png'>" in found, found
    assert any(p.startswith("style ") for p in found), found
    # The browser asked for it, in vain (nothing resolves but 127.0.0.1): the net log says so.
    assert "requested http://example.invalid/x.png" in found, found
    assert f"the net log does not show the page itself: {seen.requested}" not in found


def test_the_status_page_in_a_browser_is_self_contained(
        printer: VirtualPrinter, start_service: StartService, tmp_path: Path) -> None:
    browser = require_peer("/usr/bin/chromium-headless-shell", "chromium-headless-shell")
    port, http_port = free_port(), free_port()
    service = start_service([static(printer, port)], http_listen=f"127.0.0.1:{http_port}")
    service.log.wait_for("http_listener_started")
    service.log.wait_for("listener_started")
    service.wait_state("lp", "ready")
    seen = visit(browser, f"http://127.0.0.1:{http_port}/", tmp_path / "browser")
    row = re.search(r'<tr id="printer-lp">.*?</tr>', seen.dom, re.S)
    assert row is not None, seen.dom
    assert "<strong>lp</strong>" in row.group()
    assert '<span class="state ready">ready</span>' in row.group()
    assert f"<code>socket://127.0.0.1:{port}</code>" in row.group()
    assert "<title>Printers on 127.0.0.1</title>" in seen.dom
    # The DOM is what guards the page: its Content-Security-Policy would stop the browser
    # before it asked for anything else, and so keep such a request out of the net log.
    assert problems(seen) == [], seen.requested
