"""sd_notify for systemd's Type=notify, wrapped: ASCII-safe, failures logged once, no-op if unset.

sdnotify itself encodes Latin-1 and silently drops what it cannot encode, swallows every error
unless `debug=True`, and knows nothing of the watchdog interval (reference/integration.md).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any

from supervisor.observe.log import get_logger

log = get_logger("supervisor.systemd")

MAX_STATUS_CHARS = 200


class Notifier:
    """What the service tells its supervisor: READY, STATUS, WATCHDOG, RELOADING, STOPPING."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        """`environ` is read for the watchdog; sdnotify itself reads os.environ's NOTIFY_SOCKET."""
        env = os.environ if environ is None else environ
        self.enabled = bool(env.get("NOTIFY_SOCKET"))
        self.watchdog_interval_s = _watchdog_interval(env) if self.enabled else None
        self._client: Any = None
        self._failed = False
        self._last_status: str | None = None
        if self.enabled:
            try:  # only under systemd: a router (procd) neither imports nor ships sdnotify
                import sdnotify  # noqa: PLC0415

                self._client = sdnotify.SystemdNotifier(debug=True)
            except Exception as exc:  # the socket is gone: run on, say so once
                self._fail(exc)

    @property
    def active(self) -> bool:
        """Whether anything listens (NOTIFY_SOCKET set): otherwise a status is not worth making."""
        return self._client is not None

    def ready(self) -> None:
        self._send("READY=1")

    def reloading(self) -> None:
        self._send(f"RELOADING=1\nMONOTONIC_USEC={time.monotonic_ns() // 1000}")

    def stopping(self) -> None:
        self._send("STOPPING=1")

    def watchdog(self) -> None:
        self._send("WATCHDOG=1")

    def status(self, text: str) -> None:
        """One line for `systemctl status`; sent only when it changed."""
        line = " ".join(text.split())[:MAX_STATUS_CHARS]
        line = line.encode("ascii", "replace").decode("ascii")
        if line != self._last_status:
            self._last_status = line
            self._send(f"STATUS={line}")

    def _send(self, message: str) -> None:
        if self._client is None:
            return
        try:
            self._client.notify(message)
        except Exception as exc:  # systemd gone or the socket unwritable: say so once
            self._fail(exc)

    def _fail(self, exc: Exception) -> None:
        if not self._failed:
            self._failed = True
            log.warning("sd_notify_failed", error=repr(exc),
                        socket=os.environ.get("NOTIFY_SOCKET"))


def _watchdog_interval(env: Mapping[str, str]) -> float | None:
    """Half of WATCHDOG_USEC, when the watchdog is meant for this process."""
    usec, pid = env.get("WATCHDOG_USEC"), env.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return max(int(usec), 1) / 2_000_000
    except ValueError:
        log.warning("watchdog_usec_invalid", value=usec)
        return None
