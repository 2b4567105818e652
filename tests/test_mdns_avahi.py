"""Discovery through a real avahi-daemon, seen from a second host with avahi and CUPS.

The service runs in the lab's `srv` namespace (its own system bus and avahi); `cli` browses
with avahi-browse and lists and prints with its own cupsd (CUPS ignores services its own avahi
publishes, hence two hosts). Nothing leaves the veth pair between them.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import pytest
from harness import ON_CI, Log, ServiceThread, request, service_process, wait_until

from supervisor.lab.netlab import BROWSE_S, PACKAGES, SERVICE, Lab, missing_tools, unescape
from supervisor.lab.virtual import FakeSysfs, VirtualUsbPrinter

pytestmark = pytest.mark.timeout(240)
HOST = "pslab-srv"  # srv's avahi host name
MODEL = "HP LaserJet 1018"


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    problem = None
    if os.geteuid() != 0:
        problem = "the mDNS lab needs root (network and mount namespaces)"
    elif missing := missing_tools():
        problem = f"the mDNS lab needs {' '.join(missing)}: apt-get install {PACKAGES}"
    if problem:
        if ON_CI:
            pytest.fail(problem + " (.ci/run installs them; on CI no peer test may skip)")
        pytest.skip(problem)
    root = Path(tempfile.mkdtemp(prefix="pslab-"))
    lab = Lab(root)
    try:
        yield lab.up()
    finally:
        lab.down()
        subprocess.run(["rm", "-rf", str(root)], check=False)


class Stage:
    """One test's service in `srv`, with virtual USB printers under its own trees."""

    def __init__(self, lab: Lab, root: Path) -> None:
        self.lab, self.root = lab, root
        self.sysfs = FakeSysfs(root / "sys")
        self.log = Log(root / "events.jsonl")
        self.usb: list[VirtualUsbPrinter] = []

    def printer(self, port_path: str, serial: str, lp: str) -> VirtualUsbPrinter:
        usb = VirtualUsbPrinter(self.sysfs, self.root / "dev", port_path=port_path,
                                serial=serial, lp=lp)
        self.usb.append(usb)
        return usb

    def notify(self, events: list[dict[str, str]]) -> None:
        for env in events:
            assert request(str(self.root / "control.sock"),
                           {"v": 1, "cmd": "notify", "event": env})["ok"] is True

    def status(self) -> dict[str, object]:
        return request(str(self.root / "control.sock"), {"v": 1, "cmd": "status"})

    def close(self) -> None:
        for usb in self.usb:
            usb.close()


@pytest.fixture
def stage(lab: Lab, tmp_path: Path) -> Iterator[Stage]:
    made = Stage(lab, tmp_path)
    yield made
    made.close()
    if lab.srv is not None and lab.srv.dbus_pid is None:  # a test that failed half-way
        lab.srv.start_bus()
    if lab.srv is not None and lab.srv.avahi is None:
        lab.srv.start_avahi()


@contextmanager
def serving(stage: Stage, printers: list[dict[str, object]],
            **daemon: object) -> Iterator[subprocess.Popen[bytes]]:
    """`supervisorctl run` in srv, listening on every address, announcing through avahi.

    The virtual LaserJets get no firmware here: a printer waiting for it is never announced.
    """
    assert stage.lab.srv is not None
    printers = [{"firmware": "none", **printer} for printer in printers]
    with service_process(stage.root, printers, prefix=stage.lab.srv.argv([]), bind=["::"],
                         mdns="avahi", **daemon) as proc:
        stage.log.wait_for("daemon_started")
        yield proc


def seen(lab: Lab, name: str) -> list[list[str]]:
    return lab.resolved(name)


def gone(lab: Lab, name: str) -> bool:
    return lab.withdrawn(name)


def txt_of(record: list[str]) -> list[str]:
    return [part.strip('"') for part in record[9].split('" "')]


SOCKET_WRAPPER = """#!/bin/sh
echo "$DEVICE_URI" > "{noted}"
exec /usr/lib/cups/backend/socket "$@"
"""


def cups_resolves(lab: Lab, root: Path, device_uri: str, job: Path) -> str:
    """The URI CUPS's dnssd backend resolves `device_uri` to, printing `job` through it as
    cupsd would run it: the backend execs $CUPS_SERVERBIN/backend/<scheme> with DEVICE_URI
    set to what it resolved; the one there notes it and runs CUPS's own socket backend."""
    assert lab.cli is not None
    backend = root / "serverbin" / "backend"
    backend.mkdir(parents=True)
    noted = root / "resolved-uri"
    (backend / "socket").write_text(SOCKET_WRAPPER.format(noted=noted), encoding="utf-8")
    (backend / "socket").chmod(0o755)
    lab.cli.run("/usr/lib/cups/backend/dnssd", "1", "root", "resolved", "1", "", str(job),
                timeout_s=60, env={**os.environ, "DEVICE_URI": device_uri,
                                   "CUPS_SERVERBIN": str(root / "serverbin")})
    return noted.read_text(encoding="utf-8").strip()


def stop(proc: subprocess.Popen[bytes], sig: signal.Signals = signal.SIGTERM) -> None:
    proc.send_signal(sig)
    proc.wait(timeout=30)


def test_a_plugged_printer_is_found_listed_printed_to_and_withdrawn(
        lab: Lab, stage: Stage) -> None:
    usb = stage.printer("2-1", "CNB1234567", "lp0")
    with serving(stage, [{"name": "laserjet", "match": "3f0/4117/*"}],
                 location="upstairs, by the door") as proc:
        stage.notify(usb.plug())
        name = f"{MODEL} @ {HOST}"
        record = wait_until(lambda: seen(lab, name), 20, f"{name} on cli")[0]
        announced = stage.log.wait_for("mdns_announced", printer="laserjet")
        ready = stage.log.wait_for("state_changed", printer="laserjet", to="ready")
        plug_to_announced = (datetime.fromisoformat(announced["timestamp"]) -
                             datetime.fromisoformat(ready["timestamp"])).total_seconds()
        print(f"plug (ready) to announced: {plug_to_announced:.2f} s")
        port = stage.status()["printers"][0]["port"]  # type: ignore[index]
        assert record[8] == str(port) and record[6] == f"{HOST}.local"
        txt = txt_of(record)
        assert "txtvers=1" in txt and "qtotal=1" in txt and "priority=50" in txt
        assert f"ty={MODEL}" in txt and f"product=({MODEL})" in txt
        assert "usb_MFG=Hewlett-Packard" in txt and f"usb_MDL={MODEL}" in txt
        assert "usb_CMD=ACL" in txt and "note=upstairs, by the door" in txt
        assert "rp=?snmp=false" in txt
        assert any(t.startswith("UUID=") for t in txt)
        status = stage.status()
        assert status["daemon"]["mdns"] == "avahi"  # type: ignore[index]
        assert status["printers"][0]["mdns"] == name  # type: ignore[index]

        uri = "dnssd://HP%20LaserJet%201018%20%40%20pslab-srv._pdl-datastream._tcp.local/"
        listing = wait_until(lambda: (out := lab.cups("lpinfo", "-l", "--include-schemes",
                                                     "dnssd", "-v", check=False).stdout)
                             and "MDL:HP LaserJet 1018" in out and out, 30,
                             "lpinfo to list the printer with its device ID")
        assert f"uri = {uri}?uuid=" in listing
        found = re.search(r"uri = (dnssd://HP\S+)", listing)
        assert found is not None
        device_uri = found.group(1)
        lab.cups("lpadmin", "-p", "found", "-E", "-v", device_uri)
        job = stage.root / "job.txt"
        body = b"found over mDNS \x00\x1b%-12345X byte-exact\n" * 50
        job.write_bytes(body)
        lab.cups("lp", "-d", "found", "-o", "raw", str(job))
        assert usb.printer is not None
        wait_until(lambda: usb.printer is not None and len(usb.printer.paper) >= len(body), 60,
                   "the job through the dnssd:// queue")
        assert usb.printer.paper == body
        # CUPS's own dnssd backend turns the queue's URI into the socket:// URI it prints
        # through: the TXT `rp` makes it skip the socket backend's SNMP queries (~4 s a job).
        assert cups_resolves(lab, stage.root, device_uri, job) == (
            f"socket://{HOST}.local:{port}/?snmp=false")
        wait_until(lambda: usb.printer is not None and len(usb.printer.paper) >= 2 * len(body),
                   60, "the job through CUPS's dnssd and socket backends")
        assert usb.printer.paper == body * 2

        stage.notify(usb.unplug())
        wait_until(lambda: gone(lab, name), 10, f"{name} withdrawn")
        withdrawn = stage.log.wait_for("mdns_withdrawn", printer="laserjet")
        assert withdrawn["name"] == name
        assert stage.status()["printers"][0]["mdns"] is None  # type: ignore[index]
        lab.cups("lpadmin", "-x", "found", check=False)
        stop(proc)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["stop", "SIGKILL"])
def test_the_service_going_away_withdraws_its_printers(lab: Lab, stage: Stage,
                                                        sig: signal.Signals) -> None:
    usb = stage.printer("2-1", f"SN{sig.value}", "lp0")
    usb.plug()
    name = f"Going {sig.name}"
    with serving(stage, [{"name": "lj", "match": "3f0/4117/*", "mdns_name": name}]) as proc:
        wait_until(lambda: seen(lab, name), 20, f"{name} on cli")
        stop(proc, sig)
    wait_until(lambda: gone(lab, name), 10, f"{name} withdrawn after {sig.name}")
    if sig == signal.SIGTERM:
        assert stage.log.events("mdns_withdrawn", name=name, reason="service stopping")


def test_two_printers_of_one_model_get_distinct_names(lab: Lab, stage: Stage) -> None:
    first, second = (stage.printer("2-1", "AAA1", "lp0"), stage.printer("2-2", "BBB2", "lp1"))
    first.plug()
    second.plug()
    with serving(stage, [{"name": "left", "serial": "AAA1"},
                         {"name": "right", "serial": "BBB2"}]):
        names = [f"{MODEL} (left) @ {HOST}", f"{MODEL} (right) @ {HOST}"]
        for name in names:
            wait_until(lambda name=name: seen(lab, name), 20, f"{name} on cli")
        ports = {p["name"]: p["port"] for p in stage.status()["printers"]}  # type: ignore
        assert seen(lab, names[0])[0][8] == str(ports["left"])
        assert seen(lab, names[1])[0][8] == str(ports["right"])


@pytest.mark.parametrize("holder", ["cli", "srv"], ids=["another-host", "same-host"])
def test_a_name_already_taken_is_resolved_and_logged(lab: Lab, stage: Stage,
                                                     holder: str) -> None:
    """Another host's record collides after probing (the group's StateChanged COLLISION);
    another program on this host is refused at once (AddService's CollisionError)."""
    host = lab.cli if holder == "cli" else lab.srv
    assert host is not None
    taken = f"Office Printer {holder}"
    squatter = host.spawn("avahi-publish-service", taken, SERVICE, "9999", "txtvers=1",
                          log=f"squatter-{holder}.log")
    try:
        wait_until(lambda: seen(lab, taken), 20, "the squatter's record")
        usb = stage.printer("2-1", "CLASH1", "lp0")
        usb.plug()
        with serving(stage, [{"name": "office", "match": "3f0/4117/*",
                              "mdns_name": taken}]):
            clash = stage.log.wait_for("mdns_collision", printer="office", timeout_s=20)
            assert clash["name"] == taken
            alternative = clash["alternative"]
            assert alternative != taken and alternative.startswith(taken)
            record = wait_until(lambda: seen(lab, alternative), 20, f"{alternative} on cli")[0]
            assert record[6] == f"{HOST}.local"
            wait_until(lambda: stage.status()["printers"][0]["mdns"] == alternative, 10,
                       "status to show the name in use")
            announced = stage.log.wait_for("mdns_announced", printer="office")
            assert announced["name"] == alternative
    finally:
        squatter.terminate()
        squatter.wait(10)


def test_announcements_come_back_after_avahi_restarts(lab: Lab, stage: Stage) -> None:
    assert lab.srv is not None
    usb = stage.printer("2-1", "RESTART1", "lp0")
    usb.plug()
    with serving(stage, [{"name": "phoenix", "match": "3f0/4117/*",
                          "mdns_name": "Phoenix"}]) as proc:
        wait_until(lambda: seen(lab, "Phoenix"), 20, "Phoenix on cli")
        lab.srv.stop_avahi()
        wait_until(lambda: gone(lab, "Phoenix"), 10, "Phoenix gone with avahi")
        stage.log.wait_for("mdns_unavailable")
        assert stage.status()["printers"][0]["mdns"] is None  # type: ignore[index]
        lab.srv.start_avahi()
        wait_until(lambda: seen(lab, "Phoenix"), 20, "Phoenix back after avahi's restart")
        stage.log.wait_for("mdns_announced", count=2, printer="phoenix")
        assert proc.poll() is None


def test_avahi_coming_later_is_heard_on_the_bus_not_polled(
        lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The service on a system bus without avahi-daemon: one search, then it waits on the bus's
    NameOwnerChanged with no timer at all; avahi starting is announced through it.

    The service runs in this process (its loop and counters in reach), on srv's bus through
    srv's mount namespace (/proc/PID/root); avahi announces on srv's link as ever."""
    assert lab.srv is not None
    bus = f"/proc/{lab.srv.holder.pid}/root/run/dbus/system_bus_socket"
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", f"unix:path={bus}")
    sysfs = FakeSysfs(tmp_path / "sys")
    usb = VirtualUsbPrinter(sysfs, tmp_path / "dev", port_path="2-1", serial="LATE1", lp="lp0")
    usb.plug()
    lab.srv.stop_avahi()
    started = time.monotonic()
    service = ServiceThread(tmp_path, [{"name": "late", "serial": "LATE1", "firmware": "none",
                                        "mdns_name": "Late Comer", "allow": ["127.0.0.0/8"]}],
                            bind=["::"], mdns="avahi")
    try:
        service.start()
        owner = service.service
        assert owner is not None
        unavailable = service.log.wait_for("mdns_unavailable")
        assert unavailable["tried"][0].startswith("avahi: avahi-daemon is not on the system bus")
        wait_until(lambda: all(due - started >= 3600 for due in service.timers()),
                   what="no timer sooner than the hour")
        assert owner.announcer.searches == 1 and owner.announcer.retry_s is None
        monkeypatch.delenv("DBUS_SYSTEM_BUS_ADDRESS")  # avahi inherits it, and is not root
        lab.srv.start_avahi()
        service.log.wait_for("mdns_announced", printer="late", timeout_s=20)
        assert owner.announcer.searches == 1, "found through the signal, not a search"
        assert service.status()["daemon"]["mdns"] == "avahi"
        wait_until(lambda: seen(lab, "Late Comer"), 20, "Late Comer on cli")
    finally:
        service.stop()
        usb.close()
        if lab.srv.avahi is None:
            monkeypatch.delenv("DBUS_SYSTEM_BUS_ADDRESS", raising=False)
            lab.srv.start_avahi()


def test_not_announced_while_its_port_is_taken_or_mdns_is_off(lab: Lab, stage: Stage) -> None:
    assert lab.srv is not None
    quiet, busy = stage.printer("2-1", "QUIET1", "lp0"), stage.printer("2-2", "BUSY2", "lp1")
    quiet.plug()
    busy.plug()
    blocker = lab.srv.spawn("python3", "-c", "import socket,time; s=socket.socket(); "
                            "s.bind(('0.0.0.0', 9188)); s.listen(); print('listening', "
                            "flush=True); time.sleep(600)", log="blocker.log")
    wait_until(lambda: b"listening" in (lab.srv.dir / "blocker.log").read_bytes(), 10,
               "the port to be taken")
    with serving(stage, [{"name": "quiet", "serial": "QUIET1", "mdns": False},
                         {"name": "busy", "serial": "BUSY2", "port": 9188, "mdns_name": "Busy"}],
                 base_port=9170):
        stage.log.wait_for("listener_failed", printer="busy")
        stage.log.wait_for("listener_started", printer="quiet")
        blocker.kill()
        blocker.wait()
        wait_until(lambda: seen(lab, "Busy"), 30, "Busy once its port is free")
        names = wait_until(lab.listed, 30, "a browse that finishes")
        assert not any(n.startswith(MODEL) for n in names), names
        assert [e["printer"] for e in stage.log.events("mdns_announced")] == ["busy"]


def test_announcements_come_back_after_the_system_bus_restarts(lab: Lab, stage: Stage) -> None:
    assert lab.srv is not None
    usb = stage.printer("2-1", "BUS1", "lp0")
    usb.plug()
    with serving(stage, [{"name": "bus", "match": "3f0/4117/*", "mdns_name": "Bus Rider"}]) as proc:
        wait_until(lambda: seen(lab, "Bus Rider"), 20, "Bus Rider on cli")
        lab.srv.stop_bus()
        unavailable = stage.log.wait_for("mdns_unavailable")
        assert "system bus closed the connection" in unavailable["tried"][0]
        assert stage.log.events("mdns_withdrawn", printer="bus")
        wait_until(lambda: gone(lab, "Bus Rider"), 10, "Bus Rider gone with the bus")
        lab.srv.start_bus()
        lab.srv.start_avahi()
        wait_until(lambda: seen(lab, "Bus Rider"), 30, "Bus Rider back once bus and avahi are")
        stage.log.wait_for("mdns_announced", count=2, printer="bus")
        assert proc.poll() is None
        assert stage.status()["daemon"]["mdns"] == "avahi"  # type: ignore[index]


STUCK_BROWSE = """#!/bin/sh
# What avahi-browse -rptk printed on a loaded machine before it hung for 30 s: one service
# resolved, another (withdrawn meanwhile) still being resolved.
printf '%s\\n' '+;veth-cli;IPv4;Stuck;_pdl-datastream._tcp;local' \\
  '=;veth-cli;IPv4;Found;_pdl-datastream._tcp;local;pslab-srv.local;169.254.53.1;9100;"txtvers=1"'
exec sleep 600
"""


def test_a_browse_that_hangs_is_cut_at_its_deadline_and_keeps_what_it_printed(
        lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The lab's view from cli never waits on avahi-browse past BROWSE_S: what it printed is
    kept (a record printed is true), a listing cut short says nothing of what is absent, and
    the waits above poll again rather than fail."""
    stub = tmp_path / "bin" / "avahi-browse"
    stub.parent.mkdir()
    stub.write_text(STUCK_BROWSE, encoding="utf-8")
    stub.chmod(0o755)
    monkeypatch.setenv("PATH", f"{stub.parent}:{os.environ['PATH']}")
    started = time.monotonic()
    assert [unescape(r[3]) for r in lab.resolved("Found")] == ["Found"]
    assert time.monotonic() - started < BROWSE_S + 5
    assert lab.listed(timeout_s=1.0) is None
    assert not lab.withdrawn("Stuck")  # not known to be gone: a wait for that polls again
    assert time.monotonic() - started < 2 * BROWSE_S + 10
