"""`supervisorctl demo`: plug → firmware → ready → job → unplug on a virtual printer, narrated."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Final

from supervisor.ctl.client import ServiceUnreachable, request
from supervisor.ctl.logview import parse_record, read_lines
from supervisor.lab.virtual import PJL_STATUS_QUERY, PJL_STATUS_REPLY, FakeSysfs, VirtualUsbPrinter

if TYPE_CHECKING:
    from supervisor.lab.netlab import Lab

STEP_TIMEOUT_S: Final = 15.0
NAME: Final = "laserjet"
# A stand-in for sihp1018.dl: real firmware is proprietary, so the demo makes its own blob.
FIRMWARE: Final = b"\x1b%-12345X@PJL ENTER LANGUAGE=ACL\r\n" + bytes(range(256)) * 64
JOB: Final = (
    b"\x1b%-12345X@PJL JOB NAME=\"demo\"\r\n" + PJL_STATUS_QUERY + b"\r\n"
    + b"@PJL ENTER LANGUAGE=PCL\r\n"
    + b"Hello from printer-supervisor: this page went through TCP, not through a cable.\r\n\x0c"
    + b"\x1b%-12345X@PJL EOJ\r\n\x1b%-12345X"
)
#: The long job of the out-of-paper act: 2 MiB of raster lines, too much for any buffer.
LONG_JOB: Final = (b"\x1b%-12345X@PJL JOB NAME=\"long\"\r\n@PJL ENTER LANGUAGE=PCL\r\n"
                   + b"".join(b"\x1b*b64W" + bytes([row % 256]) * 64 for row in range(29_000))
                   + b"\x0c\x1b%-12345X@PJL EOJ\r\n\x1b%-12345X")
STALL_TIMEOUT_S: Final = 2  # the demo's; the default is 60 (see printer-supervisor.conf(5))


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


def read_until_closed(conn: socket.socket) -> bytes:
    """What the service sends back after the client's half-close, until it closes (CUPS's
    socket backend waits for that close too)."""
    replies = b""
    while chunk := conn.recv(65536):
        replies += chunk
    return replies


def _row_state(table: str, name: str) -> str | None:
    """The STATE column of `name`'s row in `supervisorctl status`'s table."""
    for line in table.splitlines():
        cells = line.split()
        if len(cells) > 1 and cells[0] == name:
            return cells[1]
    return None


class Demo:
    """The story, one narrated step at a time; `play` returns the exit code."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.log_file = root / "log" / "events.jsonl"
        self.config = root / "config.toml"
        self.socket = root / "control.sock"
        self.port = free_port()
        self.http_port = free_port()
        self.usb = VirtualUsbPrinter(FakeSysfs(root / "sys"), root / "dev", firmware=FIRMWARE)
        self.service: subprocess.Popen[bytes] | None = None
        self.failed = False

    def say(self, ok: bool, text: str) -> bool:
        print(f"  {'✓' if ok else '✗'} {text}", flush=True)
        self.failed |= not ok
        return ok

    def play(self) -> int:
        print(f"printer-supervisor demo in {self.root}\n", flush=True)
        try:
            steps = (self.start, self.plug, self.print_a_job, self.show_status,
                     self.out_of_paper, self.unplug, self.show_log)
            for step in steps:
                if not step():
                    break
        finally:
            self.stop()
            self.usb.close()
        if not self.failed:
            Discovery(self).play()
        print("\nall steps worked" if not self.failed else "\nsome steps FAILED", flush=True)
        return 1 if self.failed else 0

    def start(self) -> bool:
        print(f"1. The service starts: one printer, an HP LaserJet 1018, on port {self.port}")
        firmware_dir = self.root / "firmware"
        firmware_dir.mkdir()
        (firmware_dir / "sihp1018.dl").write_bytes(FIRMWARE)
        self.config.write_text(
            "[daemon]\n"
            f'control_socket = "{self.socket}"\n'
            f'log_file = "{self.log_file}"\n'
            f'state_dir = "{self.root / "state"}"\n'
            'event_source = "none"   # events come from `supervisorctl notify`, as on OpenWrt\n'
            f'sysfs = "{self.root / "sys"}"\n'
            f'devfs = "{self.root / "dev"}"\n'
            f'firmware_dirs = ["{firmware_dir}"]\n'
            'bind = ["127.0.0.1"]\n'
            f'http_listen = "127.0.0.1:{self.http_port}"   # /metrics and a status page\n\n'
            "[[printer]]\n"
            f'name = "{NAME}"\n'
            'match = "3f0/4117/*"\n'
            f"port = {self.port}\n"
            f"stall_timeout = {STALL_TIMEOUT_S}   # seconds without a byte taken: stalled "
            "(default 60)\n",
            encoding="utf-8",
        )
        print(f"  $ supervisorctl run --config {self.config}", flush=True)
        output = (self.root / "service.stderr").open("wb")
        self.service = subprocess.Popen(
            [sys.executable, "-m", "supervisor", "run", "--config", str(self.config)],
            stdin=subprocess.DEVNULL, stdout=output, stderr=output)
        up = wait_until(lambda: self._logged("daemon_started") or self._service_died())
        return self.say(up and self._logged("daemon_started"),
                        f"running; {NAME} is absent until it is plugged in")

    def plug(self) -> bool:
        print("\n2. The printer is switched on: the kernel's hotplug events reach the service")
        for env in self.usb.plug():
            shown = " ".join(f"{k}={env[k]}" for k in ("ACTION", "SUBSYSTEM", "DEVTYPE",
                                                          "DEVNAME") if k in env)
            print(f"  $ supervisorctl notify   # {shown}", flush=True)
            subprocess.run([sys.executable, "-m", "supervisor", "--socket", str(self.socket),
                            "notify"], env={**os.environ, **env}, check=False, timeout=30)
        pushed = wait_until(lambda: self._logged("firmware_pushed"))
        assert self.usb.printer is not None
        self.say(pushed and self.usb.printer.firmware_loaded,
                 f"firmware pushed first ({len(FIRMWARE)} bytes of a stand-in sihp1018.dl); "
                 "the printer now reports FWVER")
        return self.say(wait_until(lambda: self._logged("listener_started")),
                        f"{NAME} is ready: port {self.port} accepts jobs")

    def print_a_job(self) -> bool:
        print(f"\n3. A client prints a {len(JOB)}-byte PJL job and asks for the printer status")
        assert self.usb.printer is not None
        head, rest = JOB.split(b"\r\n", 1)
        with socket.create_connection(("127.0.0.1", self.port), timeout=STEP_TIMEOUT_S) as conn:
            # The job starts with its first byte; the client holds the connection open (as a
            # slow sender would) until the demo has seen and shown the printer serving it.
            conn.sendall(head + b"\r\n")
            serving = wait_until(lambda: self._state() == "serving")
            print("  the client has sent the job's first line and holds the connection open:")
            table = self._show_status()
            self.say(serving and _row_state(table, NAME) == "serving",
                     f"{NAME} is serving while its job runs: one job at a time, other clients "
                     "wait their turn")
            conn.sendall(rest)
            conn.shutdown(socket.SHUT_WR)
            replies = read_until_closed(conn)
        paper = self.usb.printer.wait_for_bytes(len(FIRMWARE) + len(JOB))
        self.say(paper == FIRMWARE + JOB,
                 f"{len(JOB)} bytes arrived at the printer after its firmware, byte for byte")
        for line in paper[len(FIRMWARE):].split(b"\r\n")[:4]:
            print(f"      | {line[:72]!r}")
        code = replies.split(b"CODE=")[-1][:5].decode(errors="replace")
        return self.say(replies == PJL_STATUS_REPLY,
                        f"the printer's answer came back over the same connection: "
                        f"CODE={code} (ready)")

    def show_status(self) -> bool:
        print("\n4. What the service reports")
        table = self._show_status()
        self.say(_row_state(table, NAME) == "ready",
                 "ready again: one job, its bytes, the firmware file, the state since when")
        url = f"http://127.0.0.1:{self.http_port}"
        print(f"  $ curl {url}/metrics   # what Prometheus scrapes (also {url}/ in a browser)",
              flush=True)
        wanted = (f'printer_supervisor_printer_state{{printer="{NAME}",state="ready"}}',
                  f'printer_supervisor_jobs_finished_total{{printer="{NAME}"}}',
                  f'printer_supervisor_device_written_bytes_total{{printer="{NAME}"}}')
        try:
            with urllib.request.urlopen(f"{url}/metrics", timeout=STEP_TIMEOUT_S) as answer:
                lines = answer.read().decode().splitlines()
        except OSError as exc:
            return self.say(False, f"/metrics did not answer: {exc}")
        shown = [line for line in lines if line.startswith(wanted)]
        for line in shown:
            print(f"      {line}")
        return self.say(f"{wanted[1]} 1" in shown,
                        f"the same in Prometheus' text format ({len(lines)} lines in all)")

    def out_of_paper(self) -> bool:
        print(f"\n5. The printer runs out of paper in the middle of a {len(LONG_JOB) / 2**20:.1f} "
              "MiB job")
        printer = self.usb.printer
        assert printer is not None
        before = len(printer.paper)
        client = _Sender(self.port, LONG_JOB)
        printer.wait_for_bytes(before + (512 << 10), STEP_TIMEOUT_S)
        printer.pause()  # it stops taking data: the pty fills up, the service's writes block
        print(f"  the printer stops taking data after {len(printer.paper) - before} bytes; "
              f"stall_timeout is {STALL_TIMEOUT_S} s here", flush=True)
        stalled = wait_until(lambda: self._logged("printer_stalled"))
        table = self._show_status()
        self.say(stalled and "STALLED since" in table,
                 "status says it: the job's progress, and STALLED with the reason (a virtual "
                 "printer's node cannot say more than \"not taking data\"; a USB printer "
                 "answers \"out of paper\")")
        self._show_logs("--event", "printer_stalled")
        print("  paper is added: the printer takes data again", flush=True)
        printer.resume()
        client.join()
        paper = printer.wait_for_bytes(before + len(LONG_JOB))
        resumed = wait_until(lambda: self._logged("printer_resumed"))
        self._show_logs("--event", "printer_*")
        return self.say(resumed and client.closed and paper[before:] == LONG_JOB,
                        f"the job went on and completed: all {len(LONG_JOB)} bytes reached the "
                        "printer, nothing aborted, nothing lost")

    def unplug(self) -> bool:
        print("\n6. The printer is switched off")
        for env in self.usb.unplug():
            subprocess.run([sys.executable, "-m", "supervisor", "--socket", str(self.socket),
                            "notify"], env={**os.environ, **env}, check=False, timeout=30)
        closed = wait_until(lambda: self._logged("listener_stopped"))
        return self.say(closed and self._refused(),
                        f"{NAME} is absent: port {self.port} is closed until it comes back "
                        "(its firmware will be pushed again)")

    def show_log(self) -> bool:
        print(f"\n7. The log: one JSON object per line in {self.log_file}")
        print("  $ supervisorctl logs -n all", flush=True)
        shown = subprocess.run([sys.executable, "-m", "supervisor", "logs", "--config",
                                str(self.config), "-n", "all"], capture_output=True, text=True,
                               check=False, timeout=30)
        for line in shown.stdout.splitlines():
            print(f"      {line[:110]}")
        return self.say(shown.returncode == 0 and self._logged("job_finished"),
                        "every step is there; --json gives the raw lines for jq")

    def stop(self) -> None:
        if self.service is None:
            return
        print("\n8. SIGTERM: the service stops accepting, lets jobs finish and exits")
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

    def _show_status(self) -> str:
        """Run and show `supervisorctl status`; its table, or "" when it failed."""
        print("  $ supervisorctl status", flush=True)
        result = subprocess.run([sys.executable, "-m", "supervisor", "--socket",
                                 str(self.socket), "status"], capture_output=True, text=True,
                                check=False, timeout=30)
        for line in result.stdout.splitlines():
            print(f"      {line}")
        return result.stdout if result.returncode == 0 else ""

    def _show_logs(self, *options: str) -> None:
        """Run and show `supervisorctl logs OPTIONS`."""
        print(f"  $ supervisorctl logs {' '.join(options)}", flush=True)
        shown = subprocess.run([sys.executable, "-m", "supervisor", "logs", "--config",
                                str(self.config), *options], capture_output=True, text=True,
                               check=False, timeout=30)
        for line in shown.stdout.splitlines():
            print(f"      {line[:200]}")

    def _state(self) -> object:
        """The printer's state as the control socket tells it (None if it does not answer)."""
        try:
            reply = request(str(self.socket), {"v": 1, "cmd": "status"})
        except (ServiceUnreachable, OSError, ValueError):
            return None
        printers = reply.get("printers")
        if not isinstance(printers, list) or not printers or not isinstance(printers[0], dict):
            return None
        return printers[0].get("state")

    def _logged(self, event: str) -> bool:
        return logged(self.log_file, event)

    def _service_died(self) -> bool:
        return self.service is None or self.service.poll() is not None

    def _refused(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=2).close()
        except ConnectionRefusedError:
            return True
        return False


class _Sender:
    """A client in a thread: sends a job, half-closes, reads until the service closes."""

    def __init__(self, port: int, job: bytes) -> None:
        self.closed = False
        self._conn = socket.create_connection(("127.0.0.1", port), timeout=STEP_TIMEOUT_S * 4)
        self._job = job
        self._thread = threading.Thread(target=self._send, daemon=True)
        self._thread.start()

    def _send(self) -> None:
        try:
            self._conn.sendall(self._job)
            self._conn.shutdown(socket.SHUT_WR)
            read_until_closed(self._conn)
            self.closed = True
        except OSError:
            pass
        finally:
            self._conn.close()

    def join(self) -> None:
        self._thread.join(STEP_TIMEOUT_S * 4)


class Discovery:
    """Act two: announced over mDNS/DNS-SD and withdrawn, seen from a second host.

    Only inside a private network (two namespaces joined by a veth pair, each with its own
    system bus and avahi-daemon): nothing may be announced on the network the machine is on.
    """

    HOST: Final = "pslab-srv"

    def __init__(self, demo: Demo) -> None:
        self.demo = demo
        self.root = demo.root / "discovery"
        self.socket = self.root / "control.sock"
        self.log_file = self.root / "events.jsonl"
        self.usb = VirtualUsbPrinter(FakeSysfs(self.root / "sys"), self.root / "dev",
                                     serial="DEMO0002")

    def play(self) -> None:
        from supervisor.lab.netlab import Lab, missing_tools  # noqa: PLC0415 (this act only)

        print("\n9. Discovery: a ready printer is announced over mDNS/DNS-SD (avahi), so that "
              "CUPS and\n   \"Add printer\" dialogs list it by name; it is withdrawn when it goes")
        why = None
        if os.geteuid() != 0:
            why = "it needs root, to make a private network (run `sudo make demo`)"
        elif missing := missing_tools(cups=False):
            why = f"{' '.join(missing)} missing (apt-get install avahi-daemon avahi-utils dbus)"
        if why:
            print(f"  - skipped: {why}. Nothing is ever announced on your real network.")
            return
        lab = Lab(Path(tempfile.mkdtemp(prefix="printer-supervisor-lab-")))
        service: subprocess.Popen[bytes] | None = None
        try:
            lab.up(cups=False)
            print("  a private network: host pslab-srv (the service, its avahi-daemon) and host "
                  "pslab-cli (a client), on one veth link", flush=True)
            service = self._start(lab)
            self._announce_and_withdraw(lab)
        except (OSError, subprocess.SubprocessError, TimeoutError) as exc:
            self.demo.say(False, f"the private network failed: {exc}")
        finally:
            if service is not None:
                service.send_signal(signal.SIGTERM)
                service.wait(STEP_TIMEOUT_S)
            self.usb.close()
            lab.down()
            subprocess.run(["rm", "-rf", str(lab.root)], check=False)

    def _start(self, lab: Lab) -> subprocess.Popen[bytes]:
        config = self.root / "config.toml"
        config.write_text(
            "[daemon]\n"
            f'control_socket = "{self.socket}"\nlog_file = "{self.log_file}"\n'
            f'state_dir = "{self.root / "state"}"\nevent_source = "none"\n'
            f'sysfs = "{self.root / "sys"}"\ndevfs = "{self.root / "dev"}"\n'
            'bind = ["::"]\nmdns = "avahi"\nlocation = "the demo\'s private network"\n\n'
            f'[[printer]]\nname = "{NAME}"\nmatch = "3f0/4117/*"\nfirmware = "none"\n',
            encoding="utf-8")
        assert lab.srv is not None
        output = (self.root / "service.stderr").open("wb")
        service = subprocess.Popen(
            lab.srv.argv([sys.executable, "-m", "supervisor", "run", "--config", str(config)]),
            stdin=subprocess.DEVNULL, stdout=output, stderr=output)
        wait_until(lambda: self._logged("mdns_responder") or service.poll() is not None)
        return service

    def _announce_and_withdraw(self, lab: Lab) -> None:
        name = f"HP LaserJet 1018 @ {self.HOST}"
        for env in self.usb.plug():
            request(str(self.socket), {"v": 1, "cmd": "notify", "event": dict(env)})
        print("  the printer is switched on; on the client host:\n"
              "  $ avahi-browse -rpt _pdl-datastream._tcp", flush=True)
        found = wait_until(lambda: bool(lab.resolved(name)))
        for record in lab.resolved(name)[:1]:
            print(f"      name {name!r}, host {record[6]}, port {record[8]}")
            # avahi-browse lists the TXT strings last first
            for text in reversed(record[9].strip('"').split('" "')):
                print(f"        {text}")
        self.demo.say(found, "announced, with the make and model CUPS picks a driver by")
        for env in self.usb.unplug():
            request(str(self.socket), {"v": 1, "cmd": "notify", "event": dict(env)})
        gone = wait_until(lambda: lab.withdrawn(name))
        self.demo.say(gone, "switched off: withdrawn; the client host no longer lists it")

    def _logged(self, event: str) -> bool:
        return logged(self.log_file, event)


def logged(log_file: Path, event: str) -> bool:
    """Whether the service's JSON log has an `event` line yet."""
    return log_file.exists() and any(
        (record := parse_record(line)) and record.get("event") == event
        for line in read_lines(log_file))


def run_demo() -> int:
    """Play the demo in a fresh temporary directory; 0 when every step worked."""
    with tempfile.TemporaryDirectory(prefix="printer-supervisor-demo-") as tmp:
        return Demo(Path(tmp)).play()
