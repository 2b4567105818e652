"""Benchmark of printer-supervisor: against p910nd (throughput, server CPU per GiB, RSS), plug →
port accepting latency, and `supervisorctl notify` start-up time against a bare interpreter."""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import datetime
import fcntl
import json
import os
import platform
import re
import select
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any, Final

from supervisor.cli import EXIT_NOT_RUNNING, EXIT_OK, ServiceUnreachable, request
from supervisor.protocol import HOTPLUG_KEYS, VERSION
from supervisor.virtual import FakeSysfs, VirtualUsbPrinter

ROOT: Final = Path(__file__).resolve().parent.parent
SERVICE_PYTHON: Final = ROOT / ".venv" / "bin" / "python"
SUPERVISORCTL: Final = ROOT / ".venv" / "bin" / "supervisorctl"
P910ND: Final = Path("/usr/sbin/p910nd")
P910ND_LOCK_DIR: Final = Path("/var/lock/p910nd")  # Debian's p910nd exits if it is missing
HOST: Final = "127.0.0.1"

MIB: Final = 1 << 20
GIB: Final = 1 << 30
MB: Final = 1_000_000  # MB/s and RSS figures are in 10^6 bytes
CHUNK: Final = MIB  # what the client sends per sendall and the FIFO reader asks per read
TICK_S: Final = 1.0 / os.sysconf("SC_CLK_TCK")

START_TIMEOUT_S: Final = 30.0
STOP_TIMEOUT_S: Final = 15.0
READY_TIMEOUT_S: Final = 10.0
SETTLE_TIMEOUT_S: Final = 10.0
SETTLE_S: Final = 0.05  # after a job's end is seen, before the server's CPU is read again
POLL_S: Final = 0.01
WARMUP_MIB: Final = 16  # one uncounted job per server and sink before the measured runs
PR_SET_PDEATHSIG: Final = 1

SERVERS: Final = ("p910nd", "ours")
SINKS: Final = ("/dev/null", "fifo")
IDLE_RSS_LIMIT_MB: Final = 30.0
SECTIONS: Final = ("throughput", "latency", "notify")


class BenchError(Exception):
    """The benchmark could not measure what it set out to; the message says what went wrong."""


@dataclass(frozen=True)
class Target:
    """A goal for ours/p910nd on one sink and metric."""

    sink: str
    metric: str  # "mb_per_s" or "cpu_s_per_gib"
    limit: float
    at_least: bool

    def met(self, ratio: float) -> bool:
        return ratio >= self.limit if self.at_least else ratio <= self.limit

    def label(self) -> str:
        return f"{'>=' if self.at_least else '<='} {self.limit:.1f}x"


TARGETS: Final = (
    Target("/dev/null", "mb_per_s", 1.5, at_least=True),
    Target("/dev/null", "cpu_s_per_gib", 0.7, at_least=False),
    Target("fifo", "mb_per_s", 1.0, at_least=True),
    Target("fifo", "cpu_s_per_gib", 0.7, at_least=False),
)


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
              stderr: int | IO[bytes] | None = subprocess.DEVNULL) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            list(argv), stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr, bufsize=0,
            start_new_session=True, preexec_fn=_die_with_parent)  # noqa: PLW1509 -- no threads
        self._procs.append(proc)
        return proc

    def child(self, role: str, *args: object) -> subprocess.Popen[bytes]:
        """This script in a child role, with its stdout piped back to us."""
        return self.spawn([sys.executable, __file__, role, *map(str, args)],
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


# -- /proc -----------------------------------------------------------------------------------
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


def ours_config(tmp: Path, device: Path, port: int) -> str:
    def q(path: Path) -> str:
        return json.dumps(str(path))  # a JSON string is a valid TOML basic string here

    return "\n".join([
        "[daemon]",
        f"control_socket = {q(tmp / 'control.sock')}",
        f"log_file = {q(tmp / 'events.jsonl')}",
        f"state_dir = {q(tmp / 'state')}",
        'event_source = "none"',
        f"bind = [{json.dumps(HOST)}]",
        "[[printer]]",
        'name = "bench"',
        f"device = {q(device)}",
        f"port = {port}",
        "bidirectional = false",
        "",
    ])


def start_ours(procs: Processes, port: int, device: Path, tmp: Path) -> Ours:
    config = tmp / "config.toml"
    config.write_text(ours_config(tmp, device, port))
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


# -- distributions ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Spread:
    """Median, 90th percentile and range of a set of times."""

    median: float
    p90: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        p90 = (statistics.quantiles(values, n=10, method="inclusive")[-1] if len(values) > 1
               else values[0])
        return cls(statistics.median(values), p90, min(values), max(values))


# -- ours driven by hotplug events: a fake device tree, events through the control socket -------
HOTPLUG_PRINTER: Final = "bench-usb"
HOTPLUG_MATCH: Final = "3f0/4117/*"  # what VirtualUsbPrinter plugs by default (a LaserJet 1018)


class LogTail:
    """The service's JSON log, read incrementally; `records` holds every record read so far."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.records: list[dict[str, Any]] = []
        self._offset = 0
        self._partial = b""

    def read(self) -> list[dict[str, Any]]:
        try:
            with open(self.path, "rb") as log:
                log.seek(self._offset)
                data = log.read()
        except FileNotFoundError:
            return self.records
        self._offset += len(data)
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()  # a line still being written
        self.records += [json.loads(line) for line in lines if line.startswith(b"{")]
        return self.records

    def find(self, event: str, start: int = 0,
             fields: Mapping[str, object] | None = None) -> dict[str, Any] | None:
        """The first record from index `start` on with that event name and those fields."""
        wanted = fields or {}
        return next((r for r in self.records[start:] if r.get("event") == event
                     and all(r.get(k) == v for k, v in wanted.items())), None)


class HotplugService:
    """Ours with event_source "none" on a fake sysfs and devfs: it learns of a plug only from
    the events sent to its control socket, as an OpenWrt hotplug shim's `supervisorctl notify`
    sends them."""

    def __init__(self, proc: subprocess.Popen[bytes], root: Path, port: int) -> None:
        self.proc = proc
        self.root = root
        self.port = port
        self.socket = root / "control.sock"
        self.log = LogTail(root / "events.jsonl")

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            tail = (self.root / "ours.stderr").read_text(errors="replace")[-2000:]
            raise BenchError(f"ours exited with status {self.proc.returncode}:\n{tail}")

    def request(self, message: dict[str, object]) -> dict[str, object]:
        """One control-socket request through supervisor.cli.request, as supervisorctl makes it."""
        try:
            answer = request(str(self.socket), message)
        except ServiceUnreachable as exc:
            raise BenchError(f"ours: {exc}") from None
        if answer.get("ok") is not True:
            raise BenchError(f"ours rejected {message}: {answer.get('error')}")
        return answer

    def notify(self, env: Mapping[str, str]) -> None:
        """One hotplug environment, filtered and sent exactly as `supervisorctl notify` does."""
        event = {key: env[key] for key in HOTPLUG_KEYS if key in env}
        self.request({"v": VERSION, "cmd": "notify", "event": event})

    def state(self) -> str:
        printers = self.request({"v": VERSION, "cmd": "status"})["printers"]
        assert isinstance(printers, list)
        return str(next(p["state"] for p in printers if p["name"] == HOTPLUG_PRINTER))

    def wait_for(self, event: str, start: int = 0, fields: Mapping[str, object] | None = None,
                 *, timeout_s: float = READY_TIMEOUT_S) -> dict[str, Any]:
        """The first record of `event` (with `fields`) from index `start` on, once logged."""
        def logged() -> bool:
            self.check_alive()
            self.log.read()
            return self.log.find(event, start, fields) is not None

        wait_until(logged, timeout_s, f"ours to log {event} {fields or ''}", poll_s=POLL_S / 10)
        found = self.log.find(event, start, fields)
        assert found is not None
        return found


def hotplug_config(root: Path, port: int) -> str:
    def q(path: Path) -> str:
        return json.dumps(str(path))

    return "\n".join([
        "[daemon]",
        f"control_socket = {q(root / 'control.sock')}",
        f"log_file = {q(root / 'events.jsonl')}",
        "log_max_bytes = 0",  # no rotation under the LogTail
        f"state_dir = {q(root / 'state')}",
        'event_source = "none"',
        f"sysfs = {q(root / 'sys')}",
        f"devfs = {q(root / 'dev')}",
        f"firmware_dirs = [{q(root / 'firmware')}]",
        f"bind = [{json.dumps(HOST)}]",
        "[[printer]]",
        f'name = "{HOTPLUG_PRINTER}"',
        f'match = "{HOTPLUG_MATCH}"',
        'firmware = "none"',
        f"port = {port}",
        # The plug path does not depend on it; a 0-byte job then ends at the client's close
        # instead of after the 0.25 s backchannel drain.
        "bidirectional = false",
        "",
    ])


def start_hotplug_service(procs: Processes, root: Path) -> HotplugService:
    """Ours on an empty fake device tree under `root`, once it has logged daemon_started."""
    (root / "dev").mkdir()
    config = root / "config.toml"
    port = free_port()
    config.write_text(hotplug_config(root, port))
    with open(root / "ours.stderr", "wb") as stderr:
        proc = procs.spawn([str(SERVICE_PYTHON), "-m", "supervisor", "run", "--config",
                            str(config)], stderr=stderr)
    service = HotplugService(proc, root, port)
    service.wait_for("daemon_started", timeout_s=START_TIMEOUT_S)
    return service


# -- plug → port accepting -------------------------------------------------------------------
PLUG_TIMEOUT_S: Final = 10.0  # from the first plug event until the port accepts
UNPLUG_TIMEOUT_S: Final = 10.0
CONNECT_TIMEOUT_S: Final = 1.0  # one loopback connect
CONNECT_RETRY_S: Final = 0.001  # after ECONNREFUSED
QUIET_S: Final = 0.05  # after an unplug: a rescan still pending runs before the next plug
PLUG_LIMIT_MS: Final = 50.0  # target for the median; the bench's own, not SPEC's


@dataclass(frozen=True)
class Plug:
    """One plug. Times in ms after the first plug event was sent: client-side ones by
    perf_counter, the service's from its log timestamps (the same machine's wall clock)."""

    run: int
    events_answered_ms: float  # the service answered the last plug event
    received_ms: float  # the service logged hotplug_received for the first one
    ready_ms: float  # ...state_changed absent → ready
    listening_ms: float  # ...listener_started
    accepted_ms: float  # a connect to the port succeeded: the measured latency
    connects: int  # connect attempts, the refused ones and the last
    closed_ms: float  # unplug: from its first event until the port stopped listening


def connect_once(port: int) -> float | None:
    """Connect and close at once (a 0-byte job): perf_counter when it connected, None if
    refused."""
    with socket.socket() as sock:
        sock.settimeout(CONNECT_TIMEOUT_S)
        try:
            sock.connect((HOST, port))
        except ConnectionRefusedError:
            return None
        except TimeoutError:
            raise BenchError(f"a connect to port {port} hung for {CONNECT_TIMEOUT_S:g} s") from None
        return time.perf_counter()


def connect_when_accepting(service: HotplugService, deadline: float) -> tuple[float, int]:
    """Try to connect every CONNECT_RETRY_S until it works: when it did, and the attempts."""
    attempts = 0
    while True:
        attempts += 1
        if (connected := connect_once(service.port)) is not None:
            return connected, attempts
        if time.perf_counter() > deadline:
            raise BenchError(f"port {service.port} did not accept within {PLUG_TIMEOUT_S:g} s "
                             "of the first plug event")
        service.check_alive()
        time.sleep(CONNECT_RETRY_S)


def _logged_ms(record: dict[str, Any], wall_start: float) -> float:
    return (datetime.datetime.fromisoformat(record["timestamp"]).timestamp() - wall_start) * 1000


def plug_once(service: HotplugService, usb: VirtualUsbPrinter, run: int) -> Plug:
    """Plug, send the events, connect as soon as the port accepts; unplug and wait it out."""
    mark = len(service.log.read())
    events = usb.plug()  # the node and the sysfs entries: the service does not look yet
    wall_start, start = time.time(), time.perf_counter()
    for env in events:
        service.notify(env)
    answered = time.perf_counter()
    accepted, connects = connect_when_accepting(service, start + PLUG_TIMEOUT_S)
    service.wait_for("job_finished", mark, {"bytes_in": 0})  # our 0-byte job: idle again
    received = service.wait_for("hotplug_received", mark)
    ready = service.wait_for("state_changed", mark, {"from": "absent", "to": "ready"})
    listening = service.wait_for("listener_started", mark)
    if _logged_ms(ready, wall_start) < _logged_ms(received, wall_start):
        raise BenchError(f"plug {run}: ours was ready before it received the first event: "
                         "a rescan from the previous unplug saw this plug")
    return Plug(run, (answered - start) * 1000, _logged_ms(received, wall_start),
                _logged_ms(ready, wall_start), _logged_ms(listening, wall_start),
                (accepted - start) * 1000, connects, unplug_once(service, usb))


def unplug_once(service: HotplugService, usb: VirtualUsbPrinter) -> float:
    """Unplug and send its events; ms until the port stopped listening. Returns once the
    printer is absent, the port refuses, and a rescan still pending has had time to run."""
    events = usb.unplug()
    start = time.perf_counter()
    for env in events:
        service.notify(env)

    def closed() -> bool:
        service.check_alive()
        return not is_listening(service.port)  # from /proc: a connect would be a job

    wait_until(closed, UNPLUG_TIMEOUT_S, f"port {service.port} to close after the unplug",
               poll_s=CONNECT_RETRY_S)
    closed_ms = (time.perf_counter() - start) * 1000
    if connect_once(service.port) is not None:
        raise BenchError(f"port {service.port} still accepts after the unplug")
    wait_until(lambda: service.state() == "absent", UNPLUG_TIMEOUT_S,
               f"{HOTPLUG_PRINTER} to be absent after the unplug")
    time.sleep(QUIET_S)
    return closed_ms


@dataclass
class PlugResult:
    plugs: list[Plug]
    ours_exit_status: int  # on SIGTERM after the plugs; 0 expected


def bench_plug_latency(plugs: int) -> PlugResult:
    """Ours with one matching printer; one warm-up plug, then `plugs` measured ones."""
    procs = Processes()
    with tempfile.TemporaryDirectory(prefix="bench-plug-") as tmp_s, \
            contextlib.ExitStack() as stack:
        stack.callback(procs.stop_all)  # before the directory goes
        root = Path(tmp_s)
        usb = VirtualUsbPrinter(FakeSysfs(root / "sys"), root / "dev")
        stack.callback(usb.close)
        service = start_hotplug_service(procs, root)
        print(f"plug latency: ours on port {service.port}", file=sys.stderr)
        plug_once(service, usb, 0)
        measured = []
        for run in range(1, plugs + 1):
            measured.append(plug_once(service, usb, run))
            if run % 10 == 0 or run == plugs:
                median = statistics.median(p.accepted_ms for p in measured)
                print(f"  plug {run}/{plugs}: median so far {median:.1f} ms", file=sys.stderr,
                      flush=True)
        status = procs.stop(service.proc)
    return PlugResult(measured, status)


PLUG_PHASES: Final = (
    ("events_answered_ms", "all plug events answered"),
    ("received_ms", "service logs the 1st (hotplug_received)"),
    ("ready_ms", "printer ready (state_changed)"),
    ("listening_ms", "listener_started"),
    ("accepted_ms", "port accepts a connection"),
    ("closed_ms", "unplug: 1st event -> port closed"),
)


def summarize_plugs(result: PlugResult) -> dict[str, Any]:
    phases = {key: asdict(Spread.of([getattr(p, key) for p in result.plugs]))
              for key, _ in PLUG_PHASES}
    median = phases["accepted_ms"]["median"]
    return {"plugs": len(result.plugs), "phases_ms": phases,
            "connects_median": statistics.median(p.connects for p in result.plugs),
            "target": f"median <= {PLUG_LIMIT_MS:g} ms", "met": median <= PLUG_LIMIT_MS,
            "ours_exit_status": result.ours_exit_status,
            "runs": [asdict(p) for p in result.plugs]}


# -- supervisorctl notify against a bare interpreter -----------------------------------------
NOTIFY_ARGS: Final = ("ACTION=change", "DEVPATH=/devices/x", "SUBSYSTEM=usb",
                      "DEVTYPE=usb_device")
COMMAND_TIMEOUT_S: Final = 10.0
NOTIFY_RATIO_LIMIT: Final = 2.0
IMPORTTIME_ABOVE: Final = 1.5  # the import profile is shown when notify/pass exceeds this
IMPORTTIME_RUNS: Final = 5
IMPORTTIME_TOP: Final = 8
_IMPORTTIME_LINE: Final = re.compile(r"import time:\s+\d+ \|\s+(?P<cum>\d+) \| (?P<pad> *)"
                                     r"(?P<name>\S+)")

Command = tuple[list[str], int]  # argv, the exit status it must end with


def timed_run(argv: Sequence[str], expected: int) -> float:
    """Run a command to its end: wall ms from just before the spawn until it was reaped."""
    start = time.perf_counter()
    try:
        done = subprocess.run(list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, timeout=COMMAND_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise BenchError(f"{' '.join(argv)} did not finish in {COMMAND_TIMEOUT_S:g} s") from None
    elapsed_ms = (time.perf_counter() - start) * 1000
    if done.returncode != expected:
        raise BenchError(f"{' '.join(argv)} exited {done.returncode}, not {expected}: "
                         f"{done.stderr.decode(errors='replace').strip()}")
    return elapsed_ms


def alternate(runs: int, commands: dict[str, Command]) -> dict[str, list[float]]:
    """One uncounted run of each, then `runs` rounds of each in turn."""
    for argv, expected in commands.values():
        timed_run(argv, expected)
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, (argv, expected) in commands.items():
            times[name].append(timed_run(argv, expected))
    return times


def import_times(python: str, args: Sequence[str]) -> dict[str, tuple[int, int]]:
    """`python -X importtime ARGS`: each module's nesting depth and cumulative µs."""
    done = subprocess.run([python, "-X", "importtime", *args], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S, check=False)
    modules = {}
    for line in done.stderr.splitlines():
        if match := _IMPORTTIME_LINE.match(line):
            modules[match["name"]] = (len(match["pad"]) // 2, int(match["cum"]))
    return modules


def import_profile(python: str, notify: Sequence[str]) -> list[tuple[str, float]]:
    """What notify imports beyond a bare start (outermost imports only, so the times add up):
    module and median cumulative µs over IMPORTTIME_RUNS runs, largest first."""
    bare = set().union(*(import_times(python, ["-c", "pass"]) for _ in range(IMPORTTIME_RUNS)))
    runs = [import_times(python, notify) for _ in range(IMPORTTIME_RUNS)]
    extra: dict[str, list[int]] = {}
    for modules in runs:
        for name, (depth, cumulative) in modules.items():
            if depth == 0 and name not in bare:
                extra.setdefault(name, []).append(cumulative)
    medians = [(name, statistics.median(times)) for name, times in extra.items()]
    return sorted(medians, key=lambda item: -item[1])


@dataclass
class NotifyResult:
    running: dict[str, list[float]]  # "pass" and "notify" wall ms, the service running
    stopped: dict[str, list[float]]  # the same once it stopped (notify exits 3)
    imports: list[tuple[str, float]]
    delivered: int  # hotplug_received records of our event in ours' log
    ours_exit_status: int


def bench_notify(runs: int) -> NotifyResult:
    procs = Processes()
    with tempfile.TemporaryDirectory(prefix="bench-notify-") as tmp_s, \
            contextlib.ExitStack() as stack:
        stack.callback(procs.stop_all)  # before the directory goes
        service = start_hotplug_service(procs, Path(tmp_s))
        print(f"notify: {runs} runs each, alternating", file=sys.stderr, flush=True)
        python = str(SERVICE_PYTHON)
        notify = [str(SUPERVISORCTL), "--socket", str(service.socket), "notify", *NOTIFY_ARGS]
        bare = [python, "-c", "pass"]
        running = alternate(runs, {"pass": (bare, EXIT_OK), "notify": (notify, EXIT_OK)})
        imports = import_profile(python, notify)
        service.log.read()
        delivered = sum(1 for r in service.log.records if r.get("event") == "hotplug_received"
                        and r.get("devpath") == "/devices/x")
        sent = 1 + runs + IMPORTTIME_RUNS  # the warm-up, the measured runs, the profiled ones
        if delivered != sent:
            raise BenchError(f"ours logged {delivered} of the {sent} notify events sent")
        status = procs.stop(service.proc)
        stopped = alternate(runs, {"pass": (bare, EXIT_OK),
                                   "notify": (notify, EXIT_NOT_RUNNING)})
    return NotifyResult(running, stopped, imports, delivered, status)


def summarize_notify(result: NotifyResult) -> dict[str, Any]:
    def phase(times: dict[str, list[float]]) -> dict[str, Any]:
        spreads = {name: Spread.of(values) for name, values in times.items()}
        return {**{f"{name}_ms": asdict(s) for name, s in spreads.items()},
                "ratio": spreads["notify"].median / spreads["pass"].median}

    running = phase(result.running)
    return {"runs": len(result.running["pass"]), "running": running,
            "not_running": phase(result.stopped), "target": f"<= {NOTIFY_RATIO_LIMIT:.1f}x",
            "met": running["ratio"] <= NOTIFY_RATIO_LIMIT, "delivered": result.delivered,
            "ours_exit_status": result.ours_exit_status,
            "import_time_us": [{"module": name, "cumulative": us} for name, us in result.imports]}


# -- summary and output ----------------------------------------------------------------------
@dataclass(frozen=True)
class Stat:
    """Median and range of one metric over the runs."""

    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Stat:
        return cls(statistics.median(values), min(values), max(values))


def metric_stats(jobs: Sequence[Job], sink: str, server: str, metric: str) -> Stat:
    return Stat.of([getattr(j, metric) for j in jobs if j.sink == sink and j.server == server])


def summarize(results: Sequence[SinkResult]) -> dict[str, Any]:
    """Medians per sink and server, ratios, and whether each target was met."""
    jobs = [j for r in results for j in r.jobs]
    rows = []
    for target in TARGETS:
        p910nd, ours = (metric_stats(jobs, target.sink, s, target.metric) for s in SERVERS)
        # A median of 0 CPU ticks (tiny jobs) gives no ratio: not met, and shown as n/a.
        ratio = ours.median / p910nd.median if p910nd.median > 0 else None
        rows.append({"sink": target.sink, "metric": target.metric, "p910nd": asdict(p910nd),
                     "ours": asdict(ours), "ratio": ratio, "target": target.label(),
                     "met": ratio is not None and target.met(ratio)})
    idle_mb = max(max(r.rss_after_start_kb["ours"], r.rss_after_runs_kb["ours"])
                  for r in results) * 1000 / MB
    rows.append({"sink": "any", "metric": "ours_idle_rss_mb", "ours": idle_mb,
                 "target": f"<= {IDLE_RSS_LIMIT_MB:g} MB", "met": idle_mb <= IDLE_RSS_LIMIT_MB})
    clean_exit = all(r.ours_exit_status == 0 for r in results)
    return {"targets": rows, "all_met": all(r["met"] for r in rows),
            "ours_exit_status": [r.ours_exit_status for r in results],
            "ours_clean_exit": clean_exit}


METRIC_LABELS: Final = {"mb_per_s": "MB/s", "cpu_s_per_gib": "CPU s/GiB"}


def _cell(stat: dict[str, float], metric: str) -> str:
    fmt = "{:.0f}" if metric == "mb_per_s" else "{:.3f}"
    spread = f"({fmt.format(stat['low'])}-{fmt.format(stat['high'])})"
    return f"{fmt.format(stat['median']):>7} {spread:>15}"


def _ratio(ratio: float | None) -> str:
    return f"{ratio:10.2f}x" if ratio is not None else f"{'n/a':>11}"


def render_throughput(results: Sequence[SinkResult], summary: dict[str, Any],
                      args: argparse.Namespace) -> list[str]:
    lines = [
        f"p910nd vs printer-supervisor ('ours'): {args.mib} MiB per job, {args.runs} run(s) per "
        "server and sink, median (min-max); MB = 10^6 bytes; CPU is counted in "
        f"{TICK_S * 1000:g} ms ticks (n/a: too few, raise --mib)",
        "",
        f"{'sink':10} {'metric':10} {'p910nd':>23} {'ours':>23} {'ours/p910nd':>11}  "
        f"{'target':8} met",
    ]
    ratio_rows = [row for row in summary["targets"] if row["metric"] in METRIC_LABELS]
    rss = next(row for row in summary["targets"] if row["metric"] == "ours_idle_rss_mb")
    for row in ratio_rows:
        metric = row["metric"]
        lines.append(
            f"{row['sink']:10} {METRIC_LABELS[metric]:10} {_cell(row['p910nd'], metric)} "
            f"{_cell(row['ours'], metric)} {_ratio(row['ratio'])}  {row['target']:8} "
            f"{'yes' if row['met'] else 'NO'}")
    lines += ["", f"{'memory (MB)':10} {'':29} {'p910nd':>8} {'ours':>8}"]
    for r in results:
        for label, values in (("idle RSS after start-up", r.rss_after_start_kb),
                              ("idle RSS after the runs", r.rss_after_runs_kb),
                              ("peak RSS (VmHWM)", r.peak_kb)):
            lines.append(f"{r.sink:10} {label:29} {values['p910nd'] / 1000:8.1f} "
                         f"{values['ours'] / 1000:8.1f}")
    statuses = ", ".join(str(status) for status in summary["ours_exit_status"])
    lines += [f"ours idle RSS (largest sample): {rss['ours']:.1f} MB, target {rss['target']}: "
              f"{'yes' if rss['met'] else 'NO'}",
              f"ours exit status on SIGTERM, per sink: {statuses} (0 expected): "
              f"{'yes' if summary['ours_clean_exit'] else 'NO'}",
              _reader_line(results)]
    return lines


def _reader_line(results: Sequence[SinkResult]) -> str:
    cpu = [j.reader_cpu_s / (j.bytes / GIB) for r in results for j in r.jobs
           if j.reader_cpu_s is not None]
    clients = [j.client_cpu_s / (j.bytes / GIB) for r in results for j in r.jobs]
    reader = f"FIFO reader {statistics.median(cpu):.3f}, " if cpu else ""
    return f"other CPU s/GiB (median): {reader}client {statistics.median(clients):.3f}"


def machine_info() -> dict[str, str]:
    cpu = next((line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "unknown")
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": str(len(os.sched_getaffinity(0))),
        "kernel": os.uname().release,
        "cpu": cpu,
        "python": platform.python_version(),
        "p910nd": _output(["dpkg-query", "-W", "-f", "${Version}", "p910nd"]),
        "commit": _output(["git", "-C", str(ROOT), "describe", "--always", "--dirty"]),
    }


def _output(argv: Sequence[str]) -> str:
    try:
        return subprocess.run(list(argv), capture_output=True, text=True, timeout=10,
                              check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _yes(met: bool) -> str:
    return "yes" if met else "NO"


def _spread_row(label: str, spread: dict[str, float], width: int) -> str:
    return (f"{label:{width}} " + " ".join(f"{spread[k]:7.1f}"
                                            for k in ("median", "p90", "low", "high")))


def render_plugs(plug: dict[str, Any]) -> list[str]:
    width = 42
    phases = plug["phases_ms"]
    accepted = phases["accepted_ms"]["median"]
    lines = [f"plug -> port accepting: {plug['plugs']} plugs after 1 warm-up; ms after the first "
             "plug event was sent (events sent in-process with supervisor.cli.request, as "
             "supervisorctl notify sends them)",
             "",
             f"{'':{width}} {'median':>7} {'p90':>7} {'min':>7} {'max':>7}"]
    lines += [_spread_row(label, phases[key], width) for key, label in PLUG_PHASES]
    lines += [f"plug -> port accepting, median {accepted:.1f} ms, target {plug['target']}: "
              f"{_yes(plug['met'])}",
              f"connect attempts per plug (median): {plug['connects_median']:g}; ours exit status "
              f"on SIGTERM: {plug['ours_exit_status']} (0 expected): "
              f"{_yes(plug['ours_exit_status'] == 0)}"]
    return lines


def render_notify(notify: dict[str, Any]) -> list[str]:
    width = 42
    lines = [f"supervisorctl notify vs python -c pass (same interpreter, .venv/bin/python): "
             f"{notify['runs']} runs each as processes, alternating; wall ms per run",
             "",
             f"{'':{width}} {'median':>7} {'p90':>7} {'min':>7} {'max':>7}  notify/pass"]
    for key, title in (("running", "service running (notify exits 0)"),
                       ("not_running", "service not running (notify exits 3)")):
        phase = notify[key]
        lines += [title, _spread_row("  python -c pass", phase["pass_ms"], width),
                  _spread_row("  supervisorctl notify", phase["notify_ms"], width) +
                  f"  {phase['ratio']:10.2f}x"]
    ratio = notify["running"]["ratio"]
    lines.append(f"notify/pass with the service running: {ratio:.2f}x, target {notify['target']}: "
                 f"{_yes(notify['met'])}")
    if ratio > IMPORTTIME_ABOVE:
        top = notify["import_time_us"][:IMPORTTIME_TOP]
        total = sum(m["cumulative"] for m in notify["import_time_us"]) / 1000
        lines.append(f"above {IMPORTTIME_ABOVE:g}x: what notify imports beyond a bare start "
                     f"(-X importtime, median of {IMPORTTIME_RUNS}), {total:.1f} ms in all: " +
                     ", ".join(f"{m['module']} {m['cumulative'] / 1000:.1f}" for m in top))
    return lines


@dataclass
class Report:
    """What the sections run measured, summarized; None for a section not run."""

    machine: dict[str, str]
    sections: list[str]
    throughput: tuple[list[SinkResult], dict[str, Any]] | None = None
    plug: dict[str, Any] | None = None
    notify: dict[str, Any] | None = None

    @property
    def all_met(self) -> bool:
        verdicts = [self.throughput[1]["all_met"]] if self.throughput else []
        verdicts += [s["met"] for s in (self.plug, self.notify) if s is not None]
        return all(verdicts)


def render(report: Report, args: argparse.Namespace) -> str:
    lines = ["machine: " + ", ".join(f"{k} {v}" for k, v in report.machine.items())]
    if report.throughput is not None:
        lines += ["", *render_throughput(*report.throughput, args)]
    if report.plug is not None:
        lines += ["", *render_plugs(report.plug)]
    if report.notify is not None:
        lines += ["", *render_notify(report.notify)]
    lines += ["", f"all targets met ({', '.join(report.sections)}): {_yes(report.all_met)}"]
    return "\n".join(lines)


def write_json(path: Path, report: Report, args: argparse.Namespace) -> None:
    document: dict[str, Any] = {"machine": report.machine, "sections": report.sections}
    if report.throughput is not None:
        results, summary = report.throughput
        jobs = [{**asdict(j), "mb_per_s": j.mb_per_s, "cpu_s_per_gib": j.cpu_s_per_gib}
                for r in results for j in r.jobs]
        memory = [{k: v for k, v in asdict(r).items() if k != "jobs"} for r in results]
        document |= {"mib": args.mib, "runs": args.runs, "jobs": jobs, "memory": memory,
                     **summary}
    if report.plug is not None:
        document["plug_latency"] = report.plug
    if report.notify is not None:
        document["notify"] = report.notify
    document["all_met"] = report.all_met  # every target of the sections run
    path.write_text(json.dumps(document, indent=2) + "\n")


# -- main ------------------------------------------------------------------------------------
def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5, help="measured jobs per server and sink")
    parser.add_argument("--mib", type=int, default=256, help="size of each job in MiB")
    parser.add_argument("--plugs", type=int, default=50, help="measured plugs (latency)")
    parser.add_argument("--notify-runs", type=int, default=50,
                        help="runs of notify and of python -c pass (notify)")
    parser.add_argument("--only", action="append", choices=SECTIONS, metavar="SECTION",
                        help=f"run only this section, one of {', '.join(SECTIONS)}; repeatable "
                             "(default: all)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write results as JSON")
    args = parser.parse_args(argv)
    if min(args.runs, args.mib, args.plugs, args.notify_runs) < 1:
        parser.error("--runs, --mib, --plugs and --notify-runs must be at least 1")
    args.sections = [s for s in SECTIONS if s in (args.only or SECTIONS)]
    return args


def preflight() -> tuple[int, int]:
    """Check the tools exist; pick p910nd's port (9100+N) and ours."""
    if not P910ND.exists():
        raise BenchError(f"{P910ND} not found: apt-get install p910nd")
    p910nd_port = 9100 + free_p910nd_number()
    return p910nd_port, free_port()


@contextlib.contextmanager
def sigterm_as_exit() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C, so every child and temporary directory is cleaned up."""
    def handler(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_sections(args: argparse.Namespace) -> Report:
    report = Report(machine_info(), args.sections)
    if "throughput" in args.sections:
        ports = preflight()
        print(f"throughput: ports p910nd {ports[0]}, ours {ports[1]}", file=sys.stderr)
        results = [bench_sink(sink, args, ports) for sink in SINKS]
        report.throughput = (results, summarize(results))
    if "latency" in args.sections:
        report.plug = summarize_plugs(bench_plug_latency(args.plugs))
    if "notify" in args.sections:
        report.notify = summarize_notify(bench_notify(args.notify_runs))
    return report


def main(argv: Sequence[str]) -> int:
    if argv and argv[0] in CHILD_ROLES:
        return CHILD_ROLES[argv[0]](argv[1:])
    args = parse_args(argv)
    try:
        with sigterm_as_exit():
            report = run_sections(args)
    except BenchError as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        return 130
    print(render(report, args))
    if args.json:
        write_json(args.json, report, args)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
