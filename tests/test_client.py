"""The thin client: the config's control socket found without tomllib when one line says it
(tomllib otherwise), requests encoded exactly as json.dumps encodes them, and notify's fast path
past argparse behaving as the parsed one."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest
from harness import ServiceThread

from supervisor.ctl.client import UNSURE, control_socket_line, encode, socket_path
from supervisor.protocol import DEFAULT_SOCKET

OPENWRT = Path(__file__).resolve().parent.parent / "units" / "openwrt" / "config.toml"

SURE = [
    ('[daemon]\ncontrol_socket = "/run/x.sock"\n', "/run/x.sock"),
    ("[daemon]\ncontrol_socket = '/run/x.sock'\n", "/run/x.sock"),
    ('# control_socket = "/old"\n[daemon]\n  control_socket="/run/x.sock"  # here\n',
     "/run/x.sock"),
    ('[daemon]  # the service\nauto = true\ncontrol_socket = "/run/é.sock"\n[[printer]]\n',
     "/run/é.sock"),
    ('[daemon]\nlog_file = ""\n', None),
    ("", None),
]
UNSURE_CASES = [
    '[daemon]\ncontrol_socket = "/run/\\u0078.sock"\n',  # an escape
    'daemon.control_socket = "/run/x.sock"\n',  # a dotted key
    'daemon = { control_socket = "/run/x.sock" }\n',  # an inline table
    '[daemon]\n"control_socket" = "/run/x.sock"\n',  # a quoted key
    '[ daemon ]\ncontrol_socket = "/run/x.sock"\n',  # a header spelled otherwise
    '[daemon]\ncontrol_socket = "/a"\ncontrol_socket = "/b"\n',  # twice (invalid TOML)
    '[daemon]\nlocation = """\ncontrol_socket = "/no"\n"""\n',  # inside a multi-line string
    '[[printer]]\ncontrol_socket = "/run/x.sock"\n',  # not in [daemon]
    '[daemon]\ncontrol_socket = "/run/x.sock" trailing\n',  # not TOML
    '[daemon]\ncontrol_socket = 5\n',  # not a string
]


@pytest.mark.parametrize(("text", "expected"), SURE)
def test_one_plain_line_is_read_as_tomllib_reads_it(text: str, expected: str | None) -> None:
    assert control_socket_line(text.encode()) == expected
    assert tomllib.loads(text).get("daemon", {}).get("control_socket") == expected


@pytest.mark.parametrize("text", UNSURE_CASES)
def test_anything_else_is_left_to_tomllib(text: str) -> None:
    assert control_socket_line(text.encode()) is UNSURE


def test_openwrts_example_config_is_read_by_the_line_reader() -> None:
    text = OPENWRT.read_bytes()
    assert control_socket_line(text) == tomllib.loads(text.decode())["daemon"]["control_socket"]


@pytest.mark.parametrize(("text", "expected"), [
    ('daemon.control_socket = "/run/dotted.sock"\n', "/run/dotted.sock"),
    ('[daemon]\ncontrol_socket = "/run/\\u0078.sock"\n', "/run/x.sock"),
    ('[daemon]\ncontrol_socket = "/a"\ncontrol_socket = "/b"\n', DEFAULT_SOCKET),  # broken
    ('[daemon]\ncontrol_socket = 5\n', DEFAULT_SOCKET),
    ("daemon = 5\ncontrol_socket = 1\n", DEFAULT_SOCKET),
])
def test_socket_path_falls_back_to_tomllib(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           text: str, expected: str) -> None:
    monkeypatch.delenv("PRINTER_SUPERVISOR_SOCKET", raising=False)
    config = tmp_path / "config.toml"
    config.write_text(text, encoding="utf-8")
    assert socket_path(None, str(config)) == expected


@pytest.mark.parametrize("message", [
    {"v": 1, "cmd": "notify", "event": {"ACTION": "add", "DEVPATH": "/devices/pci0/usb2/2-1",
                                       "PRODUCT": "3f0/4117/100", "SEQNUM": "1000"}},
    {"v": 1, "cmd": "status"},
    {"v": 1, "cmd": "notify", "event": {}},
    {"v": 1, "cmd": "notify", "event": {"DEVNAME": 'a "quoted" \\ name'}},
    {"v": 1, "cmd": "notify", "event": {"DEVNAME": "tab\there", "MODEL": "é"}},
    {"v": True, "cmd": None, "list": [1, 2]},
])
def test_requests_are_exactly_what_json_dumps_makes(message: dict[str, object]) -> None:
    assert encode(message) == json.dumps(message)


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "supervisor", *args], capture_output=True,
                          text=True, timeout=30, check=False, env=env)


def test_the_fast_notify_path_answers_as_the_parsed_one(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[daemon]\ncontrol_socket = "{tmp_path / "none.sock"}"\n')
    env = {"PATH": "/usr/bin:/bin", "PRINTER_SUPERVISOR_CONFIG": str(config)}
    fast = run("notify", "ACTION=add", env=env)
    parsed = run("--config", str(config), "notify", "ACTION=add", env=env)
    assert fast.returncode == parsed.returncode == 3
    assert fast.stderr == parsed.stderr
    assert f"nothing listens on {tmp_path / 'none.sock'}" in fast.stderr
    bad = run("notify", "COLOUR=blue", env=env)
    assert bad.returncode == 2 and "'COLOUR=blue' is not KEY=VALUE" in bad.stderr
    helped = run("notify", "--help", env=env)
    assert helped.returncode == 0 and "usage: supervisorctl notify" in helped.stdout


def test_the_shims_path_imports_neither_argparse_nor_tomllib_nor_json(
        start_service: Callable[..., ServiceThread]) -> None:
    service = start_service([])
    env = {"PATH": "/usr/bin:/bin", "PRINTER_SUPERVISOR_CONFIG": str(service.config),
           "ACTION": "change", "DEVPATH": "/devices/x", "SUBSYSTEM": "usb",
           "DEVTYPE": "usb_device"}
    code = ("import sys; from supervisor.ctl.cli import main; rc = main(['notify']); "
            "print(rc, *(m in sys.modules for m in ('argparse', 'tomllib', 'json', 'socket')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=30, check=False, env=env)
    assert done.stdout.split() == ["0", "False", "False", "False", "False"], done.stderr
    service.log.wait_for("hotplug_received", devpath="/devices/x")
