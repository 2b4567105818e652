"""supervisorctl: argument parsing, rendering and exit codes; heavy imports only where used."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from supervisor.config import Settings

EXIT_OK = 0
EXIT_FATAL = 1
EXIT_USAGE = 2

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
