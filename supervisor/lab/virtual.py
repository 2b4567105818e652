"""A virtual USB printer: a pty in raw mode behind a devfs path, recording what it is sent.

Shared by `supervisorctl demo` and the tests. The service opens the pty's slave side exactly as
it opens /dev/usb/lpN; a thread reads the master side (the "paper") and can answer like a
bidirectional printer. Closing the master makes the slave fail with EIO, as an unplugged usblp.
`pause()` stops reading the master, as a printer out of paper stops taking data: once the pty's
buffer is full, a write to the slave blocks for real (EAGAIN, no POLLOUT); `resume()` reads on.
FakeSysfs is the machine around it: the sysfs tree the scanner reads, and the matching uevents.
"""

from __future__ import annotations

import os
import re
import select
import shutil
import threading
import time
import tty
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

PJL_STATUS_QUERY = b"@PJL INFO STATUS"
PJL_STATUS_REPLY = b'@PJL INFO STATUS\r\nCODE=10001\r\nDISPLAY="Ready"\r\nONLINE=TRUE\r\n\x0c'
DEFAULT_DEVICE_ID = "MFG:Hewlett-Packard;MDL:HP LaserJet 1018;CMD:ACL;CLS:PRINTER;"
FWVER_FIELD = "FWVER:20051028;"  # what a LaserJet 1018 adds to its ID once its firmware runs

Responder = Callable[[bytes], bytes]


def pjl_status_responder(data: bytes) -> bytes:
    """Answer each `@PJL INFO STATUS` in `data` (new bytes) as a ready LaserJet does."""
    return PJL_STATUS_REPLY * data.count(PJL_STATUS_QUERY)


class VirtualPrinter:
    """A pty standing in for `devfs/node`; `paper` is every byte the printer received.

    With `firmware`, it is a host-based printer after power-on: it swallows what it is sent (into
    `paper`, as usual) and counts as loaded once the bytes received contain the whole blob; then
    its `device_id` gains FWVER and `on_device_id_change` hears the new ID.
    """

    def __init__(self, devfs: Path, node: str = "usb/lp0", *,
                 responder: Responder | None = pjl_status_responder,
                 firmware: bytes | None = None, device_id: str = DEFAULT_DEVICE_ID,
                 on_device_id_change: Callable[[str], None] | None = None) -> None:
        self.path = devfs / node
        self._responder = responder
        self._firmware = firmware
        self._firmware_loaded = False
        self._fw_scan_from = 0
        self._base_device_id = device_id
        self._on_device_id_change = on_device_id_change
        self._paper = bytearray()
        self._cond = threading.Condition()
        self._master = -1
        self._slave = -1
        self._stop_r = self._stop_w = -1
        self._stopping = False
        self._paused = False
        self._thread: threading.Thread | None = None
        self._scan_from = 0

    def plug(self) -> VirtualPrinter:
        """Create the pty and its devfs link, and start reading what is printed."""
        self._master, self._slave = os.openpty()
        self._stop_r, self._stop_w = os.pipe()
        self._stopping = False
        tty.setraw(self._slave)
        tty.setraw(self._master)
        os.set_blocking(self._master, False)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.is_symlink() or self.path.exists():
            self.path.unlink()
        # Keep our slave fd open: otherwise the master reads EIO whenever no job holds the node.
        self.path.symlink_to(os.ttyname(self._slave))
        self._thread = threading.Thread(target=self._read_loop, name="virtual-printer",
                                        daemon=True)
        self._thread.start()
        return self

    def unplug(self) -> None:
        """Pull the cable: the node disappears and an open one fails with EIO."""
        if self.path.is_symlink():
            self.path.unlink()
        self._stop_thread()
        for fd in (self._master, self._slave):
            if fd >= 0:
                os.close(fd)
        self._master = self._slave = -1

    close = unplug

    @property
    def paper(self) -> bytes:
        with self._cond:
            return bytes(self._paper)

    @property
    def firmware_loaded(self) -> bool:
        """True once the whole firmware blob arrived (always, for a printer that needs none)."""
        with self._cond:
            return self._firmware is None or self._firmware_loaded

    @property
    def device_id(self) -> str:
        """The IEEE-1284 ID it reports now: with FWVER once the firmware it needed is loaded."""
        with self._cond:
            loaded = self._firmware is not None and self._firmware_loaded
        return self._base_device_id + (FWVER_FIELD if loaded else "")

    def wait_for_bytes(self, count: int, timeout_s: float = 10.0) -> bytes:
        """Block until at least `count` bytes were printed (or the timeout); return the paper."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while len(self._paper) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            return bytes(self._paper)

    def pause(self) -> None:
        """Stop taking data (out of paper, offline): what was read stays on paper, the rest
        waits in the pty until `resume()`."""
        self._paused = True
        self._wake()

    def resume(self) -> None:
        """Take data again (paper added)."""
        self._paused = False
        self._wake()

    @property
    def paused(self) -> bool:
        return self._paused

    def _wake(self) -> None:
        if self._stop_w >= 0:
            os.write(self._stop_w, b"w")

    def send(self, data: bytes) -> None:
        """Printer → host bytes (the backchannel), e.g. an unsolicited status."""
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(self._master, view):]
            except BlockingIOError:
                select.select([], [self._master], [], 1.0)

    def _read_loop(self) -> None:
        while True:
            watched = [self._stop_r] if self._paused else [self._master, self._stop_r]
            ready, _, _ = select.select(watched, [], [])
            if self._stop_r in ready:
                os.read(self._stop_r, 64)
                if self._stopping:
                    return
                continue  # paused or resumed: look again
            try:
                chunk = os.read(self._master, 1 << 16)
            except BlockingIOError:
                continue
            except OSError:
                return
            if not chunk:
                return
            self._record(chunk)

    def _record(self, chunk: bytes) -> None:
        with self._cond:
            self._paper += chunk
            # Look for queries across chunk borders: rescan a query's length of overlap.
            start = max(0, self._scan_from - len(PJL_STATUS_QUERY) + 1)
            new = bytes(self._paper[start:])
            self._scan_from = len(self._paper)
            just_loaded = self._check_firmware()
            self._cond.notify_all()
        if just_loaded and self._on_device_id_change is not None:
            self._on_device_id_change(self.device_id)
        if self._responder is not None and (reply := self._responder(new)):
            self.send(reply)

    def _check_firmware(self) -> bool:
        """With the lock held: did the paper just come to contain the whole firmware blob?"""
        if self._firmware is None or self._firmware_loaded:
            return False
        if len(self._paper) < len(self._firmware):
            return False  # cannot hold it yet: no search, so a big blob costs one pass
        start = max(0, self._fw_scan_from - len(self._firmware) + 1)
        self._fw_scan_from = len(self._paper)
        self._firmware_loaded = self._paper.find(self._firmware, start) >= 0
        return self._firmware_loaded

    def _stop_thread(self) -> None:
        if self._thread is not None:
            self._stopping = True
            os.write(self._stop_w, b"x")
            self._thread.join(5)
            self._thread = None
            os.close(self._stop_r)
            os.close(self._stop_w)
            self._stop_r = self._stop_w = -1

    def __enter__(self) -> VirtualPrinter:
        return self.plug()

    def __exit__(self, *exc: object) -> None:
        self.unplug()


# A fake sysfs tree for the scanner, and the uevents the kernel would send for it.

#: The host controller the fake buses hang from, as an x86 xHCI: DEVPATH of root hub N is …/usbN.
HOST_CONTROLLER = "/devices/pci0000:00/0000:00:14.0"
USB_DEVICE_MAJOR = 189
USBLP_MAJOR = 180

#: (class, subclass, protocol) of a USB device or interface, e.g. (7, 1, 2) for a printer.
UsbClass = tuple[int, int, int]
HotplugEnv = dict[str, str]
_PORT_PATH = re.compile(r"(?P<bus>[1-9]\d*)-(?P<ports>\d+(?:\.\d+)*)")
_LP = re.compile(r"lp(?P<minor>\d+)")


@dataclass
class _FakeDevice:
    """What FakeSysfs remembers of one device: enough to write its files and its uevents."""

    port_path: str
    vendor_id: int
    product_id: int
    bcd_device: int
    device_class: UsbClass
    interfaces: tuple[UsbClass, ...]
    busnum: int
    devnum: int
    device_id: str | None = None
    lp: str | None = None  # the lpN usblp gives it; kept after unbind, for the events
    bound: bool = False  # usblp bound: usbmisc/lpN and ieee1284_id exist
    present: bool = True

    @property
    def printer_interface(self) -> int:
        for number, (cls, _, _) in enumerate(self.interfaces):
            if cls == 7:
                return number
        raise ValueError(f"the device at {self.port_path} has no printer interface")


class FakeSysfs:
    """A tree under `root` (standing in for /sys) laid out as the kernel lays out USB devices.

    Devices live in root/devices/pci0000:00/0000:00:14.0/usbB/<port>…, linked from
    root/bus/usb/devices/ as in /sys (the scanner follows the links); the root hub usbB appears
    with the first device on bus B. Files are formatted as the kernel writes them. plug_events()
    and friends give the uevents the kernel would send for a device, as OpenWrt's hotplug-call
    passes them (relative DEVNAME, plus HOTPLUG_TYPE and DEVICENAME), in the kernel's order.
    """

    def __init__(self, root: Path, *, first_seqnum: int = 1000) -> None:
        self.root = root
        self.devices_dir = root / "bus" / "usb" / "devices"
        self.devices_dir.mkdir(parents=True, exist_ok=True)
        self._devices: dict[str, _FakeDevice] = {}
        self._last_devnum: dict[int, int] = {}
        self._seqnum = first_seqnum - 1

    def add_printer(self, port_path: str = "2-1", vendor_id: int = 0x3F0,
                    product_id: int = 0x4117, bcd_device: int = 0x100, *,
                    serial: str | None = "CNB1234567", manufacturer: str | None = "Hewlett-Packard",
                    model: str | None = "HP LaserJet 1018", protocol: int = 2,
                    lp: str | None = "lp0", device_id: str | None = DEFAULT_DEVICE_ID) -> Path:
        """Plug a printer (7/1/protocol on interface 1.0), bound to usblp as `lp` unless None.

        As in the kernel, ieee1284_id exists only while usblp is bound: with lp=None the
        device ID is kept and appears on bind_lp().
        """
        directory = self.add_device(port_path, vendor_id, product_id, bcd_device, serial=serial,
                                    manufacturer=manufacturer, model=model,
                                    interfaces=[(7, 1, protocol)])
        self._devices[port_path].device_id = device_id
        if lp is not None:
            self.bind_lp(port_path, lp)
        return directory

    def add_device(self, port_path: str, vendor_id: int, product_id: int,
                   bcd_device: int = 0x100, *, serial: str | None = None,
                   manufacturer: str | None = None, model: str | None = None,
                   device_class: UsbClass = (0, 0, 0), interfaces: Sequence[UsbClass] = ()) -> Path:
        """Plug any USB device (replacing what was at that port); returns its directory."""
        if port_path in self._devices and self._devices[port_path].present:
            self.remove(port_path)
        busnum = self._ensure_root_hub(port_path)
        self._last_devnum[busnum] += 1  # a new DEVNUM on every plug, as the kernel does
        device = _FakeDevice(port_path, vendor_id, product_id, bcd_device, device_class,
                             tuple(interfaces), busnum, self._last_devnum[busnum])
        self._devices[port_path] = device
        directory = self.device_dir(port_path)
        self._write_device(directory, device, serial, manufacturer, model)
        return directory

    def bind_lp(self, port_path: str, lp: str = "lp0") -> Path:
        """usblp binds to the printer interface: usbmisc/lpN and ieee1284_id appear."""
        device = self._present(port_path)
        match = _LP.fullmatch(lp)
        if match is None:
            raise ValueError(f"{lp!r} is not an lp node name (lpN)")
        if device.bound:
            self.unbind_lp(port_path)
        interface = self._interface_dir(device, device.printer_interface)
        node = interface / "usbmisc" / lp
        node.mkdir(parents=True)
        (node / "dev").write_text(f"{USBLP_MAJOR}:{match['minor']}\n")
        (node / "uevent").write_text(
            f"MAJOR={USBLP_MAJOR}\nMINOR={match['minor']}\nDEVNAME=usb/{lp}\n")
        (interface / "ieee1284_id").write_text(device.device_id or "")  # no newline, as usblp
        _symlink(self.root / "class" / "usbmisc" / lp, node)
        device.lp, device.bound = lp, True
        return node

    def unbind_lp(self, port_path: str) -> None:
        """usblp lets go (CUPS' usb backend, ipp-usb): the lp node goes, the printer stays."""
        device = self._present(port_path)
        if not device.bound:
            return
        interface = self._interface_dir(device, device.printer_interface)
        shutil.rmtree(interface / "usbmisc", ignore_errors=True)
        (interface / "ieee1284_id").unlink(missing_ok=True)
        if device.lp is not None:
            (self.root / "class" / "usbmisc" / device.lp).unlink(missing_ok=True)
        device.bound = False

    def set_device_id(self, port_path: str, device_id: str | None) -> None:
        """Change the printer's IEEE-1284 ID (usblp re-reads it), written verbatim."""
        device = self._present(port_path)
        device.device_id = device_id
        if device.bound:
            interface = self._interface_dir(device, device.printer_interface)
            (interface / "ieee1284_id").write_text(device_id or "")

    def remove(self, port_path: str) -> None:
        """Unplug: the device, its interfaces and anything plugged behind it vanish."""
        self._present(port_path)
        for device in self._devices.values():
            if device.present and (device.port_path == port_path
                                   or device.port_path.startswith(port_path + ".")):
                self._unlink(device)
        shutil.rmtree(self.device_dir(port_path), ignore_errors=True)

    def devpath(self, port_path: str) -> str:
        """The device's DEVPATH, e.g. /devices/pci0000:00/0000:00:14.0/usb2/2-1/2-1.3."""
        busnum, ports = _parse_port_path(port_path)
        chain = [f"{busnum}-{'.'.join(ports[:depth])}" for depth in range(1, len(ports) + 1)]
        return "/".join([HOST_CONTROLLER, f"usb{busnum}", *chain])

    def device_dir(self, port_path: str) -> Path:
        return self.root / self.devpath(port_path).lstrip("/")

    # The uevents: call them while the tree is in the state they describe (unplug_events may
    # also come after remove()). Each call takes fresh, increasing SEQNUMs.

    def plug_events(self, port_path: str) -> list[HotplugEnv]:
        """Plugging the device as it is now: device, interfaces, [lp + usblp bind], device bind."""
        device = self._record(port_path)
        events = [self._device_event(device, "add")]
        for number in range(len(device.interfaces)):
            events.append(self._interface_event(device, number, "add"))
            if device.bound and number == device.printer_interface:
                events += self._lp_events(device, bind=True)
        events.append(self._device_event(device, "bind", driver="usb"))
        return events

    def unplug_events(self, port_path: str) -> list[HotplugEnv]:
        """Unplugging it: [lp remove + usblp unbind], interfaces, device unbind, device remove."""
        device = self._record(port_path)
        events: list[HotplugEnv] = []
        for number in reversed(range(len(device.interfaces))):
            if device.bound and number == device.printer_interface:
                events += self._lp_events(device, bind=False)
            events.append(self._interface_event(device, number, "remove"))
        events.append(self._device_event(device, "unbind"))
        events.append(self._device_event(device, "remove"))
        return events

    def bind_lp_events(self, port_path: str) -> list[HotplugEnv]:
        """usblp binding without a replug: add lpN, bind the interface (DRIVER=usblp)."""
        return self._lp_events(self._record(port_path), bind=True)

    def unbind_lp_events(self, port_path: str) -> list[HotplugEnv]:
        """usblp detached while the printer stays: remove lpN, unbind the interface."""
        return self._lp_events(self._record(port_path), bind=False)

    def _lp_events(self, device: _FakeDevice, *, bind: bool) -> list[HotplugEnv]:
        if device.lp is None:
            raise ValueError(f"the printer at {device.port_path} was never bound to an lp node")
        number = device.printer_interface
        node = self._stamp({
            "ACTION": "add" if bind else "remove",
            "DEVPATH": f"{self._interface_devpath(device, number)}/usbmisc/{device.lp}",
            "SUBSYSTEM": "usbmisc",
            "MAJOR": str(USBLP_MAJOR),
            "MINOR": device.lp[2:],
            "DEVNAME": f"usb/{device.lp}",
        })
        if bind:
            return [node, self._interface_event(device, number, "bind", driver="usblp")]
        return [node, self._interface_event(device, number, "unbind")]

    def _device_event(self, device: _FakeDevice, action: str,
                      driver: str | None = None) -> HotplugEnv:
        return self._stamp({
            "ACTION": action,
            "DEVPATH": self.devpath(device.port_path),
            "SUBSYSTEM": "usb",
            "MAJOR": str(USB_DEVICE_MAJOR),
            "MINOR": str((device.busnum - 1) * 128 + device.devnum - 1),
            "DEVNAME": f"bus/usb/{device.busnum:03d}/{device.devnum:03d}",
            "DEVTYPE": "usb_device",
            "PRODUCT": _product(device),
            "TYPE": "/".join(str(value) for value in device.device_class),
            "BUSNUM": f"{device.busnum:03d}",
            "DEVNUM": f"{device.devnum:03d}",
        }, driver)

    def _interface_event(self, device: _FakeDevice, number: int, action: str,
                         driver: str | None = None) -> HotplugEnv:
        return self._stamp({
            "ACTION": action,
            "DEVPATH": self._interface_devpath(device, number),
            "SUBSYSTEM": "usb",
            "DEVTYPE": "usb_interface",
            "PRODUCT": _product(device),
            "TYPE": "/".join(str(value) for value in device.device_class),
            "INTERFACE": "/".join(str(value) for value in device.interfaces[number]),
            "MODALIAS": _modalias(device, number),
        }, driver)

    def _stamp(self, env: HotplugEnv, driver: str | None = None) -> HotplugEnv:
        """Add what the kernel adds last (SEQNUM, DRIVER while bound) and what procd adds."""
        self._seqnum += 1
        env["SEQNUM"] = str(self._seqnum)
        if driver is not None:
            env["DRIVER"] = driver
        env["HOTPLUG_TYPE"] = env["SUBSYSTEM"]
        env["DEVICENAME"] = env["DEVPATH"].rsplit("/", 1)[-1]
        return env

    def _interface_devpath(self, device: _FakeDevice, number: int) -> str:
        return f"{self.devpath(device.port_path)}/{device.port_path}:1.{number}"

    def _interface_dir(self, device: _FakeDevice, number: int) -> Path:
        return self.root / self._interface_devpath(device, number).lstrip("/")

    def _record(self, port_path: str) -> _FakeDevice:
        if port_path not in self._devices:
            raise KeyError(f"nothing was ever plugged at {port_path}")
        return self._devices[port_path]

    def _present(self, port_path: str) -> _FakeDevice:
        device = self._record(port_path)
        if not device.present:
            raise KeyError(f"nothing is plugged at {port_path} now")
        return device

    def _ensure_root_hub(self, port_path: str) -> int:
        """The bus number of `port_path`; its root hub usbN (DEVNUM 1) is created if missing."""
        busnum, _ = _parse_port_path(port_path)
        if busnum not in self._last_devnum:
            self._last_devnum[busnum] = 1
            hub = self.root / HOST_CONTROLLER.lstrip("/") / f"usb{busnum}"
            _write_attributes(hub, {
                "idVendor": "1d6b\n", "idProduct": "0002\n", "bcdDevice": "0601\n",
                "bDeviceClass": "09\n", "bDeviceSubClass": "00\n", "bDeviceProtocol": "01\n",
                "bNumInterfaces": " 1\n", "busnum": f"{busnum}\n", "devnum": "1\n",
                "manufacturer": "Linux 6.1.0 xhci-hcd\n", "product": "xHCI Host Controller\n",
                "serial": "0000:00:14.0\n",
            })
            _write_attributes(hub / f"{busnum}-0:1.0", {
                "bInterfaceNumber": "00\n", "bAlternateSetting": " 0\n",
                "bInterfaceClass": "09\n", "bInterfaceSubClass": "00\n",
                "bInterfaceProtocol": "00\n",
            })
            _symlink(self.devices_dir / f"usb{busnum}", hub)
            _symlink(self.devices_dir / f"{busnum}-0:1.0", hub / f"{busnum}-0:1.0")
        return busnum

    def _write_device(self, directory: Path, device: _FakeDevice, serial: str | None,
                      manufacturer: str | None, model: str | None) -> None:
        cls, subclass, protocol = device.device_class
        attributes = {
            "idVendor": f"{device.vendor_id:04x}\n", "idProduct": f"{device.product_id:04x}\n",
            "bcdDevice": f"{device.bcd_device:04x}\n", "bDeviceClass": f"{cls:02x}\n",
            "bDeviceSubClass": f"{subclass:02x}\n", "bDeviceProtocol": f"{protocol:02x}\n",
            "bNumInterfaces": f"{len(device.interfaces):2d}\n", "busnum": f"{device.busnum}\n",
            "devnum": f"{device.devnum}\n",
            "devpath": f"{device.port_path.split('-', 1)[1]}\n", "speed": "480\n",
        }
        # A string descriptor the device lacks has no file at all.
        for name, value in (("serial", serial), ("manufacturer", manufacturer),
                            ("product", model)):
            if value is not None:
                attributes[name] = f"{value}\n"
        _write_attributes(directory, attributes)
        _symlink(self.devices_dir / device.port_path, directory)
        for number, (if_class, if_subclass, if_protocol) in enumerate(device.interfaces):
            interface = self._interface_dir(device, number)
            _write_attributes(interface, {
                "bInterfaceNumber": f"{number:02x}\n", "bAlternateSetting": " 0\n",
                "bInterfaceClass": f"{if_class:02x}\n",
                "bInterfaceSubClass": f"{if_subclass:02x}\n",
                "bInterfaceProtocol": f"{if_protocol:02x}\n",
                "modalias": f"{_modalias(device, number)}\n",
            })
            _symlink(self.devices_dir / interface.name, interface)

    def _unlink(self, device: _FakeDevice) -> None:
        """Drop the device's links (bus/usb/devices, class/usbmisc); its dirs go with rmtree."""
        (self.devices_dir / device.port_path).unlink(missing_ok=True)
        for number in range(len(device.interfaces)):
            (self.devices_dir / f"{device.port_path}:1.{number}").unlink(missing_ok=True)
        if device.bound and device.lp is not None:
            (self.root / "class" / "usbmisc" / device.lp).unlink(missing_ok=True)
        device.present = False


def _parse_port_path(port_path: str) -> tuple[int, list[str]]:
    """`2-1.3` as (2, ["1", "3"]): the bus number and the hub ports down to the device."""
    match = _PORT_PATH.fullmatch(port_path)
    if match is None:
        raise ValueError(f"{port_path!r} is not a USB port path like 2-1 or 2-1.3")
    return int(match["bus"]), match["ports"].split(".")


def _product(device: _FakeDevice) -> str:
    return f"{device.vendor_id:x}/{device.product_id:x}/{device.bcd_device:x}"


def _modalias(device: _FakeDevice, number: int) -> str:
    dc, dsc, dp = device.device_class
    ic, isc, ip = device.interfaces[number]
    return (f"usb:v{device.vendor_id:04X}p{device.product_id:04X}d{device.bcd_device:04X}"
            f"dc{dc:02X}dsc{dsc:02X}dp{dp:02X}ic{ic:02X}isc{isc:02X}ip{ip:02X}in{number:02X}")


def _write_attributes(directory: Path, attributes: dict[str, str]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in attributes.items():
        (directory / name).write_text(text)


def _symlink(link: Path, target: Path) -> None:
    """A relative symlink, as sysfs makes them (the tree stays valid if moved)."""
    link.parent.mkdir(parents=True, exist_ok=True)
    link.unlink(missing_ok=True)
    link.symlink_to(os.path.relpath(target, link.parent))


class VirtualUsbPrinter:
    """A USB printer end to end: sysfs entries, an lp node (a pty) and the events of a plug.

    `plug()` and `unplug()` change the fake device tree and return the hotplug environments the
    kernel would send, for a test or the demo to deliver (or to lose, on purpose).
    """

    def __init__(self, sysfs: FakeSysfs, devfs: Path, *, port_path: str = "2-1",
                 lp: str = "lp0", serial: str | None = "CNB1234567",
                 firmware: bytes | None = None, device_id: str = DEFAULT_DEVICE_ID,
                 product_id: int = 0x4117, model: str = "HP LaserJet 1018") -> None:
        self.sysfs = sysfs
        self.devfs = devfs
        self.port_path = port_path
        self.lp = lp
        self.serial = serial
        self.firmware = firmware
        self.device_id = device_id
        self.product_id = product_id
        self.model = model
        self.printer: VirtualPrinter | None = None

    @property
    def node(self) -> Path:
        return self.devfs / "usb" / self.lp

    def plug(self) -> list[HotplugEnv]:
        """Power on: a fresh printer (firmware lost), its node, its sysfs entries."""
        self.printer = VirtualPrinter(self.devfs, f"usb/{self.lp}", firmware=self.firmware,
                                      device_id=self.device_id).plug()
        self.sysfs.add_printer(self.port_path, product_id=self.product_id, serial=self.serial,
                               model=self.model, lp=self.lp, device_id=self.device_id)
        return self.sysfs.plug_events(self.port_path)

    def unplug(self) -> list[HotplugEnv]:
        """Power off or pull the cable: node and sysfs entries vanish, an open node fails."""
        if self.printer is not None:
            self.printer.unplug()
        self.sysfs.remove(self.port_path)
        return self.sysfs.unplug_events(self.port_path)

    def close(self) -> None:
        if self.printer is not None:
            self.printer.close()
