"""What every responder adapter shares: how it reports back, and how it fails."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from supervisor.core.announce import Announcement


class Unavailable(Exception):
    """This responder cannot be reached now; the message says what was tried."""


class Watching(Unavailable):
    """Not there now, but the responder will say when it comes: its connection stays open
    (avahi's NameOwnerChanged on a system bus it is not on)."""


class ResponderLost(Exception):
    """A responder that was reachable is no longer (its daemon or bus went away)."""


class Report(Protocol):
    """What a responder tells the announcer (which logs it and keeps `status` true)."""

    def announced(self, printer: str, name: str, announcement: Announcement) -> None: ...
    def withdrawn(self, printer: str, name: str | None, reason: str) -> None: ...
    def collision(self, printer: str, name: str, alternative: str) -> None: ...
    def failed(self, printer: str, error: str) -> None: ...
    def unavailable(self, tried: list[str]) -> None: ...
    def available(self, kind: str, host: str) -> None: ...


class Responder(Protocol):
    """avahi or umdns, as the announcer drives them."""

    @property
    def kind(self) -> str: ...
    host: str

    async def connect(self) -> None: ...
    async def apply(self, wanted: Mapping[str, Announcement]) -> None: ...
    async def handle(self, event: object) -> bool: ...
    async def close(self, reason: str) -> None: ...
