"""supervisorctl: argument parsing, rendering and exit codes; heavy imports only where used."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs notify 2 ms
if TYPE_CHECKING:
    from supervisor.config import Settings

EXIT_OK = 0
EXIT_FATAL = 1
EXIT_USAGE = 2
EXIT_NOT_RUNNING = 3
CLIENT_TIMEOUT_S = 2.0  # notify runs in OpenWrt's one-at-a-time hotplug chain: never hang it

DESCRIPTION = """\
printer-supervisor: USB printers as network printers (AppSocket/JetDirect, port 9100+),
driven by hotplug events, with firmware push and structured logs."""


def build_parser() -> argparse.ArgumentParser:
    from supervisor import __version__

    parser = argparse.ArgumentParser(prog="supervisorctl", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--config", metavar="PATH",
        help="configuration file (default: $PRINTER_SUPERVISOR_CONFIG, else "
             "/etc/printer-supervisor/config.toml; no file means the defaults)")
    parser.add_argument(
        "--socket", metavar="PATH",
        help="control socket of the running service (default: the config's control_socket, "
             "else /run/printer-supervisor/control.sock)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    run = commands.add_parser(
        "run", help="run the service in the foreground",
        description="Run the service in the foreground (systemd or procd supervise it). "
                    "Exits 0 on SIGTERM/SIGINT after running jobs finish, 1 on a fatal "
                    "start-up error.")
    run.add_argument("--config", metavar="PATH", default=argparse.SUPPRESS,
                     help="configuration file")
    run.set_defaults(handler=cmd_run)

    notify = commands.add_parser(
        "notify", help="send one hotplug event to the running service",
        description="Send one hotplug event to the running service. With no KEY=VALUE "
                    "arguments the event is read from the environment (the hotplug variables "
                    "ACTION DEVPATH SUBSYSTEM DEVTYPE PRODUCT TYPE INTERFACE DEVNAME DEVICENAME "
                    "MAJOR MINOR BUSNUM DEVNUM SEQNUM DRIVER; nothing else is sent). Exits 0 "
                    "when accepted, 2 on bad usage or when the service rejects it, 3 when the "
                    "service is not running (it rescans when it starts).")
    notify.add_argument("pairs", nargs="*", metavar="KEY=VALUE", help="the event's variables")
    notify.set_defaults(handler=cmd_notify)

    status = commands.add_parser(
        "status", help="show the printers and their states",
        description="Show every printer: state, port, device, product, jobs, last error. "
                    "Exits 0, or 3 when the service is not running.")
    status.add_argument("--json", action="store_true", help="print the JSON of SPEC §6")
    status.set_defaults(handler=cmd_status)

    check = commands.add_parser(
        "check-config", help="validate a configuration and print the effective printers",
        description="Validate a configuration file and print the printers it defines. "
                    "Exits 0 when valid, 2 when not (each problem with its key and line).")
    check.add_argument("path", nargs="?", metavar="PATH",
                       help="file to check (default: as for --config)")
    check.set_defaults(handler=cmd_check_config)

    demo = commands.add_parser(
        "demo", help="play the whole story on a virtual printer (no hardware, no root)",
        description="Start the service in a temporary directory with a virtual printer "
                    "(a pty), print a job through TCP, show what arrived, the status and "
                    "the log, and stop. Exits 0 when every step worked.")
    demo.set_defaults(handler=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `supervisorctl`; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        return 130


# -- run -----------------------------------------------------------------------------------------
def _load(path_arg: str | None, command: str) -> Settings | int:
    from supervisor.config import ConfigError, config_path, load_settings

    path, required = config_path(path_arg, os.environ)
    try:
        return load_settings(path, required=required)
    except ConfigError as exc:
        print(f"supervisorctl {command}: {path} is not a valid configuration:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem.render(exc.source)}", file=sys.stderr)
        return EXIT_USAGE


def cmd_run(args: argparse.Namespace) -> int:
    import asyncio

    from supervisor.observe.logs import configure_logging

    settings = _load(args.config, "run")
    if isinstance(settings, int):
        return EXIT_FATAL
    daemon = settings.daemon
    try:
        configure_logging(daemon.log_file, max_bytes=daemon.log_max_bytes)
    except OSError as exc:
        print(f"supervisorctl run: cannot write the log file {daemon.log_file}: "
              f"{exc.strerror}. Fix its directory's permissions or set [daemon] log_file "
              "(\"\" logs to stderr only).", file=sys.stderr)
        return EXIT_FATAL
    return asyncio.run(_serve(settings))


async def _serve(settings: Settings) -> int:
    import asyncio
    import signal

    from supervisor.app import Service

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await Service(settings).run(stop)
    return EXIT_OK


# -- talking to the service ----------------------------------------------------------------------
class ServiceUnreachable(Exception):
    """The request was not delivered; the message says why in a sentence."""


def socket_path(args: argparse.Namespace) -> str:
    """--socket, else the configuration's control_socket, else the default path."""
    from supervisor import protocol

    if args.socket:
        return str(args.socket)
    if os.environ.get(protocol.SOCKET_ENV):
        return os.environ[protocol.SOCKET_ENV]
    config = args.config or os.environ.get(protocol.CONFIG_ENV) or protocol.DEFAULT_CONFIG
    try:
        import tomllib

        with open(config, "rb") as handle:
            path = tomllib.load(handle).get("daemon", {}).get("control_socket")
    except (OSError, ValueError, AttributeError):
        path = None  # check-config explains a broken file; here the default will do
    return path if isinstance(path, str) and path else protocol.DEFAULT_SOCKET


def request(path: str, message: dict[str, object]) -> dict[str, object]:
    """One request, one reply (SPEC §7)."""
    import json
    import socket

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(CLIENT_TIMEOUT_S)
        try:
            conn.connect(path)
        except (FileNotFoundError, ConnectionRefusedError):
            raise ServiceUnreachable(f"printer-supervisor is not running (nothing listens on "
                                     f"{path}).") from None
        except PermissionError:
            raise ServiceUnreachable(f"not allowed to use {path}: run as root or as a member "
                                     "of the service's group.") from None
        try:
            conn.sendall(json.dumps(message).encode() + b"\n")
            reply = b""
            while not reply.endswith(b"\n") and (chunk := conn.recv(65536)):
                reply += chunk
        except OSError as exc:
            raise ServiceUnreachable(f"printer-supervisor did not answer on {path}: "
                                     f"{exc}.") from None
    try:
        answer = json.loads(reply)
    except ValueError:
        raise ServiceUnreachable(f"printer-supervisor gave no valid answer on {path}.") from None
    if not isinstance(answer, dict):
        raise ServiceUnreachable(f"printer-supervisor gave no valid answer on {path}.")
    return answer


def cmd_notify(args: argparse.Namespace) -> int:
    from supervisor.protocol import HOTPLUG_KEYS, VERSION

    if args.pairs:
        event = {}
        for pair in args.pairs:
            key, sep, value = pair.partition("=")
            if not sep or key not in HOTPLUG_KEYS:
                print(f"supervisorctl notify: {pair!r} is not KEY=VALUE with KEY one of "
                      f"{' '.join(HOTPLUG_KEYS)}", file=sys.stderr)
                return EXIT_USAGE
            event[key] = value
    else:
        event = {key: os.environ[key] for key in HOTPLUG_KEYS if key in os.environ}
    try:
        answer = request(socket_path(args), {"v": VERSION, "cmd": "notify", "event": event})
    except ServiceUnreachable as exc:
        print(f"supervisorctl notify: {exc} The event was not delivered; the service rescans "
              "the devices when it starts.", file=sys.stderr)
        return EXIT_NOT_RUNNING
    if answer.get("ok") is not True:
        print(f"supervisorctl notify: rejected: {answer.get('error')}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    import json

    from supervisor.protocol import VERSION

    try:
        answer = request(socket_path(args), {"v": VERSION, "cmd": "status"})
    except ServiceUnreachable as exc:
        print(f"supervisorctl status: {exc}", file=sys.stderr)
        return EXIT_NOT_RUNNING
    answer.pop("ok", None)
    if args.json:
        print(json.dumps(answer, indent=2))
        return EXIT_OK
    print(render_status(answer))
    return EXIT_OK


def render_status(document: dict[str, object]) -> str:
    """The status table a person reads."""
    printers = document.get("printers")
    rows: list[tuple[str, ...]] = [
        ("NAME", "STATE", "PORT", "DEVICE", "PRODUCT", "JOBS", "SINCE", "ERROR")]
    for p in printers if isinstance(printers, list) else []:
        rows.append(tuple(_cell(p.get(key)) for key in (
            "name", "state", "port", "device", "product", "jobs", "since", "error")))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)) + "  " +
             row[-1] for row in rows]
    if len(rows) == 1:
        lines.append("(no printers yet)")
    return "\n".join(line.rstrip() for line in lines)


def _cell(value: object) -> str:
    return "-" if value is None else str(value)


# -- check-config --------------------------------------------------------------------------------
def cmd_check_config(args: argparse.Namespace) -> int:
    from supervisor.core.ports import assign_ports

    settings = _load(args.path or args.config, "check-config")
    if isinstance(settings, int):
        return settings
    d = settings.daemon
    print(f"configuration: {settings.source or 'defaults (no file)'}: valid")
    print(f"  listen on {', '.join(d.bind)}; event source {d.event_source}; "
          f"log {d.log_file or 'stderr only'}")
    ports = assign_ports(settings.printers, d.base_port)
    if not settings.printers:
        print("printers: none configured")
    for p in settings.printers:
        origin = "" if p.port is not None else " (assigned)"
        print(f"printer {p.name}: port {ports[p.name]}{origin}")
        if p.device:
            print(f"  device        {p.device}" + ("  (present while the node exists)"
                                                    if p.is_static else ""))
        if p.match:
            print(f"  match         {p.match}")
        if p.serial:
            print(f"  serial        {p.serial}")
        print(f"  bidirectional {'yes' if p.bidirectional else 'no'}")
        print(f"  firmware      {p.firmware}")
        print(f"  allow         {', '.join(map(str, p.allow)) if p.allow else 'everyone'}")
        print(f"  idle_timeout  {p.idle_timeout:g} s")
    if d.auto:
        print(f"auto: other USB printers are served too, on the next free port from "
              f"{d.base_port}")
    return EXIT_OK


# -- demo ----------------------------------------------------------------------------------------
def cmd_demo(args: argparse.Namespace) -> int:
    from supervisor.demo import run_demo

    return run_demo()


if __name__ == "__main__":
    sys.exit(main())
