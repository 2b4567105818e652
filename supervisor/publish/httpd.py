"""The HTTP listener (`http_listen`): /metrics, /status.json and the status page, read-only.

A deliberately small HTTP/1.1 server on asyncio streams (http.server costs ~3.4 MB of RSS and
a thread per client): GET and HEAD only, one request per connection, a request head of at most
16 KiB read within REQUEST_TIMEOUT_S, and a bounded number of connections. Clients outside
`http_allow` are closed unanswered; anything malformed gets a 4xx and the connection closes.
It runs on the service's event loop: serving a page is a few dictionary walks, never I/O on
a printer, so a flood of idle connections costs memory (bounded) and no printer time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Protocol

from supervisor.config.settings import IPNetwork, allowed
from supervisor.core.exposition import CONTENT_TYPE as METRICS_CONTENT_TYPE
from supervisor.observe.fold import FoldedLog
from supervisor.observe.log import get_logger
from supervisor.sources.listeners import BACKLOG, bind_listeners, format_address

MAX_CONNECTIONS: Final = 128  # open at once; a new one closes the oldest still silent one
MAX_CONNECTIONS_PER_ADDRESS: Final = 16  # more from one address are closed at once
REQUEST_TIMEOUT_S: Final = 10.0  # the whole request head must arrive within this
MAX_LINE_BYTES: Final = 8192  # the request line, and each header line
MAX_HEAD_BYTES: Final = 16384
MAX_HEADERS: Final = 100
LINGER_S: Final = 1.0  # after an error reply, unread input is drained this long before close
LINGER_BYTES: Final = 1 << 20
BIND_FIRST_DELAY_S: Final = 1.0
BIND_MAX_DELAY_S: Final = 30.0

SECURITY_HEADERS: Final = (
    ("Cache-Control", "no-store"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    # Nothing but the page itself and its inline style: no scripts, no images, no requests.
    ("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; "
                                "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"),
)
_REASONS: Final = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
                   408: "Request Timeout", 414: "URI Too Long",
                   431: "Request Header Fields Too Large", 505: "HTTP Version Not Supported"}
_TOKEN_RE: Final = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_HOST_RE: Final = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]{1,253})(?::\d{1,5})?")
_DAYS: Final = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS: Final = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
                  "Dec")

log = get_logger("supervisor.http")


class Pages(Protocol):
    """What the listener serves, rendered by the service when asked."""

    def metrics_text(self) -> str: ...
    def status(self) -> dict[str, Any]: ...
    def status_page(self, host: str) -> str: ...


class HttpError(Exception):
    """A request answered with `status` (4xx/5xx) and a short text."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class _Client:
    address: str
    client: str
    writer: asyncio.StreamWriter
    reading: bool = True  # its request has not arrived whole yet


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    host: str | None  # the Host header's name, without its port, if it is a sane one


class StatusServer:
    """Listens on `address` until closed; `allow` is read at each connection (a reload may
    change it)."""

    def __init__(self, address: tuple[str, int], pages: Pages, *,
                 allow: Callable[[], tuple[IPNetwork, ...]],
                 on_error: Callable[[str | None], None]) -> None:
        self.address = address
        self._pages = pages
        self._allow = allow
        self._on_error = on_error
        self._folded = FoldedLog(log)
        self._server: asyncio.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._clients: dict[asyncio.Task[Any], _Client] = {}  # open connections, oldest first
        self.listening = False

    @property
    def shown(self) -> str:
        host, port = self.address
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="http")

    async def _listen(self) -> None:
        """Bind, retrying while the port is taken (the error is in status meanwhile)."""
        delay, last_error = BIND_FIRST_DELAY_S, None
        host, port = self.address
        while True:
            try:
                sockets = bind_listeners((host,), port)
                break
            except OSError as exc:
                error = f"status page: cannot listen on {self.shown}: {exc.strerror or exc}"
                if error != last_error:
                    log.error("http_listener_failed", listen=self.shown, error=error,
                              retry_s=delay)
                    self._on_error(error)
                    last_error = error
                await asyncio.sleep(delay)
                delay = min(delay * 2, BIND_MAX_DELAY_S)
        # asyncio listens again with its own backlog (100 by default): a burst would overflow it.
        self._server = await asyncio.start_server(self._connection, sock=sockets[0],
                                                  limit=MAX_LINE_BYTES, backlog=BACKLOG)
        self.listening = True
        self._on_error(None)
        log.info("http_listener_started", listen=self.shown)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._server is not None:
            self._server.close()
            for other in self._clients.values():
                other.writer.transport.abort()
            if self._clients:
                await asyncio.wait(list(self._clients), timeout=REQUEST_TIMEOUT_S)
            await self._server.wait_closed()
            self._server = None
            log.info("http_listener_stopped", listen=self.shown)
        self.listening = False
        self._folded.flush()

    # -- one connection ----------------------------------------------------------------------
    async def _connection(self, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        client = format_address(peer) if peer else "?"
        address = client.rpartition(":")[0].strip("[]")
        refused = self._refusal(peer[0] if peer else "", address)
        if refused is not None:
            event, level, reason = refused
            self._folded.log(level, event, address, client=client, reason=reason)
            writer.close()
            return
        task = asyncio.current_task()
        assert task is not None
        if len(self._clients) >= MAX_CONNECTIONS:
            self._make_room()
        state = self._clients[task] = _Client(address, client, writer)
        try:
            await self._answer(reader, writer, state)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client went away: nothing to answer
        finally:
            self._clients.pop(task, None)
            writer.close()

    def _refusal(self, ip: str, address: str) -> tuple[str, str, str] | None:
        """Why a new connection is closed at once (event, level, reason), or None."""
        try:
            permitted = allowed(self._allow(), ip)
        except ValueError:
            permitted = False
        if not permitted:
            return "http_rejected", "warning", "not in http_allow"
        if sum(c.address == address for c in self._clients.values()) >= (
                MAX_CONNECTIONS_PER_ADDRESS):
            return ("http_refused", "warning", f"{MAX_CONNECTIONS_PER_ADDRESS} connections "
                    "from this address are open already")
        if len(self._clients) >= MAX_CONNECTIONS and not any(
                c.reading for c in self._clients.values()):
            return "http_refused", "warning", f"{MAX_CONNECTIONS} requests are being answered"
        return None

    def _make_room(self) -> None:
        """At the limit, the oldest connection still sending its request is closed: a flood of
        silent connections then never keeps a scrape, which sends at once, out."""
        for task, other in self._clients.items():
            if other.reading:
                self._folded.log("warning", "http_refused", other.address, client=other.client,
                                 reason=f"{MAX_CONNECTIONS} connections are open: the oldest "
                                        "that has not sent its request is closed")
                del self._clients[task]
                # Not task.cancel(): asyncio reports a cancelled handler as an error. Its
                # read ends with the connection, and so does the handler.
                other.writer.transport.abort()
                return

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                      state: _Client) -> None:
        client, address = state.client, state.address
        head_only = False
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT_S):
                request = await read_request(reader)
            state.reading = False
            head_only = request.method == "HEAD"
            status, content_type, body = self._route(request, writer)
        except TimeoutError:
            self._folded.log("info", "http_bad_request", address, client=client, status=408,
                             error=f"no complete request within {REQUEST_TIMEOUT_S:g} s")
            await self._reply_and_close(writer, reader, 408, "request timed out\n")
            return
        except HttpError as exc:
            if writer.transport.is_closing():
                return  # closed by us (a flood, a shutdown): nobody to answer
            self._folded.log("info", "http_bad_request", address, client=client,
                             status=exc.status, error=str(exc))
            extra = (("Allow", "GET, HEAD"),) if exc.status == 405 else ()
            await self._reply_and_close(writer, reader, exc.status, f"{exc}\n", extra)
            return
        log.debug("http_request", client=client, method=request.method, path=request.path,
                  status=status)
        writer.write(response(status, body, content_type, head_only=head_only))
        await writer.drain()

    def _route(self, request: Request, writer: asyncio.StreamWriter) -> tuple[int, str, bytes]:
        if request.path == "/metrics":
            return 200, METRICS_CONTENT_TYPE, self._pages.metrics_text().encode()
        if request.path == "/status.json":
            return 200, "application/json", (json.dumps(self._pages.status()) + "\n").encode()
        if request.path in ("/", "/index.html"):
            host = request.host or _local_host(writer)
            return 200, "text/html; charset=utf-8", self._pages.status_page(host).encode()
        raise HttpError(404, f"no page {request.path!r}; there are /, /metrics and /status.json")

    async def _reply_and_close(self, writer: asyncio.StreamWriter, reader: asyncio.StreamReader,
                               status: int, text: str,
                               extra: tuple[tuple[str, str], ...] = ()) -> None:
        """An error reply, then the rest of the request read and dropped for a moment, so that
        closing with unread input does not reset the connection before the reply is read."""
        writer.write(response(status, text.encode(), "text/plain; charset=utf-8", extra=extra))
        await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
        with contextlib.suppress(TimeoutError, ConnectionError):
            async with asyncio.timeout(LINGER_S):
                drained = 0
                while drained < LINGER_BYTES and (chunk := await reader.read(65536)):
                    drained += len(chunk)


async def read_request(reader: asyncio.StreamReader) -> Request:
    """The request line and headers; HttpError for anything that is not a sane GET or HEAD."""
    line = await _line(reader, 414, "request line")
    try:
        text = line.decode("ascii").rstrip("\r\n")
    except UnicodeDecodeError:
        raise HttpError(400, "the request line is not ASCII") from None
    parts = text.split(" ")
    if len(parts) != 3 or not _TOKEN_RE.fullmatch(parts[0]) or not parts[1]:
        raise HttpError(400, "not an HTTP request line (METHOD TARGET HTTP/1.1)")
    method, target, version = parts
    if not re.fullmatch(r"HTTP/\d\.\d", version):
        raise HttpError(400, f"not an HTTP version: {version[:20]!r}")
    if version not in ("HTTP/1.0", "HTTP/1.1"):
        raise HttpError(505, f"{version} is not supported; use HTTP/1.1")
    host = None
    size, count = len(line), 0
    while True:
        try:
            header = await _line(reader, 431, "header line")
        except asyncio.IncompleteReadError:
            raise HttpError(400, "the request ended before its head did") from None
        size += len(header)
        if header in (b"\r\n", b"\n"):
            break
        count += 1
        if size > MAX_HEAD_BYTES or count > MAX_HEADERS:
            raise HttpError(431, f"the request head is over {MAX_HEAD_BYTES} bytes or "
                            f"{MAX_HEADERS} headers")
        name, colon, value = header.partition(b":")
        if not colon or not _TOKEN_RE.fullmatch(name.decode("latin-1")):
            raise HttpError(400, "a header line without a name and a colon")
        if name.lower() == b"host":
            found = _HOST_RE.fullmatch(value.decode("latin-1").strip())
            host = found.group(1).strip("[]") if found else None
    if method not in ("GET", "HEAD"):
        raise HttpError(405, f"{method} is not allowed here; this listener is read-only")
    return Request(method, _path(target), host)


async def _line(reader: asyncio.StreamReader, status: int, what: str) -> bytes:
    try:
        return await reader.readuntil(b"\n")
    except asyncio.LimitOverrunError:
        raise HttpError(status, f"the {what} is over {MAX_LINE_BYTES} bytes") from None
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise HttpError(400, "the request ended before its head did") from None
        raise


def _path(target: str) -> str:
    """The path of an origin-form (/x?y) or absolute-form (http://h/x) target."""
    if target.startswith(("http://", "https://")):
        rest = target.split("//", 1)[1]
        target = "/" + rest.split("/", 1)[1] if "/" in rest else "/"
    if not target.startswith("/"):
        raise HttpError(400, f"not a path: {target[:40]!r}")
    return target.split("?", 1)[0].split("#", 1)[0]


def response(status: int, body: bytes, content_type: str, *, head_only: bool = False,
             extra: tuple[tuple[str, str], ...] = ()) -> bytes:
    """A whole response; every one closes its connection."""
    headers = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}", f"Date: {http_date()}",
               "Server: printer-supervisor", f"Content-Type: {content_type}",
               f"Content-Length: {len(body)}", "Connection: close",
               *(f"{name}: {value}" for name, value in (*SECURITY_HEADERS, *extra))]
    head = ("\r\n".join(headers) + "\r\n\r\n").encode("latin-1")
    return head if head_only else head + body


def http_date(now: float | None = None) -> str:
    """`Sun, 29 Nov 2026 06:32:17 GMT` whatever the locale."""
    t = time.gmtime(now)
    return (f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year} "
            f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT")


def _local_host(writer: asyncio.StreamWriter) -> str:
    """The address the client reached us on, when it sent no usable Host."""
    sockname = writer.get_extra_info("sockname")
    if not sockname:
        return socket.gethostname()
    return format_address(sockname).rpartition(":")[0].strip("[]")  # IPv4-mapped as IPv4
