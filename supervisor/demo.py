"""`supervisorctl demo`: the service, a virtual printer and a job, narrated step by step."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

from supervisor.virtual import PJL_STATUS_QUERY, PJL_STATUS_REPLY, VirtualPrinter

STEP_TIMEOUT_S: Final = 15.0
JOB: Final = (
    b"\x1b%-12345X@PJL JOB NAME=\"demo\"\r\n" + PJL_STATUS_QUERY + b"\r\n"
    + b"@PJL ENTER LANGUAGE=PCL\r\n"
    + b"Hello from printer-supervisor: this page went through TCP, not through a cable.\r\n\x0c"
    + b"\x1b%-12345X@PJL EOJ\r\n\x1b%-12345X"
)


def free_port() -> int:
    """A TCP port nobody listens on right now, on loopback."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until(condition: Callable[[], bool], timeout_s: float = STEP_TIMEOUT_S) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def read_log(path: Path) -> list[dict[str, object]]:
    """The service's JSON log lines (a line being written is skipped)."""
    if not path.exists():
        return []
    events = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return events


def print_job(port: int, job: bytes) -> bytes:
    """Send `job` like CUPS's socket backend: write, half-close, read replies until close."""
    with socket.create_connection(("127.0.0.1", port), timeout=STEP_TIMEOUT_S) as conn:
        conn.sendall(job)
        conn.shutdown(socket.SHUT_WR)
        replies = b""
        while chunk := conn.recv(65536):
            replies += chunk
        return replies


class Demo:
    """The story, one narrated step at a time; `play` returns the exit code."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.log_file = root / "log" / "events.jsonl"
        self.config = root / "config.toml"
        self.port = free_port()
        self.printer = VirtualPrinter(root / "dev")
        self.service: subprocess.Popen[bytes] | None = None
        self.failed = False

    def say(self, ok: bool, text: str) -> bool:
        print(f"  {'✓' if ok else '✗'} {text}", flush=True)
        self.failed |= not ok
        return ok

    def play(self) -> int:
        print(f"printer-supervisor demo in {self.root}\n", flush=True)
        try:
            if self.plug() and self.start() and self.print_a_job():
                self.show_log()
        finally:
            self.stop()
            self.printer.close()
        print("\nall steps worked" if not self.failed else "\nsome steps FAILED", flush=True)
        return 1 if self.failed else 0

    def plug(self) -> bool:
        print("1. A virtual USB printer appears (a pty in raw mode standing in for usblp)")
        self.printer.plug()
        return self.say(self.printer.path.exists(),
                        f"{self.printer.path} -> {self.printer.path.resolve()}")

    def start(self) -> bool:
        print(f"\n2. The service starts with one p910nd-style printer on port {self.port}")
        self.config.write_text(
            "[daemon]\n"
            f'control_socket = "{self.root / "control.sock"}"\n'
            f'log_file = "{self.log_file}"\n'
            f'state_dir = "{self.root / "state"}"\n'
            'event_source = "none"\n'
            f'devfs = "{self.root / "dev"}"\n'
            'bind = ["127.0.0.1"]\n\n'
            "[[printer]]\n"
            'name = "demo"\n'
            f'device = "{self.printer.path}"\n'
            f"port = {self.port}\n"
            "bidirectional = true\n",
            encoding="utf-8",
        )
        print(f"  $ supervisorctl run --config {self.config}", flush=True)
        stderr = (self.root / "service.stderr").open("wb")
        self.service = subprocess.Popen(
            [sys.executable, "-m", "supervisor", "run", "--config", str(self.config)],
            stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr)
        listening = wait_until(lambda: self._logged("listener_started")
                               or self.service is None or self.service.poll() is not None)
        return self.say(listening and self._logged("listener_started"),
                        f"listening on 127.0.0.1:{self.port}, printer 'demo' is ready")

    def print_a_job(self) -> bool:
        print(f"\n3. A client prints a {len(JOB)}-byte PJL job and asks for the printer status")
        replies = print_job(self.port, JOB)
        paper = self.printer.wait_for_bytes(len(JOB))
        self.say(paper == JOB, f"{len(paper)} bytes arrived at the printer, byte for byte")
        for line in paper.split(b"\r\n")[:4]:
            print(f"      | {line[:72]!r}")
        return self.say(replies == PJL_STATUS_REPLY,
                        f"the printer's answer came back over the same connection: "
                        f"{replies.split(b'CODE=')[-1][:5].decode(errors='replace')!r} (ready)")

    def show_log(self) -> None:
        print(f"\n4. The log ({self.log_file}), one JSON object per line:")
        wait_until(lambda: self._logged("job_finished"))
        for event in read_log(self.log_file):
            fields = {k: v for k, v in event.items() if k not in ("timestamp", "level", "event")}
            print(f"      {event['event']:<16} {json.dumps(fields)[:100]}")
        self.say(self._logged("job_finished"), "job_finished logged with its byte counts")

    def stop(self) -> None:
        if self.service is None:
            return
        print("\n5. SIGTERM: the service stops accepting, lets jobs finish and exits")
        self.service.send_signal(signal.SIGTERM)
        try:
            code = self.service.wait(STEP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.service.kill()
            code = self.service.wait()
        self.say(code == 0, f"exit status {code}")
        if code != 0:
            print((self.root / "service.stderr").read_text(errors="replace")[-2000:])
        self.service = None

    def _logged(self, event: str) -> bool:
        return any(e.get("event") == event for e in read_log(self.log_file))


def run_demo() -> int:
    """Play the demo in a fresh temporary directory; 0 when every step worked."""
    with tempfile.TemporaryDirectory(prefix="printer-supervisor-demo-") as tmp:
        return Demo(Path(tmp)).play()
