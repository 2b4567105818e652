"""Test harness: the real service in a thread or a process, its JSON log, peers, clients."""

from __future__ import annotations

import asyncio
import json
import os
import pwd
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from supervisor.app import Service
from supervisor.config.loader import load_settings
from supervisor.ctl.client import request
from supervisor.observe.logs import configure_logging, reset_logging

WAIT_S = 15.0
# CI sets CI=true; any value but "", "0" or "false" counts, so that no peer test can skip there.
ON_CI = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def require_peer(path: str, package: str) -> str:
    """The peer's path; a missing peer skips locally but fails on CI (it must be installed)."""
    found = shutil.which(path) or (path if os.access(path, os.X_OK) else None)
    if found:
        return found
    message = f"{path} is missing: apt-get install {package}"
    if ON_CI:
        pytest.fail(message + " (.ci/run installs it; on CI no peer test may skip)")
    pytest.skip(message)


def free_port(host: str = "127.0.0.1") -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def free_base_port(count: int = 8) -> int:
    """A base_port whose next `count` ports are free, below the kernel's ephemeral range
    (32768 on): the service's next ports are never a client connection's local port."""
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20000, 32000 - count)
        if all(port_is_free(base + n) for n in range(count)):
            return base
    pytest.fail("no block of free ports below 32000")


def port_is_free(port: int) -> bool:
    """Whether a listener could bind `port` on 127.0.0.1 now."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def wait_until(condition: Callable[[], Any], timeout_s: float = WAIT_S, what: str = "") -> Any:
    """Poll `condition` until it returns something truthy; fail the test on timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s} s waiting for {what or condition}")
        time.sleep(0.01)


def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(str(value))


def write_config(path: Path, daemon: Mapping[str, object],
                 printers: list[Mapping[str, object]]) -> Path:
    lines = ["[daemon]", *(f"{k} = {toml_value(v)}" for k, v in daemon.items())]
    for printer in printers:
        lines += ["", "[[printer]]", *(f"{k} = {toml_value(v)}" for k, v in printer.items())]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


class Log:
    """The service's JSON log file, read fresh on every call."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def events(self, event: str | None = None, **fields: object) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        found = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line being written
            if event is not None and record.get("event") != event:
                continue
            if all(record.get(k) == v for k, v in fields.items()):
                found.append(record)
        return found

    def wait_for(self, event: str, count: int = 1, timeout_s: float = WAIT_S,
                 **fields: object) -> dict[str, Any]:
        """The `count`-th matching record, once it is there."""
        found = wait_until(lambda: len(self.events(event, **fields)) >= count and
                           self.events(event, **fields), timeout_s,
                           f"{count} x {event} {fields or ''} in {self.path}")
        return dict(found[count - 1])


def daemon_defaults(root: Path, **overrides: object) -> dict[str, object]:
    daemon: dict[str, object] = {
        "control_socket": str(root / "control.sock"),
        "log_file": str(root / "events.jsonl"),
        "log_max_bytes": 0,
        "state_dir": str(root / "state"),
        "event_source": "none",
        "sysfs": str(root / "sys"),
        "devfs": str(root / "dev"),
        "firmware_dirs": [str(root / "firmware")],
        "bind": ["127.0.0.1"],
        # Nothing is announced over mDNS unless a test asks (and then only in a private lab).
        "mdns": "off",
        # Not 9100: the machine may run something there (node_exporter does).
        "base_port": free_base_port(),
    }
    daemon.update(overrides)
    return daemon


class ServiceThread:
    """The real Service on its own event loop in a thread, stopped like SIGTERM would."""

    def __init__(self, root: Path, printers: list[Mapping[str, object]], *,
                 grace_s: float = 5.0, open_monitor: Callable[[str], Any] | None = None,
                 umdns_dir: Path | None = None, **daemon: object) -> None:
        self.root = root
        self.config = write_config(root / "config.toml", daemon_defaults(root, **daemon),
                                   printers)
        self.log = Log(root / "events.jsonl")
        self.grace_s = grace_s
        self.open_monitor = open_monitor
        self.umdns_dir = umdns_dir
        self.service: Service | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def start(self) -> ServiceThread:
        settings = load_settings(self.config, required=True)
        configure_logging(settings.daemon.log_file, max_bytes=settings.daemon.log_max_bytes)
        extra: dict[str, Any] = {}
        if self.open_monitor is not None:
            extra["open_monitor"] = self.open_monitor
        if self.umdns_dir is not None:
            extra["umdns_dir"] = self.umdns_dir
        self.service = Service(settings, **extra)
        started = threading.Event()

        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            started.set()
            assert self.service is not None
            await self.service.run(self._stop, grace_s=self.grace_s)

        def target() -> None:
            try:
                asyncio.run(main())
            except BaseException as exc:  # surfaced by stop()
                self._error = exc

        self._thread = threading.Thread(target=target, name="service", daemon=True)
        earlier = len(self.log.events("daemon_started"))  # a restart shares the log file
        self._thread.start()
        started.wait(WAIT_S)
        self.log.wait_for("daemon_started", count=earlier + 1)
        return self

    def reload(self) -> None:
        """What SIGHUP does."""
        assert self._loop is not None and self.service is not None
        self._loop.call_soon_threadsafe(self.service.request_reload)

    def rescan(self) -> None:
        """What the periodic rescan does: look at the device tree, no event told of."""
        assert self._loop is not None and self.service is not None
        self._loop.call_soon_threadsafe(self.service._rescan_wanted.set)

    def timers(self) -> list[float]:
        """When each timer pending in the service's loop is due (loop time, which is
        time.monotonic()), read in the loop itself."""
        assert self._loop is not None
        loop = self._loop

        async def due() -> list[float]:
            return sorted(handle.when() for handle in loop._scheduled  # type: ignore[attr-defined]
                          if not handle.cancelled())

        return asyncio.run_coroutine_threadsafe(due(), loop).result(WAIT_S)

    def request_stop(self) -> None:
        """What SIGTERM does: set the service's stop event, without waiting."""
        if self._loop is not None and self._stop is not None and not self.stopped:
            self._loop.call_soon_threadsafe(self._stop.set)

    def stop(self) -> None:
        if self._thread is None:
            return
        self.request_stop()
        self._thread.join(WAIT_S + self.grace_s)
        alive = self._thread.is_alive()
        self._thread = None
        reset_logging()
        assert not alive, "the service did not stop"
        if self._error is not None:
            raise self._error
        assert self.log.events("task_did_not_stop") == [], "a background task ignored its cancel"

    def request(self, message: Mapping[str, object]) -> dict[str, Any]:
        """One control-socket request, as `supervisorctl` sends it."""
        return request(str(self.root / "control.sock"), dict(message))

    def notify(self, env: Mapping[str, str]) -> dict[str, Any]:
        return self.request({"v": 1, "cmd": "notify", "event": dict(env)})

    def status(self, name: str | None = None) -> Any:
        """The status document, or one printer's entry in it."""
        document = self.request({"v": 1, "cmd": "status"})
        if name is None:
            return document
        return next((p for p in document["printers"] if p["name"] == name), None)

    def wait_state(self, name: str, state: str, timeout_s: float = WAIT_S) -> dict[str, Any]:
        return dict(wait_until(lambda: (p := self.status(name)) and p["state"] == state and p,
                               timeout_s, f"printer {name} to be {state}"))

    @property
    def stopped(self) -> bool:
        return self._thread is None or not self._thread.is_alive()


@contextmanager
def service_process(root: Path, printers: list[Mapping[str, object]],
                    prefix: Sequence[str] = (),
                    **daemon: object) -> Iterator[subprocess.Popen[bytes]]:
    """`supervisorctl run` as a real process (`prefix`: e.g. nsenter into a lab host); killed
    if the test did not stop it."""
    config = write_config(root / "config.toml", daemon_defaults(root, **daemon), printers)
    stderr = (root / "stderr.txt").open("wb")
    proc = subprocess.Popen([*prefix, sys.executable, "-m", "supervisor", "run", "--config",
                             str(config)],
                            stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        stderr.close()


def send_job(port: int, data: bytes, *, host: str = "127.0.0.1", read_reply: bool = True,
             timeout_s: float = WAIT_S) -> bytes:
    """A client as CUPS's socket backend is one: send, half-close, read until the server closes."""
    with socket.create_connection((host, port), timeout=timeout_s) as conn:
        conn.sendall(data)
        conn.shutdown(socket.SHUT_WR)
        reply = b""
        while read_reply and (chunk := conn.recv(65536)):
            reply += chunk
        return reply


def as_nobody(work: Callable[[], str], groups: Sequence[int] = ()) -> str:
    """Run `work` in a forked child that has become the user nobody (in `groups`)."""
    nobody = pwd.getpwnam("nobody")
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: drop root, do the work, report, leave at once
        try:
            os.setgroups(list(groups))
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
            os.write(write_end, work().encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as result:
        answer = result.read().decode()
    os.waitpid(pid, 0)
    return answer


class Ubus:
    """A `ubus` on PATH that records its arguments; umdns is "running" while `up` exists."""

    def __init__(self, root: Path, umdns_dir: Path) -> None:
        self.bin = root / "bin"
        self.bin.mkdir()
        self.log, self.snapshots, self.up = root / "ubus.log", root / "umdns.snap", root / "up"
        script = self.bin / "ubus"
        script.write_text(f"""#!/bin/sh
printf '%s\\n' "$*" >> '{self.log}'
case "$*" in
  *"list umdns") [ -e '{self.up}' ] && {{ echo umdns; exit 0; }}
                 echo 'Command failed: Not found' >&2; exit 4 ;;
  *"call umdns reload") [ -e '{self.up}' ] || exit 4
                 {{ cat '{umdns_dir}/printer-supervisor.json' 2>/dev/null || echo none; echo ---
                 }} >> '{self.snapshots}'; exit 0 ;;
esac
exit 2
""", encoding="utf-8")
        script.chmod(0o755)
        self.up.touch()

    def calls(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []

    def files(self) -> list[Any]:
        """What the file held at each reload (None: no file)."""
        if not self.snapshots.exists():
            return []
        chunks = self.snapshots.read_text().split("---\n")[:-1]
        return [None if c.strip() == "none" else json.loads(c) for c in chunks]
