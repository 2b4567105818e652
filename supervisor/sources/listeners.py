"""Listening sockets, as both the printers' ports and the status page open them: every bind
address or none, "::" dual-stack (IPv4 alone on a host without IPv6), a deep backlog; and a
client's address as the logs show it."""

from __future__ import annotations

import errno
import socket
from typing import Final

BACKLOG: Final = 1024  # accepted at once anyway: this absorbs a burst between two turns


def bind_listeners(addresses: tuple[str, ...], port: int) -> list[socket.socket]:
    """Listening sockets on every address, all or none; "::" is dual-stack, and IPv4 only on a
    host without IPv6."""
    sockets: list[socket.socket] = []
    try:
        for address in addresses:
            try:
                sockets.append(_listen(address, port))
            except OSError as exc:
                if address != "::" or exc.errno not in (errno.EAFNOSUPPORT, errno.EADDRNOTAVAIL):
                    raise
                sockets.append(_listen("0.0.0.0", port))  # IPv6 is off on this host
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def _listen(address: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, address != "::")
        sock.bind((address, port))
        sock.listen(BACKLOG)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def format_address(address: tuple[str, int] | tuple[str, int, int, int]) -> str:
    """`1.2.3.4:5` or `[::1]:5`, with IPv4-mapped IPv6 shown as plain IPv4."""
    host, port = address[0], address[1]
    if host.startswith("::ffff:") and "." in host:
        host = host[7:]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
