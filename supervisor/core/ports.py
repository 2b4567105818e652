"""Which TCP port each printer listens on: configured ports first, the rest from base_port up."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from supervisor.config.settings import PrinterSettings

MAX_PORT: Final = 65535


class PortsExhausted(Exception):
    """No free port is left between base_port and 65535."""


class PortBook:
    """Hands out ports, never one port to two printers.

    A printer gets the port it asks for unless another printer holds it, else the lowest port
    from base_port that nobody holds and nobody is promised (`reserved`: the remembered ports
    of printers not here now, and configured ports not handed out yet).
    """

    def __init__(self, base_port: int, reserved: Iterable[int] = ()) -> None:
        self._base = base_port
        self._reserved: set[int] = set(reserved)
        self.assigned: dict[str, int] = {}

    def assign(self, name: str, wanted: int | None = None) -> int:
        """The port for `name`: `wanted` when no other printer holds it, else the next free."""
        if name in self.assigned:
            return self.assigned[name]
        held = set(self.assigned.values())
        port = wanted if wanted is not None and wanted not in held else self._next_free(held)
        self.assigned[name] = port
        return port

    def release(self, name: str, *, keep: bool = False) -> None:
        """`name` no longer holds its port; `keep` promises it to that printer's comeback."""
        port = self.assigned.pop(name, None)
        if port is not None and keep:
            self._reserved.add(port)

    def _next_free(self, held: set[int]) -> int:
        for port in range(self._base, MAX_PORT + 1):
            if port not in held and port not in self._reserved:
                return port
        raise PortsExhausted(f"no free port left from {self._base} to {MAX_PORT}")


def assign_ports(printers: Iterable[PrinterSettings], base_port: int,
                 reserved: Iterable[int] = ()) -> dict[str, int]:
    """Ports for the configured printers, in configuration order (`reserved`: nobody's)."""
    printers = list(printers)
    book = PortBook(base_port, reserved=[*(p.port for p in printers if p.port is not None),
                                         *reserved])
    return {p.name: book.assign(p.name, p.port) for p in printers}
