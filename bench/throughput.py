"""Throughput against p910nd: the servers, jobs and sinks, and the child roles _client, _reader."""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import select
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from procs import (
    HOST,
    READY_TIMEOUT_S,
    SERVICE_PYTHON,
    START_TIMEOUT_S,
    BenchError,
    Processes,
    can_bind,
    child_result,
    cpu_seconds,
    free_port,
    is_listening,
    read_line,
    status_kb,
    thread_count,
    wait_until,
)

P910ND: Final = Path("/usr/sbin/p910nd")
P910ND_LOCK_DIR: Final = Path("/var/lock/p910nd")  # Debian's p910nd exits if it is missing

MIB: Final = 1 << 20
GIB: Final = 1 << 30
MB: Final = 1_000_000  # MB/s and RSS figures are in 10^6 bytes
CHUNK: Final = MIB  # what the client sends per sendall and the FIFO reader asks per read

SETTLE_TIMEOUT_S: Final = 10.0
SETTLE_S: Final = 0.05  # after a job's end is seen, before the server's CPU is read again
WARMUP_MIB: Final = 16  # one uncounted job per server and sink before the measured runs

SERVERS: Final = ("p910nd", "ours")
SINKS: Final = ("/dev/null", "fifo")


# -- child roles: the client and the FIFO reader, run as `run.py _client|_reader ARGS` --------
def client_role(args: Sequence[str]) -> int:
    """Send MIB MiB to HOST:PORT, half-close, wait for the server's close; print times as JSON."""
    port, mib = int(args[0]), int(args[1])
    chunk = bytes(CHUNK)
    cpu_before = time.process_time()
    start = time.monotonic()
    with socket.create_connection((HOST, port), timeout=READY_TIMEOUT_S) as sock:
        sock.settimeout(None)  # blocking sends: the parent kills us if the server stalls
        for _ in range(mib):
            sock.sendall(chunk)
        sock.shutdown(socket.SHUT_WR)
        while sock.recv(65536):
            pass
    end = time.monotonic()
    print(json.dumps({"start": start, "end": end, "cpu_s": time.process_time() - cpu_before}))
    return 0


def reader_role(args: Sequence[str]) -> int:
    """Drain the FIFO at PATH into /dev/null in 1 MiB reads; print count and end time as JSON."""
    fd = os.open(args[0], os.O_RDONLY | os.O_NONBLOCK)  # a reader now: writers may open
    print("ready", flush=True)
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    poller.poll()  # until a writer has written or hung up; the parent kills us if none comes
    os.set_blocking(fd, True)
    cpu_before = time.process_time()
    buf = memoryview(bytearray(CHUNK))
    total = 0
    with open(os.devnull, "wb", buffering=0) as devnull:
        while n := os.readv(fd, [buf]):
            devnull.write(buf[:n])
            total += n
    end = time.monotonic()
    os.close(fd)
    print(json.dumps({"bytes": total, "end": end, "cpu_s": time.process_time() - cpu_before}))
    return 0


CHILD_ROLES: Final[dict[str, Callable[[Sequence[str]], int]]] = {
    "_client": client_role,
    "_reader": reader_role,
}


# -- p910nd's port ---------------------------------------------------------------------------
def p910nd_lock_free(n: int) -> bool:
    """Whether no other p910nd holds the lock for 9100+n (it would block ours at start)."""
    path = P910ND_LOCK_DIR / f"p910{n}d"
    if not path.exists():
        return True
    with open(path, "rb+") as lock:
        try:
            fcntl.lockf(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
        fcntl.lockf(lock, fcntl.LOCK_UN)
    return True


def free_p910nd_number() -> int:
    for n in range(10):
        if can_bind(9100 + n) and p910nd_lock_free(n):
            return n
    raise BenchError("ports 9100-9109 are all taken: p910nd has nowhere to listen")


def preflight() -> tuple[int, int]:
    """Check the tools exist; pick p910nd's port (9100+N) and ours."""
    if not P910ND.exists():
        raise BenchError(f"{P910ND} not found: apt-get install p910nd")
    p910nd_port = 9100 + free_p910nd_number()
    return p910nd_port, free_port()


# -- the servers under test ------------------------------------------------------------------
@dataclass(frozen=True)
class Memory:
    """VmRSS and VmHWM of a server, in kB as /proc reports them."""

    rss_kb: int
    hwm_kb: int


class Server:
    """A server under test: its process, its port, and how to tell that a job has ended."""

    name = "server"

    def __init__(self, proc: subprocess.Popen[bytes], port: int, device: Path,
                 stderr_path: Path) -> None:
        self.proc = proc
        self.port = port
        self.device = device
        self.stderr_path = stderr_path

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.proc.pid)

    def memory(self) -> Memory:
        pid = self.proc.pid
        return Memory(status_kb(pid, "VmRSS"), status_kb(pid, "VmHWM"))

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            tail = self.stderr_path.read_text(errors="replace")[-2000:]
            raise BenchError(f"{self.name} exited with status {self.proc.returncode}:\n{tail}")

    def wait_ready(self) -> None:
        def ready() -> bool:
            self.check_alive()
            return is_listening(self.port)

        wait_until(ready, START_TIMEOUT_S, f"{self.name} to listen on port {self.port}")

    def settle(self, job_bytes: int) -> None:
        """After the client saw the close: wait until the job's CPU time is all accounted."""
        time.sleep(SETTLE_S)


class P910nd(Server):
    name = "p910nd"


class Ours(Server):
    name = "ours"

    def __init__(self, proc: subprocess.Popen[bytes], port: int, device: Path,
                 stderr_path: Path, log_path: Path) -> None:
        super().__init__(proc, port, device, stderr_path)
        self.log_path = log_path
        self._jobs_seen = 0
        self._idle_threads = 0

    def events(self, name: str) -> list[dict[str, Any]]:
        if not self.log_path.exists():
            return []
        lines = self.log_path.read_text().splitlines()
        records = (json.loads(line) for line in lines if line.startswith("{"))
        return [r for r in records if r.get("event") == name]

    def wait_ready(self) -> None:
        def ready() -> bool:
            self.check_alive()
            return bool(self.events("listener_started"))

        wait_until(ready, START_TIMEOUT_S, f"{self.name} to log listener_started")
        super().wait_ready()
        self._idle_threads = thread_count(self.proc.pid)

    def settle(self, job_bytes: int) -> None:
        """Wait for job_finished (checking bytes_in) and for the job's thread to have exited."""
        wanted = self._jobs_seen + 1
        wait_until(lambda: len(self.events("job_finished")) >= wanted, SETTLE_TIMEOUT_S,
                   f"{self.name} to log job_finished #{wanted}")
        finished = self.events("job_finished")[wanted - 1]
        self._jobs_seen = wanted
        if finished.get("bytes_in") != job_bytes:
            raise BenchError(f"{self.name} logged bytes_in={finished.get('bytes_in')}, "
                             f"the client sent {job_bytes}")
        wait_until(lambda: thread_count(self.proc.pid) <= self._idle_threads, SETTLE_TIMEOUT_S,
                   f"{self.name}'s job thread to exit")
        super().settle(job_bytes)


def start_p910nd(procs: Processes, n: int, device: Path, tmp: Path) -> P910nd:
    P910ND_LOCK_DIR.mkdir(parents=True, exist_ok=True)
    stderr_path = tmp / "p910nd.stderr"
    with open(stderr_path, "wb") as stderr:
        # -d: foreground, log to stdout (two lines per 8 KiB chunk): sent to /dev/null as procd does
        proc = procs.spawn([str(P910ND), "-d", "-f", str(device), "-i", HOST, str(n)],
                           stderr=stderr)
    server = P910nd(proc, 9100 + n, device, stderr_path)
    server.wait_ready()
    return server


def ours_config(tmp: Path, device: Path, port: int, daemon_extra: Sequence[str] = ()) -> str:
    """One static printer on `device`; `daemon_extra`: more `[daemon]` lines (TOML)."""
    def q(path: Path) -> str:
        return json.dumps(str(path))  # a JSON string is a valid TOML basic string here

    return "\n".join([
        "[daemon]",
        f"control_socket = {q(tmp / 'control.sock')}",
        f"log_file = {q(tmp / 'events.jsonl')}",
        f"state_dir = {q(tmp / 'state')}",
        'event_source = "none"',
        f"bind = [{json.dumps(HOST)}]",
        *daemon_extra,
        "[[printer]]",
        'name = "bench"',
        f"device = {q(device)}",
        f"port = {port}",
        "bidirectional = false",
        "",
    ])


def start_ours(procs: Processes, port: int, device: Path, tmp: Path,
               daemon_extra: Sequence[str] = ()) -> Ours:
    config = tmp / "config.toml"
    config.write_text(ours_config(tmp, device, port, daemon_extra))
    stderr_path = tmp / "ours.stderr"
    python = SERVICE_PYTHON if SERVICE_PYTHON.exists() else Path(sys.executable)
    with open(stderr_path, "wb") as stderr:
        proc = procs.spawn([str(python), "-m", "supervisor", "run", "--config", str(config)],
                           stderr=stderr)
    server = Ours(proc, port, device, stderr_path, tmp / "events.jsonl")
    server.wait_ready()
    return server


# -- one job ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Job:
    """One measured job."""

    server: str
    sink: str
    run: int
    bytes: int
    seconds: float
    server_cpu_s: float
    client_cpu_s: float
    reader_cpu_s: float | None

    @property
    def mb_per_s(self) -> float:
        return self.bytes / self.seconds / MB

    @property
    def cpu_s_per_gib(self) -> float:
        return self.server_cpu_s / (self.bytes / GIB)


def job_timeout_s(mib: int) -> float:
    return 20.0 + mib / 8  # generous: 256 MiB must move at 5+ MB/s


def run_job(procs: Processes, server: Server, sink: str, mib: int, run: int) -> Job:
    """Send one job to `server`; for the FIFO, a fresh reader drains it to /dev/null."""
    server.check_alive()
    job_bytes = mib * MIB
    reader = None
    if sink == "fifo":
        reader = procs.child("_reader", server.device)
        read_line(reader, READY_TIMEOUT_S, "the FIFO reader to open the FIFO")
    cpu_before = server.cpu_seconds()
    client = procs.child("_client", server.port, mib)
    sent = child_result(client, job_timeout_s(mib), f"client of {server.name}")
    end = sent["end"]
    reader_cpu = None
    if reader is not None:
        drained = child_result(reader, job_timeout_s(mib), f"FIFO reader of {server.name}")
        if drained["bytes"] != job_bytes:
            raise BenchError(f"{server.name}: the FIFO reader got {drained['bytes']} bytes "
                             f"of {job_bytes}")
        end, reader_cpu = max(end, drained["end"]), drained["cpu_s"]
    server.settle(job_bytes)
    return Job(server.name, sink, run, job_bytes, end - sent["start"],
               server.cpu_seconds() - cpu_before, sent["cpu_s"], reader_cpu)


# -- one sink: both servers, runs alternating ------------------------------------------------
@dataclass
class SinkResult:
    """What one sink measured: the jobs, each server's memory, and how ours exited."""

    sink: str
    jobs: list[Job]
    rss_after_start_kb: dict[str, int]
    rss_after_runs_kb: dict[str, int]
    peak_kb: dict[str, int]
    ours_exit_status: int  # on SIGTERM after the runs; 0 expected


def sink_device(sink: str, tmp: Path, server: str) -> Path:
    if sink != "fifo":
        return Path(sink)
    path = tmp / f"{server}.fifo"
    os.mkfifo(path)
    return path


def bench_sink(sink: str, args: argparse.Namespace, ports: tuple[int, int]) -> SinkResult:
    """Start both servers on `sink`, warm each up, run them alternately, stop them."""
    procs = Processes()
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp_s, contextlib.ExitStack() as stack:
        stack.callback(procs.stop_all)  # before the directory goes
        tmp = Path(tmp_s)
        (tmp / "p910nd").mkdir()
        servers: list[Server] = [
            start_p910nd(procs, ports[0] - 9100, sink_device(sink, tmp, "p910nd"), tmp / "p910nd"),
            start_ours(procs, ports[1], sink_device(sink, tmp, "ours"), tmp),
        ]
        time.sleep(0.5)  # let start-up finish before the idle sample
        after_start = {s.name: s.memory().rss_kb for s in servers}
        for server in servers:
            run_job(procs, server, sink, min(WARMUP_MIB, args.mib), 0)
        jobs = [_measured(procs, server, sink, mib=args.mib, run=run, runs=args.runs)
                for run in range(1, args.runs + 1) for server in servers]
        memory = {s.name: s.memory() for s in servers}
        ours_status = procs.stop(servers[1].proc)
    return SinkResult(sink, jobs, after_start, {k: m.rss_kb for k, m in memory.items()},
                      {k: m.hwm_kb for k, m in memory.items()}, ours_status)


def _measured(procs: Processes, server: Server, sink: str, *, mib: int, run: int,
              runs: int) -> Job:
    job = run_job(procs, server, sink, mib, run)
    print(f"  {sink:9} run {run}/{runs} {server.name:6} {job.mb_per_s:8.1f} MB/s  "
          f"server CPU {job.server_cpu_s:.2f} s ({job.cpu_s_per_gib:.3f} s/GiB)",
          file=sys.stderr, flush=True)
    return job
