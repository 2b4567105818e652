"""The control socket (SPEC §7): one JSON request per connection, one JSON reply line."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import stat
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Final

from supervisor.observe.log import get_logger
from supervisor.protocol import MAX_REQUEST_BYTES, VERSION

READ_TIMEOUT_S: Final = 5.0
SOCKET_MODE: Final = 0o660
#: Connections served at once; more are closed unanswered. Each costs a few KB: this bounds
#: the memory a local flood of idle connections can take, far above what status, notify and
#: a burst of hotplug events need.
MAX_CONNECTIONS: Final = 512

Reply = dict[str, Any]
Handler = Callable[[dict[str, Any]], Awaitable[Reply]]

log = get_logger("supervisor.control")


class ControlSocketBusy(Exception):
    """Another live service answers on the socket path: we must not steal it."""


class RequestError(Exception):
    """A request that cannot be served; the message goes back to the client."""


def decode_request(line: bytes) -> dict[str, Any]:
    """Parse and check one request line, or raise RequestError saying what is wrong."""
    if len(line) > MAX_REQUEST_BYTES:
        raise RequestError(f"request over {MAX_REQUEST_BYTES // 1024} KiB")
    try:
        request = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RequestError(f"not a JSON request: {exc}") from None
    if not isinstance(request, dict):
        raise RequestError('a request is a JSON object like {"v": 1, "cmd": "status"}')
    if request.get("v") != VERSION:
        raise RequestError(f"unsupported protocol version {request.get('v')!r}; this is {VERSION}")
    if not isinstance(request.get("cmd"), str):
        raise RequestError('missing "cmd"')
    return request


class ControlServer:
    """Listens on a Unix socket and hands each valid request to `handler`."""

    def __init__(self, path: Path, handler: Handler,
                 on_rejected: Callable[[str], None]) -> None:
        self.path = path
        self._handler = handler
        self._on_rejected = on_rejected
        self._server: asyncio.Server | None = None
        self._connections = 0

    async def start(self) -> None:
        """Listen, replacing a stale socket file but never a live service's socket."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale(self.path)
        self._server = await asyncio.start_unix_server(
            self._serve, path=str(self.path), limit=MAX_REQUEST_BYTES + 1)
        os.chmod(self.path, SOCKET_MODE)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._connections >= MAX_CONNECTIONS:
            writer.close()
            return
        self._connections += 1
        try:
            reply = await self._answer(reader)
            if reply is not None:
                writer.write(json.dumps(reply).encode() + b"\n")
                await writer.drain()
        except (ConnectionError, TimeoutError):
            pass  # the client went away; nothing to answer
        finally:
            self._connections -= 1
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _answer(self, reader: asyncio.StreamReader) -> Reply | None:
        try:
            async with asyncio.timeout(READ_TIMEOUT_S):
                line = await _read_request(reader)
            if not line:
                return None  # connected and closed: a liveness probe, not a request
            request = decode_request(line)
            return await self._handler(request)
        except RequestError as exc:
            self._on_rejected(str(exc))
            return {"ok": False, "error": str(exc)}


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    try:
        return await reader.readuntil(b"\n")
    except asyncio.LimitOverrunError:
        raise RequestError(f"request over {MAX_REQUEST_BYTES // 1024} KiB") from None
    except asyncio.IncompleteReadError as exc:  # no newline: the whole stream is the request
        return exc.partial


def _remove_stale(path: Path) -> None:
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise ControlSocketBusy(f"{path} exists and is not a socket; remove it or set "
                                "[daemon] control_socket")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(1.0)
        probe.connect(str(path))
    except (ConnectionRefusedError, FileNotFoundError):
        path.unlink(missing_ok=True)  # left by a crashed run
        log.info("control_socket_replaced", path=str(path))
        return
    except OSError:
        return  # not ours to judge (permissions): let bind report it
    finally:
        probe.close()
    raise ControlSocketBusy(f"another printer-supervisor is already running on {path}")
