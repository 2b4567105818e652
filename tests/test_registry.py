"""The registry as tables: snapshots in, Present/Gone decisions and stable ports out."""

from __future__ import annotations

from pathlib import Path

import pytest

from supervisor.config.tomlform import parse_settings
from supervisor.core.devices import Snapshot, UsbPrinter
from supervisor.core.ports import PortBook, PortsExhausted
from supervisor.core.registry import Gone, Present, Registry, Remembered

DEV = Path("/dev")


def usb(port_path: str, serial: str | None, lp: str | None = "lp0", pid: int = 0x4117,
        model: str = "HP LaserJet 1018") -> UsbPrinter:
    return UsbPrinter(port_path=port_path, vendor_id=0x3F0, product_id=pid, bcd_device=0x100,
                      serial=serial, model=model, protocol=2,
                      node=DEV / "usb" / lp if lp else None)


def snap(*printers: UsbPrinter, extra: tuple[Path, ...] = ()) -> Snapshot:
    nodes = {p.node for p in printers if p.node is not None} | set(extra)
    return Snapshot(printers, frozenset(nodes))


def registry(toml: str = "", remembered: dict[str, Remembered] | None = None) -> Registry:
    return Registry(parse_settings(toml), dict(remembered or {}))


def test_auto_serves_an_unconfigured_printer_from_base_port() -> None:
    reg = registry()
    a = usb("2-1", "A1")
    assert reg.reconcile(snap(a)) == [Present("hp-laserjet-1018", DEV / "usb/lp0", a)]
    assert reg.entries["hp-laserjet-1018"].port == 9100
    assert reg.reconcile(snap(a)) == []  # nothing changed: no decision


def test_no_printer_gets_the_status_page_port_not_even_a_remembered_one() -> None:
    a, b = usb("2-1", "A1"), usb("2-2", "B2", lp="lp1")
    remembered = {b.identity: Remembered("old-name", 9100)}
    reg = registry('[daemon]\nhttp_listen = "[::]:9100"\n', remembered)
    reg.reconcile(snap(a, b))
    assert sorted(e.port for e in reg.entries.values()) == [9101, 9102]


def test_auto_off_ignores_unconfigured_printers() -> None:
    assert registry("[daemon]\nauto = false\n").reconcile(snap(usb("2-1", "A1"))) == []


def test_a_printer_is_present_only_once_its_node_exists() -> None:
    reg = registry()
    assert reg.reconcile(snap(usb("2-1", "A1", lp=None))) == []
    without_devfs_node = Snapshot((usb("2-1", "A1"),), frozenset())
    assert reg.reconcile(without_devfs_node) == []
    assert [type(d) for d in reg.reconcile(snap(usb("2-1", "A1")))] == [Present]


def test_a_device_that_is_not_a_printer_node_is_never_present() -> None:
    # The scan refuses what is there but is no character device or FIFO (a file, a folder).
    reg = registry('[[printer]]\nname = "fixed"\ndevice = "/srv/file"\n\n'
                   '[[printer]]\nname = "matched"\nmatch = "3f0/4117/*"\n'
                   'device = "/srv/folder"\n\n[daemon]\nauto = false\n')
    a = usb("2-1", "A1")
    refused = {Path("/srv/file"): "a regular file", Path("/srv/folder"): "a directory"}
    with_refusals = Snapshot((a,), snap(a).existing_nodes, refused)
    assert reg.reconcile(with_refusals) == []
    assert reg.reconcile(snap(a, extra=(Path("/srv/file"), Path("/srv/folder")))) == [
        Present("fixed", Path("/srv/file"), None), Present("matched", Path("/srv/folder"), a)]
    assert reg.reconcile(with_refusals) == [Gone("fixed"), Gone("matched")]


def test_unplug_and_a_lost_remove_both_end_in_gone() -> None:
    reg = registry()
    reg.reconcile(snap(usb("2-1", "A1")))
    assert reg.reconcile(snap()) == [Gone("hp-laserjet-1018")]
    assert reg.reconcile(snap()) == []


def test_node_gone_without_unplug_is_gone_and_rebinding_is_present_again() -> None:
    reg = registry()
    reg.reconcile(snap(usb("2-1", "A1")))
    assert reg.reconcile(snap(usb("2-1", "A1", lp=None))) == [Gone("hp-laserjet-1018")]
    assert [type(d) for d in reg.reconcile(snap(usb("2-1", "A1", lp="lp3")))] == [Present]


def test_identical_printers_told_apart_by_serial_keep_names_and_ports_across_replugs() -> None:
    reg = registry()
    a, b = usb("2-1", "AAAA", "lp0"), usb("2-2", "BBBB", "lp1")
    reg.reconcile(snap(a, b))
    before = {e.identity: (e.name, e.port) for e in reg.entries.values()}
    reg.reconcile(snap())
    # Replugged the other way round: B gets lp0 and the lower port path.
    reg.reconcile(snap(usb("2-1", "BBBB", "lp0"), usb("2-2", "AAAA", "lp1")))
    after = {e.identity: (e.name, e.port) for e in reg.entries.values()}
    assert after == before
    assert sorted(p for _, p in after.values()) == [9100, 9101]


def test_ports_survive_a_restart_through_the_memory() -> None:
    first = registry()
    first.reconcile(snap(usb("2-1", "AAAA", "lp0"), usb("2-2", "BBBB", "lp1")))
    memory = first.memory()
    restarted = registry(remembered=memory)
    decisions = restarted.reconcile(snap(usb("2-2", "BBBB", "lp0")))  # only B, first
    assert [d.name for d in decisions] == [memory["03f0:4117:BBBB"].name]
    assert restarted.entries[decisions[0].name].port == memory["03f0:4117:BBBB"].port
    # A new printer never takes a remembered port, even while its owner is away.
    new = restarted.reconcile(snap(usb("2-2", "BBBB", "lp0"), usb("3-1", "CCCC", "lp1",
                                                                   pid=0x2B17, model="HP 1020")))
    assert restarted.entries[new[0].name].port == 9102


def test_configured_entries_match_by_serial_before_a_bare_glob() -> None:
    reg = registry('''
[[printer]]
name = "any-1018"
match = "3f0/4117/*"
[[printer]]
name = "office"
match = "3f0/4117/*"
serial = "BBBB"
port = 9105
''')
    a, b = usb("2-1", "AAAA", "lp0"), usb("2-2", "BBBB", "lp1")
    decisions = reg.reconcile(snap(a, b))
    assert {d.name: d.usb.serial for d in decisions if isinstance(d, Present) and d.usb} == {
        "any-1018": "AAAA", "office": "BBBB"}
    assert reg.entries["office"].port == 9105
    assert reg.entries["any-1018"].port == 9100


def test_configured_device_overrides_the_node_found() -> None:
    reg = registry('[[printer]]\nname = "lj"\nmatch = "3f0/4117/*"\ndevice = "/dev/lj"\n')
    decisions = reg.reconcile(snap(usb("2-1", "A1")))
    assert decisions == [Present("lj", Path("/dev/lj"), usb("2-1", "A1"))]


def test_static_printer_follows_its_node() -> None:
    reg = registry('[[printer]]\nname = "lp0"\ndevice = "/dev/usb/lp0"\nport = 9100\n')
    assert reg.reconcile(snap(extra=(Path("/dev/usb/lp0"),))) == [
        Present("lp0", Path("/dev/usb/lp0"), None)]
    assert reg.reconcile(snap()) == [Gone("lp0")]


def test_remembered_port_now_configured_for_another_printer_is_forgotten() -> None:
    reg = registry('[[printer]]\nname = "lj"\nmatch = "3f0/2b17/*"\nport = 9100\n',
                   remembered={"03f0:4117:A1": Remembered("hp-laserjet-1018", 9100)})
    reg.reconcile(snap(usb("2-1", "A1")))
    assert reg.entries["lj"].port == 9100
    assert reg.entries["hp-laserjet-1018"].port == 9101


def test_replacement_device_on_the_same_entry_is_gone_then_present() -> None:
    reg = registry()
    reg.reconcile(snap(usb("2-1", None, "lp0")))
    name = next(iter(reg.entries))
    decisions = reg.reconcile(snap(usb("2-1", None, "lp1")))
    assert [type(d) for d in decisions] == [Gone, Present]
    assert all(d.name == name for d in decisions)


def test_a_static_node_that_is_a_usb_printer_is_that_printer_not_an_auto_one() -> None:
    reg = registry('[[printer]]\nname = "lp0"\ndevice = "/dev/usb/lp0"\nport = 9100\n')
    assert reg.reconcile(snap(extra=(Path("/dev/usb/lp0"),))) == [
        Present("lp0", Path("/dev/usb/lp0"), None)]
    # sysfs now shows the USB printer behind that node: no second, auto entry for it,
    # and the static printer is not restarted; it only learns its product and serial.
    assert reg.reconcile(snap(usb("2-1", "A1", "lp0"))) == []
    assert list(reg.entries) == ["lp0"]
    assert reg.entries["lp0"].usb == usb("2-1", "A1", "lp0")


def test_a_power_cycle_between_two_scans_is_an_unplug_and_a_plug() -> None:
    reg = registry()
    before = UsbPrinter(port_path="2-1", vendor_id=0x3F0, product_id=0x4117, bcd_device=0x100,
                        serial="A1", node=DEV / "usb/lp0", devnum=5)
    reg.reconcile(snap(before))
    after = UsbPrinter(port_path="2-1", vendor_id=0x3F0, product_id=0x4117, bcd_device=0x100,
                       serial="A1", node=DEV / "usb/lp0", devnum=6)  # it lost its firmware
    assert [type(d) for d in reg.reconcile(snap(after))] == [Gone, Present]


def test_a_reload_that_gives_an_auto_printers_port_to_a_new_printer_moves_the_auto_one() -> None:
    reg = registry()
    reg.reconcile(snap(usb("2-1", "A1")))
    assert reg.entries["hp-laserjet-1018"].port == 9100
    new = parse_settings('[[printer]]\nname = "office"\ndevice = "/dev/lp9"\nport = 9100\n')
    update = reg.plan_update(new)
    assert (update.added, update.removed) == (("office",), ("hp-laserjet-1018",))
    reg.apply_update(new, update)
    reg.reconcile(snap(usb("2-1", "A1")))
    ports = {name: entry.port for name, entry in reg.entries.items()}
    assert ports["office"] == 9100 and ports["hp-laserjet-1018"] != 9100


def test_a_removed_printers_port_is_kept_for_its_comeback() -> None:
    reg = registry('[[printer]]\nname = "a"\nmatch = "3f0/4117/*"\n')
    reg.reconcile(snap(usb("2-1", "A1")))
    assert reg.entries["a"].port == 9100
    without = parse_settings("")
    reg.apply_update(without, reg.plan_update(without))
    reg.reconcile(snap(usb("3-1", "C1", "lp1", pid=0x2B17, model="HP 1020")))  # a newcomer
    assert [e.port for e in reg.entries.values()] == [9101]



def test_a_reload_that_changes_only_stall_timeout_restarts_no_printer() -> None:
    old = '[[printer]]\nname = "a"\nmatch = "3f0/4117/*"\n'
    reg = registry(old)
    reg.reconcile(snap(usb("2-1", "A1")))
    new = parse_settings("[daemon]\nstall_timeout = 120\n\n" + old + "stall_timeout = 30\n")
    update = reg.plan_update(new)
    assert (update.changed, update.unchanged) == ((), ("a",))
    reg.apply_update(new, update)
    assert reg.entries["a"].settings.stall_timeout == 30.0  # read at the job's next look


def test_no_port_beyond_65535_and_no_port_twice() -> None:
    book = PortBook(65534)
    assert [book.assign("a"), book.assign("b", wanted=65534)] == [65534, 65535]
    with pytest.raises(PortsExhausted):
        book.assign("c")
