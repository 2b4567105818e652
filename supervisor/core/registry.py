"""The registry: which printers exist, which USB device each one is now, and its port.

Pure: `reconcile` takes a Snapshot of the device tree and answers with decisions; callers do
the I/O (scanning sysfs, opening nodes, saving the remembered ports).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from fnmatch import fnmatchcase
from pathlib import Path

from supervisor.config.settings import PrinterSettings, Settings
from supervisor.core.devices import Snapshot, UsbPrinter
from supervisor.core.ports import PortBook, PortsExhausted


@dataclass(frozen=True)
class Remembered:
    """What the state file keeps per printer identity: its name and port."""

    name: str
    port: int


@dataclass
class Entry:
    """A printer the registry knows: configured, or found by `auto`."""

    settings: PrinterSettings
    port: int
    configured: bool
    usb: UsbPrinter | None = None  # the USB device it is now, while plugged
    node: Path | None = None  # the node its jobs go to, while present
    identity: str | None = None  # the last USB device it was: kept across unplugs

    @property
    def name(self) -> str:
        return self.settings.name

    @property
    def present(self) -> bool:
        return self.node is not None


@dataclass(frozen=True)
class Present:
    """The printer is there now, at `node` (and `usb`, unless it is a static node)."""

    name: str
    node: Path
    usb: UsbPrinter | None


@dataclass(frozen=True)
class Gone:
    """The printer is no longer there."""

    name: str


Decision = Present | Gone


@dataclass(frozen=True)
class Update:
    """What a new configuration changes, by printer name."""

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()


@dataclass
class Registry:
    """Configured printers plus those `auto` found, matched against each snapshot."""

    settings: Settings
    remembered: dict[str, Remembered] = field(default_factory=dict)
    entries: dict[str, Entry] = field(default_factory=dict)

    def __post_init__(self) -> None:
        daemon = self.settings.daemon
        explicit = {p.port: p.name for p in self.settings.printers if p.port is not None}
        # The status page's port is nobody's (a restart-only setting: it stays for the run).
        http = {daemon.http_address[1]} if daemon.http_address else set()
        # A port the configuration now gives to another printer is no longer remembered.
        self.remembered = {identity: r for identity, r in self.remembered.items()
                           if explicit.get(r.port, r.name) == r.name and r.port not in http}
        remembered_ports = {r.port for r in self.remembered.values()}
        self._ports = PortBook(daemon.base_port,
                               reserved=explicit.keys() | remembered_ports | http)
        by_name = {r.name: r.port for r in self.remembered.values()}
        for ps in self.settings.printers:
            port = self._ports.assign(ps.name, ps.port or by_name.get(ps.name))
            self.entries[ps.name] = Entry(ps, port, configured=True)

    # -- matching ----------------------------------------------------------------------------
    def reconcile(self, snapshot: Snapshot) -> list[Decision]:
        """Diff the snapshot against the registry; entries are updated, decisions returned."""
        wanted: dict[str, tuple[Path, UsbPrinter | None]] = {}
        for entry in self.entries.values():
            device = entry.settings.device
            if entry.settings.is_static and device is not None and (
                    device in snapshot.existing_nodes):
                wanted[entry.name] = (device, None)
        static = {device: name for name, (device, _) in wanted.items()}
        for usb in snapshot.printers:
            if usb.node is None or usb.node not in snapshot.existing_nodes:
                continue  # usblp not bound (yet), or its node not created yet
            if usb.node in static:  # a p910nd-style entry names this node: it is that printer
                wanted[static[usb.node]] = (usb.node, usb)
                continue
            match = self._match(usb, taken=wanted.keys())
            if match is not None and match.settings.device not in snapshot.refused_nodes:
                wanted[match.name] = (match.settings.device or usb.node, usb)
        return self._diff(wanted)

    def _diff(self, wanted: Mapping[str, tuple[Path, UsbPrinter | None]]) -> list[Decision]:
        decisions: list[Decision] = []
        for entry in self.entries.values():
            now = wanted.get(entry.name)
            if now is None:
                if entry.present:
                    entry.node = entry.usb = None
                    decisions.append(Gone(entry.name))
                continue
            node, usb = now
            same = entry.present and entry.node == node and (
                entry.settings.is_static or _same_device(entry.usb, usb))
            if not same:
                if entry.present:  # replaced by another device or node in one step
                    decisions.append(Gone(entry.name))
                entry.node, entry.usb = node, usb
                entry.identity = usb.identity if usb else entry.identity
                decisions.append(Present(entry.name, node, usb))
            else:
                entry.usb = usb  # refresh facts such as the cached device ID
        return decisions

    def _match(self, usb: UsbPrinter, taken: Iterable[str]) -> Entry | None:
        taken = set(taken)
        candidates = [e for e in self.entries.values()
                      if e.configured and e.name not in taken and _matches(e.settings, usb)]
        # The most specific entry wins: one naming this serial over a bare PRODUCT glob.
        candidates.sort(key=lambda e: e.settings.serial is None)
        # A printer keeps the entry it had, so replug order never swaps two identical ones.
        for entry in candidates:
            if entry.identity == usb.identity:
                return entry
        for entry in candidates:
            if not entry.present:
                return entry
        return self._auto_entry(usb, taken) if self.settings.daemon.auto else None

    def _auto_entry(self, usb: UsbPrinter, taken: set[str]) -> Entry | None:
        for entry in self.entries.values():
            if not entry.configured and entry.identity == usb.identity and (
                    entry.name not in taken):
                return entry
        remembered = self.remembered.get(usb.identity)
        if remembered is not None and remembered.name not in self.entries:
            name, port = remembered.name, self._ports.assign(remembered.name, remembered.port)
        else:
            others = {r.name for r in self.remembered.values()} | self.entries.keys()
            name = _unique(usb.slug, others)
            try:
                port = self._ports.assign(name)
            except PortsExhausted:
                return None  # not served; lower base_port

        entry = Entry(PrinterSettings(name=name), port, configured=False,
                      identity=usb.identity)
        self.entries[name] = entry
        return entry

    # -- reconfiguration ---------------------------------------------------------------------
    def plan_update(self, settings: Settings) -> Update:
        """Which printers a new configuration adds, removes, changes or leaves alone.

        A printer is unchanged when its own settings and the daemon settings it is served with
        (bind addresses, firmware directories) are the same. Printers `auto` found are left alone
        unless those daemon settings changed, `auto` was turned off, or a new `[[printer]]` takes
        their name.
        """
        old = self.settings
        new_printers = {p.name: p for p in settings.printers}
        daemon_changed = (old.daemon.bind, old.daemon.firmware_dirs) != (
            settings.daemon.bind, settings.daemon.firmware_dirs)
        added, removed, changed, unchanged = [], [], [], []
        for name, entry in self.entries.items():
            wanted = new_printers.get(name)
            if not entry.configured:
                if daemon_changed or not settings.daemon.auto or wanted is not None:
                    removed.append(name)
                else:
                    unchanged.append(name)
            elif wanted is None:
                removed.append(name)
            elif not _served_alike(wanted, entry.settings) or daemon_changed:
                changed.append(name)
            else:
                unchanged.append(name)
        added = [name for name in new_printers if name not in self.entries or
                 not self.entries[name].configured]
        # A printer now given another one's port moves: configured ones restart elsewhere,
        # `auto` ones are found again on a free port.
        explicit = {p.port: p.name for p in settings.printers if p.port is not None}
        for name in list(unchanged):
            entry = self.entries[name]
            if explicit.get(entry.port, name) != name:
                unchanged.remove(name)
                (changed if entry.configured else removed).append(name)
        return Update(tuple(added), tuple(removed), tuple(changed), tuple(unchanged))

    def apply_update(self, settings: Settings, update: Update) -> None:
        """Take the new configuration: entries of removed and changed printers are replaced."""
        by_name = {p.name: p for p in settings.printers}
        explicit = {p.port for p in settings.printers if p.port is not None}
        for name in update.unchanged:  # announcement settings change without a restart
            entry = self.entries[name]
            if entry.configured:
                entry.settings = by_name[name]
        previous = {name: self.entries[name].port for name in update.changed}
        self.remembered = self.memory()  # removed printers keep their ports for a comeback
        for name in update.removed:
            self._ports.release(name, keep=name not in by_name)
            del self.entries[name]
        for name in update.changed:
            self._ports.release(name)
            del self.entries[name]
        self.settings = settings
        # Configured ports first, so that no one else takes them.
        for name in sorted((*update.changed, *update.added), key=lambda n: by_name[n].port is None):
            ps = by_name[name]
            wanted = ps.port or previous.get(name) or self._remembered_port(name)
            if ps.port is None and wanted in explicit:
                wanted = None  # that port now belongs to another printer by configuration
            self.entries[name] = Entry(ps, self._ports.assign(name, wanted), configured=True)

    def _remembered_port(self, name: str) -> int | None:
        return next((r.port for r in self.memory().values() if r.name == name), None)

    # -- memory ------------------------------------------------------------------------------
    def memory(self) -> dict[str, Remembered]:
        """Identity → name and port, for the state file: what we know merged with what we had."""
        memory = dict(self.remembered)
        for entry in self.entries.values():
            if entry.identity is not None:
                memory[entry.identity] = Remembered(entry.name, entry.port)
        return memory


# Settings that only change how a printer is announced (mdns, mdns_name, location) or when it
# counts as stalled (stall_timeout, read at each look): a reload re-announces it or watches it
# anew, never restarts it (a running job goes on).
def _served_alike(new: PrinterSettings, old: PrinterSettings) -> bool:
    """Whether two settings serve the printer alike (they may announce or watch it
    differently)."""
    def served(p: PrinterSettings) -> PrinterSettings:
        return replace(p, mdns=True, mdns_name=None, location=None, stall_timeout=None)

    return served(new) == served(old)


def _matches(settings: PrinterSettings, usb: UsbPrinter) -> bool:
    if settings.is_static:
        return False
    if settings.serial is not None and settings.serial != usb.serial:
        return False
    return settings.match is None or fnmatchcase(usb.product, settings.match)


def _same_device(old: UsbPrinter | None, new: UsbPrinter | None) -> bool:
    """The same device, still plugged: a power cycle between two scans (new devnum) is not."""
    if old is None or new is None:
        return old is new
    return (old.identity, old.port_path, old.devnum) == (new.identity, new.port_path,
                                                         new.devnum)


def _unique(base: str, names: Iterable[str]) -> str:
    names = set(names)
    if base not in names:
        return base
    n = 2
    while f"{base}-{n}" in names:
        n += 1
    return f"{base}-{n}"
