"""The benchmark's child processes: starting and stopping them, waits, /proc readers, ports."""

from __future__ import annotations

import ctypes
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any, Final

ROOT: Final = Path(__file__).resolve().parent.parent
SERVICE_PYTHON: Final = ROOT / ".venv" / "bin" / "python"
SUPERVISORCTL: Final = ROOT / ".venv" / "bin" / "supervisorctl"
RUN_PY: Final = Path(__file__).with_name("run.py")  # the entry point, which runs the child roles
HOST: Final = "127.0.0.1"
TICK_S: Final = 1.0 / os.sysconf("SC_CLK_TCK")

START_TIMEOUT_S: Final = 30.0
STOP_TIMEOUT_S: Final = 15.0
READY_TIMEOUT_S: Final = 10.0
POLL_S: Final = 0.01
PR_SET_PDEATHSIG: Final = 1


class BenchError(Exception):
    """The benchmark could not measure what it set out to; the message says what went wrong."""


# -- processes -------------------------------------------------------------------------------
_LIBC: Final = ctypes.CDLL(None, use_errno=True)  # loaded before any fork


def _die_with_parent() -> None:
    """In a child before exec: be sent SIGTERM if the benchmark dies without cleaning up."""
    _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class Processes:
    """Every child the benchmark starts; `stop_all` ends those still running (TERM, then KILL)."""

    def __init__(self) -> None:
        self._procs: list[subprocess.Popen[bytes]] = []

    def spawn(self, argv: Sequence[str], *, stdout: int | IO[bytes] | None = subprocess.DEVNULL,
              stderr: int | IO[bytes] | None = subprocess.DEVNULL,
              env: dict[str, str] | None = None, cwd: Path | None = None,
              ) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            list(argv), stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr, bufsize=0,
            env=env, cwd=cwd,
            start_new_session=True, preexec_fn=_die_with_parent)  # noqa: PLW1509 -- no threads
        self._procs.append(proc)
        return proc

    def child(self, role: str, *args: object) -> subprocess.Popen[bytes]:
        """run.py in a child role, with its stdout piped back to us."""
        return self.spawn([sys.executable, str(RUN_PY), role, *map(str, args)],
                          stdout=subprocess.PIPE, stderr=None)

    @staticmethod
    def stop(proc: subprocess.Popen[bytes]) -> int:
        """SIGTERM, wait, SIGKILL if needed; the exit status."""
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(STOP_TIMEOUT_S)
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
        return proc.returncode

    def stop_all(self) -> None:
        for proc in reversed(self._procs):
            self.stop(proc)
        self._procs.clear()


def wait_until(ready: Callable[[], bool], timeout_s: float, what: str, *,
               poll_s: float = POLL_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not ready():
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(poll_s)


def read_line(proc: subprocess.Popen[bytes], timeout_s: float, what: str) -> str:
    """One line from a child's unbuffered stdout, within `timeout_s`."""
    assert proc.stdout is not None
    fd, line = proc.stdout.fileno(), b""
    deadline = time.monotonic() + timeout_s
    while not line.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise BenchError(f"timed out after {timeout_s:g} s waiting for {what}")
        byte = os.read(fd, 1)
        if not byte:
            raise BenchError(f"{what}: the process ended (status {proc.wait()})")
        line += byte
    return line.decode().strip()


def child_result(proc: subprocess.Popen[bytes], timeout_s: float, what: str) -> dict[str, Any]:
    """The JSON line a child role prints when done, within `timeout_s`."""
    try:
        out, _ = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        Processes.stop(proc)
        raise BenchError(f"{what} did not finish within {timeout_s:g} s") from None
    if proc.returncode != 0:
        raise BenchError(f"{what} failed with status {proc.returncode}")
    result: dict[str, Any] = json.loads(out)
    return result


# -- /proc and ports -------------------------------------------------------------------------
def cpu_seconds(pid: int) -> float:
    """utime + stime of the whole process: live threads and those that have exited."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * TICK_S


def status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1])
    raise BenchError(f"no {key} in /proc/{pid}/status")


def thread_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def is_listening(port: int) -> bool:
    """Whether something listens on HOST:port (from /proc/net/tcp, without connecting)."""
    wanted = f"0100007F:{port:04X}"
    lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return any(f[1] == wanted and f[3] == "0A" for f in (line.split() for line in lines))


def can_bind(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port
