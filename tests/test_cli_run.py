"""`supervisorctl run` as a real process: start-up errors, signals, exit codes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from harness import Log, daemon_defaults, free_port, send_job, service_process, write_config

from supervisor.lab.virtual import VirtualPrinter


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "supervisor", *args], capture_output=True,
                          text=True, timeout=30, check=False, env=env)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_the_service_with_exit_0_after_the_job(
        sig: signal.Signals, tmp_path: Path, printer: VirtualPrinter) -> None:
    port = free_port()
    log = Log(tmp_path / "events.jsonl")
    with service_process(tmp_path, [{"name": "lp", "device": str(printer.path),
                                     "port": port}]) as proc:
        log.wait_for("listener_started")
        conn = socket.create_connection(("127.0.0.1", port), timeout=10)
        conn.sendall(b"before the signal, ")
        printer.wait_for_bytes(19)
        proc.send_signal(sig)
        log.wait_for("daemon_stopping")
        conn.sendall(b"after it")
        conn.shutdown(socket.SHUT_WR)
        assert conn.recv(1) == b""
        conn.close()
        assert proc.wait(timeout=20) == 0
    assert printer.paper == b"before the signal, after it"
    events = [e["event"] for e in log.events()]
    assert events.index("daemon_stopping") < events.index("job_finished")
    assert log.events("job_finished")[0]["bytes_in"] == len(printer.paper)


def test_invalid_config_is_a_fatal_start_up_error(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[daemon]\nbase_port = "ninety-one hundred"\n', encoding="utf-8")
    result = run_cli("run", "--config", str(config))
    assert result.returncode == 1
    assert f"{config}:2: daemon: base_port: must be an integer" in result.stderr


def test_missing_named_config_is_a_fatal_start_up_error(tmp_path: Path) -> None:
    result = run_cli("--config", str(tmp_path / "nope.toml"), "run")
    assert result.returncode == 1
    assert "nope.toml" in result.stderr and "does not exist" in result.stderr


def test_unwritable_log_file_is_a_fatal_start_up_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("", encoding="utf-8")
    config = tmp_path / "c.toml"
    config.write_text(f'[daemon]\nlog_file = "{blocker}/events.jsonl"\nevent_source = "none"\n',
                      encoding="utf-8")
    result = run_cli("run", "--config", str(config))
    assert result.returncode == 1
    assert "cannot write the log file" in result.stderr


def test_static_printer_absent_at_start_is_listed_but_not_listening(
        tmp_path: Path, printer: VirtualPrinter) -> None:
    port, missing_port = free_port(), free_port()
    log = Log(tmp_path / "events.jsonl")
    with service_process(tmp_path, [
            {"name": "here", "device": str(printer.path), "port": port},
            {"name": "gone", "device": str(tmp_path / "dev/usb/lp7"), "port": missing_port},
    ]) as proc:
        log.wait_for("listener_started", printer="here")
        send_job(port, b"ok")
        assert printer.wait_for_bytes(2) == b"ok"
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", missing_port), timeout=5)
        assert log.events(printer="gone") == []
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0


def test_help_works_for_every_command() -> None:
    for command in ([], ["run"], ["notify"], ["status"], ["logs"], ["check-config"],
                    ["firmware"], ["migrate-p910nd"], ["demo"]):
        result = run_cli(*command, "--help")
        assert result.returncode == 0, command
        assert "usage: supervisorctl" in result.stdout


def test_an_event_source_that_cannot_open_is_fatal_and_leaves_no_socket(tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.toml", daemon_defaults(tmp_path, event_source="udev"), [])
    env = {**os.environ, "PATH": ""}  # any start-up error will do: make pyudev's import fail
    env["PYTHONPATH"] = str(tmp_path / "shadow")
    (tmp_path / "shadow").mkdir()
    (tmp_path / "shadow" / "pyudev.py").write_text("raise ImportError('no libudev here')\n")
    result = run_cli("run", "--config", str(config), env=env)
    assert result.returncode == 1
    assert "cannot open the udev event source" in result.stderr and "event_source" in result.stderr
    assert not (tmp_path / "control.sock").exists()
