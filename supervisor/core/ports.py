"""Which TCP port each printer listens on: configured ports first, the rest from base_port up."""

from __future__ import annotations

from collections.abc import Iterable

from supervisor.config import PrinterSettings


class PortBook:
    """Hands out ports without collisions: explicit ones as given, others the next free."""

    def __init__(self, base_port: int, reserved: Iterable[int] = ()) -> None:
        self._next = base_port
        self._taken: set[int] = set(reserved)
        self.assigned: dict[str, int] = {}

    def assign(self, name: str, wanted: int | None = None) -> int:
        """The port for `name`: `wanted` if given, else the lowest free one from base_port."""
        if name in self.assigned:
            return self.assigned[name]
        port = wanted
        if port is None:
            while self._next in self._taken:
                self._next += 1
            port = self._next
        self._taken.add(port)
        self.assigned[name] = port
        return port

    def release(self, name: str) -> None:
        """`name` no longer holds its port (removed or reconfigured)."""
        port = self.assigned.pop(name, None)
        if port is not None:
            self._taken.discard(port)
            self._next = min(self._next, port)

def assign_ports(printers: Iterable[PrinterSettings], base_port: int) -> dict[str, int]:
    """Ports for the configured printers, in configuration order."""
    printers = list(printers)
    book = PortBook(base_port, reserved=(p.port for p in printers if p.port is not None))
    return {p.name: book.assign(p.name, p.port) for p in printers}
