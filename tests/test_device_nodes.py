"""Only a character device (or a FIFO, for tests and benchmarks) is opened as a printer: a
`device` that is a file, a symlink to one, or a directory is refused by check-config, never
`ready` in the service, and never opened for a job, so not a byte is written to it."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from harness import ServiceThread, free_port, send_job, wait_until

from supervisor.core.devices import node_refusal
from supervisor.lab.virtual import VirtualPrinter
from supervisor.workers.device import DeviceOpenError, open_device

CONTENT = b"root:x:0:0:root:/root:/bin/bash\n" * 50  # a copy of a file nobody should print on


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    path = tmp_path / "passwd-copy"
    path.write_bytes(CONTENT)
    return path


@pytest.fixture
def link_to_copy(tmp_path: Path, copy: Path) -> Path:
    link = tmp_path / "lp-link"
    link.symlink_to(copy)
    return link


def check_config(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "supervisor", "check-config", str(path)],
                          capture_output=True, text=True, timeout=30, check=False)


# -- the pure decision ------------------------------------------------------------------------
@pytest.mark.parametrize(("mode", "refused"), [
    (0o020660, None),  # a character device: /dev/usb/lp0
    (0o010644, None),  # a FIFO: what the tests and benchmarks print to
    (0o100644, "a regular file"),
    (0o040755, "a directory"),
    (0o060660, "a block device"),
    (0o140755, "a socket"),
])
def test_node_refusal(mode: int, refused: str | None) -> None:
    why = node_refusal(Path("/x/lp0"), mode)
    if refused is None:
        assert why is None
    else:
        assert why is not None and why.startswith(f"/x/lp0 is {refused}, not a character device")


# -- check-config -----------------------------------------------------------------------------
def test_check_config_refuses_a_device_that_is_not_a_character_device(
        tmp_path: Path, link_to_copy: Path) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    good = (f'[[printer]]\nname = "later"\ndevice = "{tmp_path}/dev/usb/lp9"\n\n'  # lines 1-3
            f'[[printer]]\nname = "fifo"\ndevice = "{fifo}"\n\n'  # 5-7
            '[[printer]]\nname = "null"\ndevice = "/dev/null"\n')  # 9-11
    config = tmp_path / "config.toml"
    config.write_text(good)
    result = check_config(config)
    assert result.returncode == 0, result.stderr  # not there yet (plugged later), FIFO, char
    assert "device" not in result.stderr

    config.write_text(good + f'\n[[printer]]\nname = "file"\ndevice = "{link_to_copy}"\n'  # 13-15
                      f'\n[[printer]]\nname = "folder"\ndevice = "{folder}"\n')  # 17-19
    result = check_config(config)
    assert result.returncode == 2
    problems = [line.strip() for line in result.stderr.splitlines()[1:]]
    assert problems == [
        f"{config}:15: printer 'file': device: {link_to_copy} is a regular file, "
        "not a character device" + problems[0].split("not a character device", 1)[1],
        f"{config}:19: printer 'folder': device: {folder} is a directory, "
        "not a character device" + problems[1].split("not a character device", 1)[1],
    ]
    assert "/dev/usb/lp0" in problems[0]  # says what a device looks like


def test_check_config_refuses_it_in_the_uci_form_too(tmp_path: Path) -> None:
    config = tmp_path / "printer-supervisor"
    config.write_text(f"config printer 'desk'\n\toption device '{tmp_path}'\n")
    result = check_config(config)
    assert result.returncode == 2
    assert f"{config}:2: printer 'desk': device: {tmp_path} is a directory" in result.stderr


# -- opening ----------------------------------------------------------------------------------
def test_open_device_refuses_a_file_at_once_and_leaves_it_alone(
        tmp_path: Path, copy: Path, link_to_copy: Path) -> None:
    for path in (copy, link_to_copy, tmp_path):
        with pytest.raises(DeviceOpenError, match="not a character device"):
            asyncio.run(asyncio.wait_for(open_device(path, bidirectional=True), 5.0))
    assert copy.read_bytes() == CONTENT


def test_open_device_follows_a_symlink_to_a_character_device(
        tmp_path: Path, printer: VirtualPrinter) -> None:
    link = tmp_path / "by-id"
    link.symlink_to(printer.path)
    opened = asyncio.run(asyncio.wait_for(open_device(link, bidirectional=True), 5.0))
    try:
        os.write(opened.fd, b"ok")
        assert opened.readable
        assert printer.wait_for_bytes(2) == b"ok"
    finally:
        os.close(opened.fd)


# -- the service ------------------------------------------------------------------------------
#: A uevent the service rescans on (no event source runs in these tests).
RESCAN_HINT = {"ACTION": "change", "SUBSYSTEM": "usbmisc", "DEVNAME": "usb/lp0",
               "DEVPATH": "/devices/virtual/usbmisc/lp0"}


def has_error(service: ServiceThread, name: str) -> Callable[[], dict[str, Any] | None]:
    def check() -> dict[str, Any] | None:
        status: dict[str, Any] = service.status(name)
        return status if status["error"] else None
    return check


def test_a_file_or_a_directory_as_device_is_never_ready(
        tmp_path: Path, copy: Path, link_to_copy: Path,
        start_service: Callable[..., ServiceThread]) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    ports = {"file": free_port(), "folder": free_port()}
    service = start_service([
        {"name": "file", "device": str(link_to_copy), "port": ports["file"],
         "bidirectional": True},
        {"name": "folder", "device": str(folder), "port": ports["folder"]},
    ])
    for name, kind in (("file", "a regular file"), ("folder", "a directory")):
        status = wait_until(has_error(service, name), what=f"{name}'s error")
        assert status["state"] == "absent"
        assert f"is {kind}, not a character device" in status["error"]
        with pytest.raises(ConnectionRefusedError):  # not served: nothing listens
            socket.create_connection(("127.0.0.1", ports[name]), timeout=5).close()
    assert copy.read_bytes() == CONTENT
    assert service.log.events("listener_started") == []

    folder.rmdir()  # gone: no longer an error, just a printer not plugged
    assert service.notify(RESCAN_HINT) == {"ok": True}
    wait_until(lambda: service.status("folder")["error"] is None, what="the error cleared")
    assert service.status("folder")["state"] == "absent"
    assert service.status("file")["error"] is not None


def test_a_node_replaced_by_a_file_is_not_written_nor_read_back(
        tmp_path: Path, copy: Path, printer: VirtualPrinter,
        start_service: Callable[..., ServiceThread]) -> None:
    link = tmp_path / "lp-by-id"
    link.symlink_to(printer.path)  # a symlink to a real character device (a pty) serves
    port = free_port()
    service = start_service([{"name": "lp", "device": str(link), "port": port,
                              "bidirectional": True}])
    service.wait_state("lp", "ready")
    service.log.wait_for("listener_started")  # ready comes first, then the bind
    send_job(port, b"first")
    assert printer.wait_for_bytes(5) == b"first"

    # Swapped behind the service's back (no event, no rescan): the job's open must refuse it.
    swap = tmp_path / "swap"
    swap.symlink_to(copy)
    os.replace(swap, link)
    try:
        reply = send_job(port, b"X")
    except ConnectionResetError:  # a job whose device cannot be opened ends with a reset
        reply = b""
    assert reply == b""
    assert copy.read_bytes() == CONTENT
    failed = service.log.wait_for("job_failed", printer="lp")
    assert "is a regular file, not a character device" in failed["error"]

    # The next rescan takes it away, saying why.
    assert service.notify(RESCAN_HINT) == {"ok": True}
    status = service.wait_state("lp", "absent")
    assert status["error"] is not None and "is a regular file" in status["error"]
    assert copy.read_bytes() == CONTENT
