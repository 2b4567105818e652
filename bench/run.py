"""Side-by-side benchmark of p910nd and printer-supervisor: throughput, server CPU per GiB, RSS."""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import datetime
import fcntl
import json
import os
import platform
import select
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any, Final

ROOT: Final = Path(__file__).resolve().parent.parent
SERVICE_PYTHON: Final = ROOT / ".venv" / "bin" / "python"
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


def wait_until(ready: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not ready():
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(POLL_S)


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
    with contextlib.ExitStack() as stack, tempfile.TemporaryDirectory(prefix="bench-") as tmp_s:
        stack.callback(procs.stop_all)
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


def render(results: Sequence[SinkResult], summary: dict[str, Any], args: argparse.Namespace,
           machine: dict[str, str]) -> str:
    lines = [
        f"p910nd vs printer-supervisor ('ours'): {args.mib} MiB per job, {args.runs} run(s) per "
        "server and sink, median (min-max); MB = 10^6 bytes; CPU is counted in "
        f"{TICK_S * 1000:g} ms ticks (n/a: too few, raise --mib)",
        "machine: " + ", ".join(f"{k} {v}" for k, v in machine.items()),
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
              _reader_line(results),
              f"all targets met: {'yes' if summary['all_met'] else 'NO'}"]
    return "\n".join(lines)


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


def write_json(path: Path, results: Sequence[SinkResult], summary: dict[str, Any],
               args: argparse.Namespace, machine: dict[str, str]) -> None:
    jobs = [{**asdict(j), "mb_per_s": j.mb_per_s, "cpu_s_per_gib": j.cpu_s_per_gib}
            for r in results for j in r.jobs]
    memory = [{k: v for k, v in asdict(r).items() if k != "jobs"} for r in results]
    document = {"machine": machine, "mib": args.mib, "runs": args.runs, "jobs": jobs,
                "memory": memory, **summary}
    path.write_text(json.dumps(document, indent=2) + "\n")


# -- main ------------------------------------------------------------------------------------
def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5, help="measured jobs per server and sink")
    parser.add_argument("--mib", type=int, default=256, help="size of each job in MiB")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write results as JSON")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.mib < 1:
        parser.error("--runs and --mib must be at least 1")
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


def main(argv: Sequence[str]) -> int:
    if argv and argv[0] in CHILD_ROLES:
        return CHILD_ROLES[argv[0]](argv[1:])
    args = parse_args(argv)
    try:
        with sigterm_as_exit():
            ports = preflight()
            machine = machine_info()
            print(f"ports: p910nd {ports[0]}, ours {ports[1]}", file=sys.stderr)
            results = [bench_sink(sink, args, ports) for sink in SINKS]
    except BenchError as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        return 130
    summary = summarize(results)
    print(render(results, summary, args, machine))
    if args.json:
        write_json(args.json, results, summary, args, machine)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
