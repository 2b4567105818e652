"""A private two-host network for discovery: namespaces joined by a veth pair (demo, tests).

Each host has its own system bus and avahi-daemon (tmpfs over /run/dbus and /run/avahi-daemon,
an empty directory over /etc/avahi/services), so nothing touches the machine's own daemons and
no packet reaches a real LAN: the only link is veth-srv <-> veth-cli. The service under test
runs in `srv`; `cli` browses and runs a private cupsd, because CUPS's dnssd backend ignores
services its own avahi publishes. Needs root and: unshare nsenter ip dbus-daemon avahi-daemon
avahi-browse avahi-publish-service cupsd lpinfo lpadmin lp lpstat (and libnss-mdns, so that
cli's CUPS resolves srv's host name).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

TOOLS = ("unshare", "nsenter", "ip", "dbus-daemon", "avahi-daemon", "avahi-browse",
         "avahi-publish-service")
CUPS_TOOLS = ("cupsd", "lpinfo", "lpadmin", "lp", "lpstat")
PACKAGES = "avahi-daemon avahi-utils dbus libnss-mdns cups cups-client iproute2"
SERVICE = "_pdl-datastream._tcp"
CUPS_PORT = 8631
START_S = 20.0
#: One avahi-browse run, at most. `-r` can hang resolving a service withdrawn meanwhile (30 s
#: seen on a loaded machine); callers poll until what they wait for shows, so a run cut short
#: costs one try, not the test.
BROWSE_S = 8.0


def missing_tools(*, cups: bool = True) -> list[str]:
    return [tool for tool in (*TOOLS, *(CUPS_TOOLS if cups else ()))
            if shutil.which(tool) is None]


def wait_for(condition: Callable[[], object], timeout_s: float, what: str) -> object:
    deadline = time.monotonic() + timeout_s
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"lab: timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.1)


class Host:
    """One namespace "host": its holder process, bus, avahi; commands run inside it."""

    def __init__(self, lab: Path, name: str, address: str) -> None:
        self.name = name
        self.address = address
        self.dir = lab / name
        self.dir.mkdir(parents=True)
        self.host_name = f"pslab-{name}"
        self.procs: list[subprocess.Popen[bytes]] = []
        # No --fork: unshare execs sleep inside the new namespaces; its pid names them.
        self.holder = subprocess.Popen(["unshare", "--net", "--mount", "--propagation",
                                        "private", "sleep", "infinity"])
        self.avahi: subprocess.Popen[bytes] | None = None
        self.dbus_pid: int | None = None

    def argv(self, command: Sequence[str]) -> list[str]:
        return ["nsenter", "-t", str(self.holder.pid), "-n", "-m", *command]

    def run(self, *command: str, check: bool = True, timeout_s: float = 30.0,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.argv(command), capture_output=True, text=True, check=check,
                              timeout=timeout_s, env=env)

    def spawn(self, *command: str, log: str, env: dict[str, str] | None = None,
              ) -> subprocess.Popen[bytes]:
        with open(self.dir / log, "ab") as out:
            proc = subprocess.Popen(self.argv(command), stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, env=env)
        self.procs.append(proc)
        return proc

    def prepare(self) -> None:
        services = self.dir / "services"
        services.mkdir()
        self.run("sh", "-c", "sysctl -qw net.ipv6.conf.all.accept_dad=0 "
                 "net.ipv6.conf.default.accept_dad=0 && ip link set lo up")
        self.run("sh", "-c", "mkdir -p /run/dbus /run/avahi-daemon && "
                 "mount -t tmpfs -o mode=0755 pslab /run/dbus && "
                 "mount -t tmpfs -o mode=0755 pslab /run/avahi-daemon && "
                 f"mount --bind '{services}' /etc/avahi/services")
        (self.dir / "avahi-daemon.conf").write_text(
            f"[server]\nhost-name={self.host_name}\ndomain-name=local\nuse-ipv4=yes\n"
            f"use-ipv6=yes\nallow-interfaces=veth-{self.name}\nenable-dbus=yes\n"
            "ratelimit-interval-usec=1000000\nratelimit-burst=1000\n"
            "[wide-area]\nenable-wide-area=no\n"
            "[publish]\npublish-hinfo=no\npublish-workstation=no\n", encoding="utf-8")

    def start_bus(self) -> None:
        self.run("rm", "-f", "/run/dbus/pid")  # left by a bus that was killed
        out = self.run("dbus-daemon", "--system", "--fork", "--print-pid").stdout
        self.dbus_pid = int(out.split()[0])

    def stop_bus(self) -> None:
        """Kill the system bus (avahi-daemon exits with it)."""
        if self.dbus_pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.dbus_pid, signal.SIGKILL)
            self.dbus_pid = None
        if self.avahi is not None:
            self.avahi.wait(10)
            self.avahi = None

    def start_avahi(self) -> None:
        log = self.dir / "avahi.log"
        start = log.stat().st_size if log.exists() else 0
        self.avahi = self.spawn("avahi-daemon", "-f", str(self.dir / "avahi-daemon.conf"),
                                log="avahi.log")
        wait_for(lambda: b"Server startup complete" in log.read_bytes()[start:], START_S,
                 f"avahi-daemon on {self.name}")

    def stop_avahi(self) -> None:
        if self.avahi is not None and self.avahi.poll() is None:
            self.avahi.terminate()
            self.avahi.wait(10)
        self.avahi = None

    def down(self) -> None:
        for proc in reversed(self.procs):  # avahi needs its bus until it is gone
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self.dbus_pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.dbus_pid, signal.SIGTERM)
        self.holder.kill()
        self.holder.wait()


class Lab:
    """Two hosts, `srv` (169.254.53.1) and `cli` (169.254.53.2), on one veth link."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.srv: Host | None = None
        self.cli: Host | None = None

    def up(self, *, cups: bool = True) -> Lab:
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o755)  # cupsd (user lp) reads its files below
        self.srv = Host(self.root, "srv", "169.254.53.1/16")
        self.cli = Host(self.root, "cli", "169.254.53.2/16")
        for host in (self.srv, self.cli):
            host.prepare()
        self.srv.run("ip", "link", "add", "veth-srv", "type", "veth", "peer", "name", "veth-cli")
        self.srv.run("ip", "link", "set", "veth-cli", "netns", str(self.cli.holder.pid))
        for host in (self.srv, self.cli):
            host.run("sh", "-c", f"ip addr add {host.address} dev veth-{host.name} && "
                     f"ip link set veth-{host.name} up")
            host.start_bus()
            host.start_avahi()
        if cups:
            self._start_cupsd()
        return self

    def down(self) -> None:
        for host in (self.cli, self.srv):
            if host is not None:
                host.down()

    # -- the client's view ------------------------------------------------------------------
    def browse(self, timeout_s: float = BROWSE_S) -> list[list[str]]:
        """Resolved records (`=` lines of avahi-browse -p, split) seen from cli. A run that
        does not finish within `timeout_s` is cut there and gives what it printed so far:
        each record printed is true, but some may be missing (poll for what you expect)."""
        lines, _ = self._avahi_browse("-rptk", timeout_s)
        return [line for line in lines if line[0] == "="]

    def resolved(self, name: str) -> list[list[str]]:
        """The resolved records of one instance name (avahi-browse escapes it; we compare
        the unescaped form)."""
        return [r for r in self.browse() if unescape(r[3]) == name]

    def listed(self, timeout_s: float = BROWSE_S) -> set[str] | None:
        """The instance names cli can browse (nothing resolved: `-ptk`), unescaped; None if
        avahi-browse did not finish in time, as nothing can then be said of what is absent."""
        lines, complete = self._avahi_browse("-ptk", timeout_s)
        if not complete:
            return None
        seen: set[tuple[str, ...]] = set()  # (interface, protocol, name): one per link
        for line in lines:
            if len(line) > 3:
                (seen.add if line[0] == "+" else seen.discard)(tuple(line[1:4]))
        return {unescape(name) for _, _, name in seen}

    def withdrawn(self, name: str) -> bool:
        """Whether `name` is gone from cli's view: absent from a browse that finished."""
        names = self.listed()
        return names is not None and name not in names

    def _avahi_browse(self, flags: str, timeout_s: float) -> tuple[list[list[str]], bool]:
        """avahi-browse's lines (split at `;`) and whether it finished within `timeout_s`;
        cut at the deadline, it gives the whole lines it printed (it flushes each one)."""
        assert self.cli is not None
        try:
            out = self.cli.run("avahi-browse", flags, SERVICE, check=False,
                               timeout_s=timeout_s).stdout
            complete = True
        except subprocess.TimeoutExpired as exc:  # run() killed it; stdout is bytes here
            raw = exc.stdout if isinstance(exc.stdout, bytes) else b""
            out = raw[:raw.rfind(b"\n") + 1].decode("utf-8", errors="replace")
            complete = False
        return [line.split(";") for line in out.splitlines() if line], complete

    def cups(self, *command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        assert self.cli is not None
        env = {**os.environ, "CUPS_SERVER": f"127.0.0.1:{CUPS_PORT}"}
        return self.cli.run(*command, check=check, env=env)

    def _start_cupsd(self) -> None:
        assert self.cli is not None
        top = self.cli.dir / "cups"
        for sub in ("etc/ppd", "etc/ssl", "spool/tmp", "cache", "run", "log"):
            (top / sub).mkdir(parents=True)
        (top / "etc" / "cups-files.conf").write_text(
            f"ServerRoot {top}/etc\nRequestRoot {top}/spool\nTempDir {top}/spool/tmp\n"
            f"CacheDir {top}/cache\nStateDir {top}/run\nServerBin /usr/lib/cups\n"
            f"DataDir /usr/share/cups\nAccessLog {top}/log/access_log\n"
            f"ErrorLog {top}/log/error_log\nPageLog {top}/log/page_log\n"
            "User lp\nGroup lp\nSystemGroup root\nSandboxing Relaxed\n", encoding="utf-8")
        (top / "etc" / "cupsd.conf").write_text(
            f"Listen 127.0.0.1:{CUPS_PORT}\nListen {top}/run/cups.sock\nLogLevel debug\n"
            "WebInterface No\nBrowsing No\nDefaultAuthType None\n"
            "<Location />\n  Order allow,deny\n  Allow all\n</Location>\n"
            "<Location /admin>\n  Order allow,deny\n  Allow all\n</Location>\n"
            "<Policy default>\n  <Limit All>\n    Order deny,allow\n  </Limit>\n</Policy>\n",
            encoding="utf-8")
        for path in (self.cli.dir, top, *top.rglob("*")):
            os.chmod(path, 0o775 if path.is_dir() else 0o664)
        subprocess.run(["chown", "-R", "root:lp", str(top)], check=True)
        self.cli.spawn("cupsd", "-f", "-c", str(top / "etc" / "cupsd.conf"), "-s",
                       str(top / "etc" / "cups-files.conf"), log="cupsd.log")
        # `lpstat -r` exits 0 even when the scheduler is not running: read what it says.
        wait_for(lambda: self.cups("lpstat", "-r", check=False).stdout.strip()
                 == "scheduler is running", START_S, "cupsd on cli")


def unescape(text: str) -> str:
    r"""avahi-browse -p writes a name's special bytes as \DDD (decimal) and \. for a dot."""
    out = bytearray()
    i, raw = 0, text.encode("utf-8")
    while i < len(raw):
        if raw[i:i + 1] == b"\\" and raw[i + 1:i + 4].isdigit():
            out.append(int(raw[i + 1:i + 4]))
            i += 4
        elif raw[i:i + 1] == b"\\" and i + 1 < len(raw):
            out.append(raw[i + 1])
            i += 2
        else:
            out.append(raw[i])
            i += 1
    return out.decode("utf-8", errors="replace")
