"""Discovery on OpenWrt: what the service hands umdns (its file, its ubus calls), and life
without any responder. umdns cannot run here: a recording stand-in answers for `ubus`, and
snapshots the file at every `ubus call umdns reload`, which is when umdns reads it."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from harness import ServiceThread, Ubus, free_port, send_job, wait_until

from supervisor.core.announce import Announcement, Subject, printer_uuid
from supervisor.lab.virtual import VirtualUsbPrinter
from supervisor.publish import announcer
from supervisor.publish.umdns import service_id

StartService = Callable[..., ServiceThread]
HOST = socket.gethostname()
LOCAL_ONLY = ["127.0.0.0/8"]  # listening on 0.0.0.0 (loopback is never announced): local jobs


def start(start_service: StartService, umdns_dir: Path, printers: list[dict[str, object]],
          **daemon: object) -> ServiceThread:
    defaults: dict[str, object] = {"mdns": "umdns", "bind": ["0.0.0.0"]}
    printers = [{"firmware": "none", "allow": LOCAL_ONLY, **p} for p in printers]
    return start_service(printers, umdns_dir=umdns_dir, **{**defaults, **daemon})


def test_a_ready_printer_is_handed_to_umdns_and_taken_back(
        start_service: StartService, ubus: Ubus, umdns_dir: Path,
        make_usb: Callable[..., VirtualUsbPrinter]) -> None:
    usb = make_usb()
    usb.plug()
    port = free_port()
    service = start(start_service, umdns_dir, [{"name": "lj", "match": "3f0/4117/*",
                                                "port": port}], location="hall")
    service.log.wait_for("mdns_announced", printer="lj")
    name = f"HP LaserJet 1018 @ {HOST}"
    entry = {"service": "_pdl-datastream._tcp.local", "port": port, "instance": name,
             "txt": ["txtvers=1", "qtotal=1", "rp=?snmp=false", "ty=HP LaserJet 1018",
                     "product=(HP LaserJet 1018)", "usb_MFG=Hewlett-Packard",
                     "usb_MDL=HP LaserJet 1018", "usb_CMD=ACL", "note=hall", "priority=50",
                     f"UUID={_uuid('03f0:4117:CNB1234567')}"]}
    document = json.loads((umdns_dir / "printer-supervisor.json").read_text())
    assert list(document.values()) == [entry]
    (key,) = document
    assert key.startswith("printer-supervisor_lj_")
    assert ubus.calls() == ["-t 5 list umdns", "-t 5 call umdns reload"]
    assert ubus.files() == [document]
    assert not list(umdns_dir.glob(".*")), "no temporary file left behind"
    status = service.status()
    assert status["daemon"]["mdns"] == "umdns" and status["printers"][0]["mdns"] == name

    for env in usb.unplug():
        service.notify(env)
    service.log.wait_for("mdns_withdrawn", printer="lj", reason="no longer ready")
    assert not (umdns_dir / "printer-supervisor.json").exists()
    assert ubus.files() == [document, None]
    assert service.status("lj")["mdns"] is None


def test_only_printers_that_can_print_are_announced(
        start_service: StartService, ubus: Ubus, umdns_dir: Path,
        make_usb: Callable[..., VirtualUsbPrinter]) -> None:
    needs_firmware = make_usb(port_path="2-1", lp="lp0", serial="FW1")
    quiet = make_usb(port_path="2-2", lp="lp1", serial="QUIET2")
    blocked = make_usb(port_path="2-3", lp="lp2", serial="BUSY3")
    fine = make_usb(port_path="2-4", lp="lp3", serial="FINE4")
    for usb in (needs_firmware, quiet, blocked, fine):
        usb.plug()
    taken = socket.socket()
    taken.bind(("0.0.0.0", 0))
    taken.listen()
    service = start(start_service, umdns_dir, [
        {"name": "nofw", "serial": "FW1", "firmware": "auto"},  # sihp1018.dl is not there
        {"name": "quiet", "serial": "QUIET2", "mdns": False},
        {"name": "blocked", "serial": "BUSY3", "port": taken.getsockname()[1]},
        {"name": "fine", "serial": "FINE4", "mdns_name": "Fine"},
    ])
    try:
        service.log.wait_for("listener_failed", printer="blocked")
        service.log.wait_for("mdns_announced", printer="fine")
        assert service.wait_state("nofw", "firmware-needed")
        assert service.status("quiet")["state"] == "ready"
        assert _instances(umdns_dir) == ["Fine"]
    finally:
        taken.close()
    service.log.wait_for("mdns_announced", printer="blocked", timeout_s=30)
    assert sorted(_instances(umdns_dir)) == ["Fine", f"HP LaserJet 1018 @ {HOST}"]
    assert {e["printer"] for e in service.log.events("mdns_announced")} == {"fine", "blocked"}


def test_a_reload_renames_without_restarting_the_printer(
        start_service: StartService, ubus: Ubus, umdns_dir: Path,
        make_usb: Callable[..., VirtualUsbPrinter]) -> None:
    make_usb().plug()
    service = start(start_service, umdns_dir, [{"name": "lj", "match": "3f0/4117/*",
                                                "mdns_name": "Before"}])
    service.log.wait_for("mdns_announced", name="Before")
    before = json.loads((umdns_dir / "printer-supervisor.json").read_text())
    text = service.config.read_text()
    service.config.write_text(text.replace('mdns_name = "Before"', 'mdns_name = "After"'))
    service.reload()
    service.log.wait_for("mdns_announced", name="After")
    after = json.loads((umdns_dir / "printer-supervisor.json").read_text())
    assert [e["instance"] for e in after.values()] == ["After"]
    assert set(after).isdisjoint(before), "a new id: umdns re-announces only new ids"
    reloaded = service.log.wait_for("config_reloaded")
    assert reloaded["unchanged"] == ["lj"] and reloaded["changed"] == []
    assert service.log.events("listener_stopped") == []
    assert service.log.events("mdns_withdrawn", name="Before", reason="changed")


def test_stopping_removes_the_file_and_a_stale_one_is_replaced_at_start(
        start_service: StartService, ubus: Ubus, umdns_dir: Path,
        make_usb: Callable[..., VirtualUsbPrinter]) -> None:
    stale = umdns_dir / "printer-supervisor.json"
    stale.write_text('{"printer-supervisor_gone_0": {"service": "_pdl-datastream._tcp.local", '
                     '"port": 9100, "instance": "Killed earlier", "txt": ["txtvers=1"]}}')
    make_usb().plug()
    service = start(start_service, umdns_dir, [{"name": "lj", "match": "3f0/4117/*"}])
    service.log.wait_for("mdns_announced")
    assert "Killed earlier" not in stale.read_text()
    service.stop()
    assert not stale.exists()
    assert ubus.calls()[-1] == "-t 5 call umdns reload"
    assert ubus.files()[-1] is None
    assert service.log.events("mdns_withdrawn", printer="lj", reason="service stopping")


def test_umdns_is_looked_for_when_a_printer_comes_on_a_reload_and_hourly_never_polled(
        start_service: StartService, ubus: Ubus, umdns_dir: Path,
        make_usb: Callable[..., VirtualUsbPrinter]) -> None:
    """umdns cannot say when it comes: it is looked for again when a printer becomes ready (not
    for a job), on a reload, and otherwise after an hour, with no timer sooner than that."""
    ubus.up.unlink()  # umdns is not running (not installed, or not yet)
    first = make_usb(port_path="2-1", lp="lp0", serial="FIRST1")
    first.plug()
    port = free_port()
    started = time.monotonic()
    service = start(start_service, umdns_dir, [{"name": "first", "serial": "FIRST1",
                                                "port": port},
                                               {"name": "second", "serial": "SECOND2"}],
                    mdns="auto")
    owner = service.service
    assert owner is not None
    finder = owner.announcer

    def hour_away() -> bool:
        return all(due - started >= 3600 for due in service.timers())

    service.log.wait_for("mdns_unavailable")
    wait_until(hour_away, what="every timer an hour away")
    assert finder.retry_s == announcer.RETRY_MAX_S == 3600
    searched = finder.searches  # 1, or 2 had the first search come before the port listened
    assert searched <= 2

    send_job(port, b"a job changes states, not what is announced")
    service.log.wait_for("job_finished")
    wait_until(hour_away, what="every timer an hour away")
    assert finder.searches == searched

    second = make_usb(port_path="2-2", lp="lp1", serial="SECOND2")
    for env in second.plug():
        service.notify(env)
    service.wait_state("second", "ready")
    wait_until(lambda: ubus.calls().count("-t 5 list umdns") == searched + 1,
               what="a search for the new printer")
    wait_until(hour_away, what="every timer an hour away again")
    assert finder.searches == searched + 1
    (unavailable,) = service.log.events("mdns_unavailable")  # said once
    assert any("umdns is not running" in t for t in unavailable["tried"])
    assert any(t.startswith("avahi: no system bus") for t in unavailable["tried"])
    assert service.status()["daemon"]["mdns"] == "unavailable"

    ubus.up.touch()  # umdns started: a reload tells the service at once
    service.reload()
    service.log.wait_for("mdns_announced", printer="first")
    service.log.wait_for("mdns_announced", printer="second")
    assert finder.searches == searched + 2
    assert service.status()["daemon"]["mdns"] == "umdns"


def test_triggers_in_a_row_make_one_search_trigger_min_s_after_the_last(
        start_service: StartService, ubus: Ubus, umdns_dir: Path, monkeypatch: pytest.MonkeyPatch,
        make_usb: Callable[..., VirtualUsbPrinter]) -> None:
    """Printers plugged one after another and reloads in a row wait for one search, due
    TRIGGER_MIN_S after the last one (made long here, so that it is seen waiting)."""
    monkeypatch.setattr(announcer, "TRIGGER_MIN_S", 1000.0, raising=False)
    ubus.up.unlink()
    started = time.monotonic()
    service = start(start_service, umdns_dir,
                    [{"name": f"p{n}", "serial": f"MANY{n}"} for n in range(3)], mdns="umdns")
    owner = service.service
    assert owner is not None
    service.log.wait_for("mdns_unavailable")
    for n in range(3):
        usb = make_usb(port_path=f"2-{n + 1}", lp=f"lp{n}", serial=f"MANY{n}")
        for env in usb.plug():
            service.notify(env)
        service.reload()
    service.log.wait_for("config_reloaded", count=3)
    service.log.wait_for("listener_started", count=3)

    def search() -> list[float]:  # the pending search: after TRIGGER_MIN_S, before the hour
        # (other timers may be pending meanwhile: a node awaited after the plugs is looked at
        # every 0.1 s for a few seconds, the rescan settles for 10 ms; none is that far away)
        return [due - started for due in service.timers() if 900 < due - started < 3600]

    (due,) = wait_until(search, what="a search waiting for TRIGGER_MIN_S")
    assert 1000 <= due < 1000 + (time.monotonic() - started)
    assert owner.announcer.searches == 1
    assert ubus.calls() == ["-t 5 list umdns"]


def test_without_any_responder_it_prints_and_says_so_once(
        start_service: StartService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        make_usb: Callable[..., VirtualUsbPrinter]) -> None:
    monkeypatch.setattr(announcer, "RETRY_FIRST_S", 0.05)
    monkeypatch.setattr(announcer, "RETRY_MAX_S", 0.1)
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", f"unix:path={tmp_path}/no-bus")
    usb = make_usb()
    usb.plug()
    port = free_port()
    service = start(start_service, tmp_path / "no-umdns",
                    [{"name": "lj", "match": "3f0/4117/*", "port": port}], mdns="auto")
    owner = service.service
    assert owner is not None
    wait_until(lambda: owner.announcer.searches >= 5, what="several searches")
    assert send_job(port, b"printed all the same") == b""
    assert usb.printer is not None
    assert usb.printer.wait_for_bytes(20) == b"printed all the same"
    (unavailable,) = service.log.events("mdns_unavailable")
    assert unavailable["tried"] == [f"avahi: no system bus at {tmp_path}/no-bus",
                                    "umdns: no ubus command (not OpenWrt?)"]
    assert service.log.events("mdns_announced") == []
    assert service.status()["daemon"]["mdns"] == "unavailable"


def test_mdns_off_looks_for_nothing(start_service: StartService, ubus: Ubus, umdns_dir: Path,
                                    make_usb: Callable[..., VirtualUsbPrinter]) -> None:
    make_usb().plug()
    service = start(start_service, umdns_dir, [{"name": "lj", "match": "3f0/4117/*"}],
                    mdns="off")
    service.wait_state("lj", "ready")
    assert service.status()["daemon"]["mdns"] == "off"
    service.stop()
    assert ubus.calls() == []
    assert service.log.events("mdns_unavailable") == []


def _instances(umdns_dir: Path) -> list[str]:
    path = umdns_dir / "printer-supervisor.json"
    if not path.exists():
        return []
    return [entry["instance"] for entry in json.loads(path.read_text()).values()]


def _uuid(identity: str) -> str | None:
    return printer_uuid(Subject(printer="x", port=1, identity=identity, serial="x"))


def test_service_ids_change_with_the_record() -> None:
    one = Announcement("lj", "A", 9100, ("txtvers=1",))
    assert service_id(one) == service_id(Announcement("lj", "A", 9100, ("txtvers=1",)))
    assert service_id(one) != service_id(Announcement("lj", "B", 9100, ("txtvers=1",)))
    assert service_id(one).startswith("printer-supervisor_lj_")


def test_a_reload_withdraws_removed_announces_added_and_leaves_the_rest(
        start_service: StartService, ubus: Ubus, umdns_dir: Path,
        make_usb: Callable[..., VirtualUsbPrinter]) -> None:
    for n, serial in enumerate(("AAA", "BBB", "CCC", "DDD")):
        make_usb(port_path=f"2-{n + 1}", lp=f"lp{n}", serial=serial).plug()
    service = start(start_service, umdns_dir, [
        {"name": "a", "serial": "AAA", "mdns_name": "A", "location": "here"},
        {"name": "b", "serial": "BBB", "mdns_name": "B"},
        {"name": "d", "serial": "DDD", "mdns_name": "D"}], auto=False)
    for name in "abd":
        service.log.wait_for("mdns_announced", printer=name)
    text = service.config.read_text()
    blocks = text.split("\n\n")
    a, b, d = blocks[1], blocks[2], blocks[3]
    c = b.replace('"b"', '"c"').replace("BBB", "CCC").replace('"B"', '"C"')
    service.config.write_text("\n\n".join(
        [blocks[0], a.replace('"here"', '"there"'), c, d]) + "\n")
    before = len(service.log.events())
    service.reload()
    service.log.wait_for("mdns_announced", printer="c")
    service.log.wait_for("mdns_announced", count=2, printer="a")
    after = [e for e in service.log.events()[before:] if e["event"].startswith("mdns_")]
    assert {(e["event"], e["printer"]) for e in after} == {
        ("mdns_withdrawn", "a"), ("mdns_announced", "a"), ("mdns_withdrawn", "b"),
        ("mdns_announced", "c")}
    assert sorted(_instances(umdns_dir)) == ["A", "C", "D"]
    document = json.loads((umdns_dir / "printer-supervisor.json").read_text())
    assert "note=there" in next(e for e in document.values() if e["instance"] == "A")["txt"]
