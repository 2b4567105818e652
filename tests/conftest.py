"""Shared fixtures: virtual printers, the service in a thread, stopped after each test."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest
from harness import ServiceThread, Ubus

from supervisor.lab.virtual import FakeSysfs, VirtualPrinter, VirtualUsbPrinter


@pytest.fixture
def make_printer(tmp_path: Path) -> Iterator[Callable[..., VirtualPrinter]]:
    """Plug virtual printers under tmp_path/dev; all unplugged after the test."""
    printers: list[VirtualPrinter] = []

    def make(node: str = "usb/lp0", **kwargs: object) -> VirtualPrinter:
        printer = VirtualPrinter(tmp_path / "dev", node, **kwargs)  # type: ignore[arg-type]
        printers.append(printer.plug())
        return printer

    yield make
    for printer in printers:
        printer.close()


@pytest.fixture
def printer(make_printer: Callable[..., VirtualPrinter]) -> VirtualPrinter:
    return make_printer()


@pytest.fixture
def sysfs(tmp_path: Path) -> FakeSysfs:
    """A fake /sys under tmp_path/sys (the services of these tests look there)."""
    return FakeSysfs(tmp_path / "sys")


@pytest.fixture
def make_usb(tmp_path: Path, sysfs: FakeSysfs) -> Iterator[Callable[..., VirtualUsbPrinter]]:
    """Virtual USB printers (sysfs entries, a pty node) in the fake trees; closed after."""
    made: list[VirtualUsbPrinter] = []

    def make(**kwargs: object) -> VirtualUsbPrinter:
        printer = VirtualUsbPrinter(sysfs, tmp_path / "dev", **kwargs)  # type: ignore[arg-type]
        made.append(printer)
        return printer

    yield make
    for printer in made:
        printer.close()


@pytest.fixture
def start_service(tmp_path: Path) -> Iterator[Callable[..., ServiceThread]]:
    """Start the real service in a thread with the given printers; stopped after the test."""
    services: list[ServiceThread] = []

    def start(printers: list[Mapping[str, object]], **kwargs: object) -> ServiceThread:
        service = ServiceThread(tmp_path, printers, **kwargs)  # type: ignore[arg-type]
        services.append(service)
        return service.start()

    yield start
    for service in services:
        service.stop()


# -- umdns's `ubus`, as OpenWrt answers it (umdns cannot run here) -----------------------------
@pytest.fixture
def umdns_dir(tmp_path: Path) -> Path:
    path = tmp_path / "etc-umdns"
    path.mkdir()
    return path


@pytest.fixture
def ubus(tmp_path: Path, umdns_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Ubus:
    stand_in = Ubus(tmp_path, umdns_dir)
    monkeypatch.setenv("PATH", f"{stand_in.bin}:/usr/bin:/bin")
    # No system bus: `auto` must not find the machine's avahi (if it has one).
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", f"unix:path={tmp_path}/no-bus")
    return stand_in
