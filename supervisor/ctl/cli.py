"""supervisorctl: argument parsing, rendering and exit codes; heavy imports only where used."""

from __future__ import annotations

import os
import sys

# argparse (with shutil, locale and gettext behind it) is imported only by build_parser: the
# hotplug shims' `notify KEY=VALUE...` goes past it (main's fast path).
TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs notify 2 ms
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence

    from supervisor.config.settings import Settings

EXIT_OK = 0
EXIT_FATAL = 1
EXIT_USAGE = 2
EXIT_NOT_RUNNING = 3

DESCRIPTION = """\
printer-supervisor: USB printers as network printers (AppSocket/JetDirect, port 9100+),
driven by hotplug events, with firmware push and structured logs."""


def build_parser() -> argparse.ArgumentParser:
    import argparse

    from supervisor import __version__

    # Debian's package installs the command as printer-supervisorctl (Supervisor owns the name).
    called = os.path.basename(sys.argv[0])
    prog = "printer-supervisorctl" if called == "printer-supervisorctl" else "supervisorctl"
    parser = argparse.ArgumentParser(prog=prog, description=DESCRIPTION)
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

    logs = commands.add_parser(
        "logs", help="show the service's log, filtered; -f follows it",
        description="Show the last lines of the service's JSON log ([daemon] log_file), "
                    "rotated files included (.1 .2 .3 and logrotate's .gz). Times are UTC. "
                    "Exits 0 (also on Ctrl-C and when there is no log yet), 2 on a bad option "
                    "or when the service logs to stderr only, 1 when the log is unreadable.")
    logs.add_argument("--config", metavar="PATH", default=argparse.SUPPRESS,
                      help="configuration file")
    logs.add_argument("-f", "--follow", action="store_true",
                      help="then print new lines as they come, across rotations (Ctrl-C ends)")
    logs.add_argument("-n", "--lines", type=_line_count, metavar="N",
                      help="how many of the last matching lines to show: a number (0 for "
                           "none, e.g. with -f) or 'all' (default: 20, or all with --since)")
    logs.add_argument("--since", metavar="T",
                      help="only lines from T on: ISO 8601 (2026-11-24T00:22Z; UTC unless a "
                           "zone is given) or a duration before now (30s, 10m, 2h, 1d)")
    logs.add_argument("--printer", metavar="NAME", help="only this printer (globs work: 'hp*')")
    logs.add_argument("--event", metavar="NAME",
                      help="only this event (globs work: 'job_*')")
    logs.add_argument("--level", metavar="L",
                      help="only this level and above: debug, info, warning, error, critical")
    logs.add_argument("--json", action="store_true",
                      help="print the matching lines unchanged, one JSON object each (for jq)")
    logs.set_defaults(handler=cmd_logs)

    migrate = commands.add_parser(
        "migrate-p910nd", help="turn p910nd's UCI configuration into [[printer]] entries",
        description="Read OpenWrt's p910nd configuration (UCI) and print the equivalent "
                    "printer-supervisor configuration, with the OpenWrt package's paths, as "
                    "TOML or (--format uci) as /etc/config/printer-supervisor: one printer per "
                    "`config p910nd` section (disabled ones commented out). What p910nd's "
                    "hotplug script wrote is read too: usbvidpid becomes match, and its "
                    "driver file the printer's firmware if the firmware catalog says the "
                    "printer needs one and the file is there. Each option that cannot be "
                    "carried over is reported on stderr with its section. Exits 0 when "
                    "converted, 2 when the file cannot be read or has no p910nd sections.")
    migrate.add_argument("path", nargs="?", metavar="PATH", default="/etc/config/p910nd",
                         help="p910nd's UCI file (default: /etc/config/p910nd)")
    migrate.add_argument("-o", "--output", metavar="FILE",
                         help="write the configuration to FILE instead of stdout")
    migrate.add_argument("--format", choices=["toml", "uci"], default="toml",
                         help="toml (config.toml) or uci (/etc/config/printer-supervisor, "
                              "OpenWrt's form); default toml")
    migrate.add_argument("--force", action="store_true",
                         help="with -o: overwrite FILE if it exists")
    migrate.set_defaults(handler=cmd_migrate_p910nd)

    firmware = commands.add_parser(
        "firmware", help="list the firmware catalog and which files are present",
        description="List the printers that need firmware pushed (the catalog): model, "
                    "PRODUCT glob, file, and where the file was found in the configuration's "
                    "firmware_dirs, or that it is missing. Exits 0.")
    firmware.add_argument("action", nargs="?", choices=["list"], default="list",
                          help="what to do (only: list)")
    firmware.add_argument("-v", "--verbose", action="store_true",
                          help="also say why each model needs its firmware")
    firmware.add_argument("--config", metavar="PATH", default=argparse.SUPPRESS,
                          help="configuration file naming firmware_dirs")
    firmware.set_defaults(handler=cmd_firmware)

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
    words = sys.argv[1:] if argv is None else list(argv)
    if words[:1] == ["notify"] and not any(w.startswith("-") for w in words[1:]):
        # The hotplug shims' path, run for every USB event on a router: no parser to build.
        # Anything with an option (--socket, --help, ...) takes the full parser below.
        return notify(words[1:], socket=None, config=None)
    if words[:1] == ["run"] and (config := _run_config(words[1:])) is not None:
        # The service's own start (procd, systemd): argparse, and what building the whole
        # parser imports, would stay in a router's memory for the service's life (1 MiB).
        return run_service(config or None)
    parser = build_parser()
    args = parser.parse_args(words)
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        return 130


# -- run -----------------------------------------------------------------------------------------
def _load(path_arg: str | None, command: str, *, inspect_devices: bool = False) -> Settings | int:
    from supervisor.config.loader import config_path, load_settings
    from supervisor.config.settings import ConfigError

    path, required = config_path(path_arg, os.environ)
    try:
        return load_settings(path, required=required, inspect_devices=inspect_devices)
    except ConfigError as exc:
        print(f"supervisorctl {command}: {path} is not a valid configuration:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem.render(exc.source)}", file=sys.stderr)
        return EXIT_USAGE


def _run_config(words: Sequence[str]) -> str | None:
    """`run`'s words read without argparse: the --config path ("" for none), or None when they
    are anything else (--help, a mistake), for the full parser to answer."""
    if not words:
        return ""
    if len(words) == 2 and words[0] == "--config" and words[1] and words[1][0] != "-":
        return words[1]
    if len(words) == 1 and words[0].startswith("--config=") and len(words[0]) > 9:
        return words[0][9:]
    return None


def cmd_run(args: argparse.Namespace) -> int:
    return run_service(args.config)


def run_service(config: str | None) -> int:
    """`supervisorctl run`: the service in the foreground until SIGTERM or SIGINT."""
    # asyncio imports ssl (OpenSSL: 4.5 MB of RSS) only to offer TLS, which this service never
    # speaks; on a 128 MB router that memory is worth refusing.
    sys.modules.setdefault("ssl", None)  # type: ignore[arg-type]
    import asyncio

    from supervisor.observe.logs import configure_logging, flush_logging

    settings = _load(config, "run")
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
    try:
        return asyncio.run(_serve(settings))
    finally:
        flush_logging()  # the last loop turn's lines


async def _serve(settings: Settings) -> int:
    import asyncio
    import signal

    from supervisor.app import Service, StartupError

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        service = Service(settings)
        loop.add_signal_handler(signal.SIGHUP, service.request_reload)
        await service.run(stop)
    except StartupError as exc:
        print(f"supervisorctl run: {exc}", file=sys.stderr)
        return EXIT_FATAL
    return EXIT_OK


# -- talking to the service ----------------------------------------------------------------------
def cmd_notify(args: argparse.Namespace) -> int:
    return notify(args.pairs, socket=args.socket, config=args.config)


def notify(pairs: Sequence[str], *, socket: str | None, config: str | None) -> int:
    """Send one hotplug event: from KEY=VALUE pairs, else from the environment."""
    from supervisor.ctl.client import ServiceUnreachable, request, socket_path
    from supervisor.protocol import HOTPLUG_KEYS, VERSION

    if pairs:
        event = {}
        for pair in pairs:
            key, sep, value = pair.partition("=")
            if not sep or key not in HOTPLUG_KEYS:
                print(f"supervisorctl notify: {pair!r} is not KEY=VALUE with KEY one of "
                      f"{' '.join(HOTPLUG_KEYS)}", file=sys.stderr)
                return EXIT_USAGE
            event[key] = value
    else:
        event = {key: os.environ[key] for key in HOTPLUG_KEYS if key in os.environ}
    try:
        answer = request(socket_path(socket, config),
                         {"v": VERSION, "cmd": "notify", "event": event})
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

    from supervisor.ctl.client import ServiceUnreachable, request, socket_path
    from supervisor.protocol import VERSION

    try:
        answer = request(socket_path(args.socket, args.config), {"v": VERSION, "cmd": "status"})
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
        ("NAME", "STATE", "PORT", "DEVICE", "PRODUCT", "JOBS", "SINCE", "MDNS", "ERROR")]
    notes: dict[int, list[str]] = {}  # below a printer's row: its running job, its stall
    for p in printers if isinstance(printers, list) else []:
        rows.append(tuple(_cell(p.get(key)) for key in (
            "name", "state", "port", "device", "product", "jobs", "since", "mdns", "error")))
        notes[len(rows) - 1] = _job_notes(p)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = []
    for number, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False))
                     + "  " + row[-1])
        lines += notes.get(number, [])
    if len(rows) == 1:
        lines.append("(no printers yet)")
    daemon = document.get("daemon")
    if isinstance(daemon, dict):
        if daemon.get("http"):
            lines.append(f"status page and metrics: http://{_cell(daemon['http'])}/ and /metrics")
        if daemon.get("metrics_file"):
            lines.append(f"metrics file: {_cell(daemon['metrics_file'])}")
        if daemon.get("error"):
            lines.append(f"service error: {_cell(daemon['error'])}")
    return "\n".join(line.rstrip() for line in lines)


def _job_notes(printer: dict[str, object]) -> list[str]:
    """The lines under a printer's row: the job it serves and how far it got, and a stall."""
    from supervisor.core.status import human_bytes as _size

    notes = []
    job = printer.get("job")
    if isinstance(job, dict):
        notes.append(f"  job from {_cell(job.get('client'))} since {_cell(job.get('since'))}: "
                     f"{_size(job.get('bytes_in'))} received, {_size(job.get('bytes_written'))} "
                     "written to the printer")
    if printer.get("stalled_since"):
        notes.append(f"  STALLED since {_cell(printer['stalled_since'])}: "
                     f"{_cell(printer.get('stall_reason'))}; the printer takes no data, the job "
                     "waits and goes on when it does")
    return notes


def _cell(value: object) -> str:
    """A value as the terminal may show it: what is not printable (a newline that would split
    the row, ESC that would reach the terminal) escaped as Python writes it, e.g. \\x1b."""
    text = "-" if value is None else str(value)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii")
                   for c in text)


# -- logs ----------------------------------------------------------------------------------------
_ALL_LINES = -1


def _line_count(text: str) -> int:
    import argparse

    if text == "all":
        return _ALL_LINES
    if not (text.isascii() and text.isdigit()):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of lines (or 'all')")
    return int(text)


def cmd_logs(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from supervisor.ctl import logview

    settings = _load(args.config, "logs")
    if isinstance(settings, int):
        return settings
    path = settings.daemon.log_file
    if path is None:
        print("supervisorctl logs: [daemon] log_file is \"\": the service logs to stderr only. "
              "Read it with `journalctl -u printer-supervisor` (systemd) or `logread` (OpenWrt), "
              "or set log_file.", file=sys.stderr)
        return EXIT_USAGE
    try:
        view = logview.Filter.from_options(printer=args.printer, event=args.event,
                                           level=args.level, since=args.since,
                                           now=datetime.now(UTC))
    except ValueError as exc:
        print(f"supervisorctl logs: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        exists = logview.log_exists(path)
    except PermissionError as exc:
        return _log_not_readable(exc)
    if not exists:
        print(f"supervisorctl logs: no log at {path} yet" + (
            "; waiting for it" if args.follow else
            " (the service writes it once it runs; check [daemon] log_file)"), file=sys.stderr)
        if not args.follow:
            return EXIT_OK
    if args.lines is None:  # like journalctl: --since shows all of it
        limit = logview.DEFAULT_LINES if args.since is None else None
    else:
        limit = None if args.lines == _ALL_LINES else args.lines
    try:
        with logview.Follower(path) as live:
            start = live.poll() if args.follow else None
            for line, record in logview.history(path, view, limit, start):
                print(line if args.json else logview.format_human(record))
            if args.follow:
                sys.stdout.flush()
                for line, record in logview.matching(logview.follow(live, stop=lambda: False),
                                                     view):
                    print(line if args.json else logview.format_human(record), flush=True)
    except KeyboardInterrupt:
        return EXIT_OK
    except PermissionError as exc:
        return _log_not_readable(exc)
    except BrokenPipeError:  # `logs | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return EXIT_OK


def _log_not_readable(exc: PermissionError) -> int:
    print(f"supervisorctl logs: not allowed to read {exc.filename}: run as root or as a "
          "member of the log's group.", file=sys.stderr)
    return EXIT_FATAL


# -- migrate-p910nd ------------------------------------------------------------------------------
def cmd_migrate_p910nd(args: argparse.Namespace) -> int:
    from supervisor.config.migrate import UciError, driver_files, parse_uci, to_toml, to_uci

    try:
        with open(args.path, "rb") as handle:  # bytes, as uci reads them (any byte in a value)
            text = handle.read()
    except OSError as exc:
        print(f"supervisorctl migrate-p910nd: cannot read {args.path}: {exc.strerror}. Name "
              "p910nd's UCI file (default /etc/config/p910nd).", file=sys.stderr)
        return EXIT_USAGE
    try:
        sections = parse_uci(text)
    except UciError as exc:
        print(f"supervisorctl migrate-p910nd: {args.path}:{exc.line}: {exc.message} (uci "
              "would refuse this file too; fix it first)", file=sys.stderr)
        return EXIT_USAGE
    if not any(s.type == "p910nd" for s in sections):
        print(f"supervisorctl migrate-p910nd: {args.path} has no `config p910nd` sections: "
              "nothing to convert. Is it p910nd's UCI file?", file=sys.stderr)
        return EXIT_USAGE
    convert = to_uci if args.format == "uci" else to_toml
    # The blobs p910nd's hotplug script pushed: one that is there becomes a firmware file.
    present = {path for path in driver_files(sections) if os.path.isfile(path)}
    migration = convert(sections, source=str(args.path), present=present)
    for note in migration.notes:
        print(note, file=sys.stderr)
    if args.output is None:
        sys.stdout.write(migration.text)
        return EXIT_OK
    try:
        with open(args.output, "w" if args.force else "x", encoding="utf-8") as handle:
            handle.write(migration.text)
    except FileExistsError:
        print(f"supervisorctl migrate-p910nd: {args.output} exists; add --force to overwrite "
              "it, or name another file.", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"supervisorctl migrate-p910nd: cannot write {args.output}: {exc.strerror}.",
              file=sys.stderr)
        return EXIT_FATAL
    print(f"wrote {args.output}; check it with: supervisorctl check-config {args.output}",
          file=sys.stderr)
    return EXIT_OK


# -- firmware ------------------------------------------------------------------------------------
def cmd_firmware(args: argparse.Namespace) -> int:
    settings = _load(args.config, "firmware")
    if isinstance(settings, int):
        return settings
    print(render_firmware(settings, verbose=args.verbose))
    return EXIT_OK


def render_firmware(settings: Settings, *, verbose: bool = False) -> str:
    """The catalog as a table: model, PRODUCT glob, file, and where the file is (or is not)."""
    import textwrap

    from supervisor.core.catalog import load_catalog
    from supervisor.workers.firmware import HOW_TO_OBTAIN, FirmwareMissing, find_firmware

    catalog, dirs = load_catalog(), settings.daemon.firmware_dirs
    searched = ", ".join(map(str, dirs)) or "no firmware_dirs configured"
    rows = [("MODEL", "PRODUCT", "FILE", "WHERE")]
    present = 0
    for entry in catalog:
        try:
            where = str(find_firmware(entry.file, dirs))
            present += 1
        except FirmwareMissing:
            where = f"missing (searched {searched})"
        rows.append((entry.model, entry.product, entry.file, where))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [f"firmware directories: {searched}"]
    for index, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False))
                     + "  " + row[3])
        if verbose and index > 0:
            lines += textwrap.wrap(catalog[index - 1].reason, 96, initial_indent="    ",
                                   subsequent_indent="    ")
    lines.append(f"{present} of {len(catalog)} present. How to obtain missing files: "
                 f"{HOW_TO_OBTAIN}"
                 + ("." if verbose else "; -v says why each model needs its firmware."))
    return "\n".join(lines)


def firmware_warnings(settings: Settings) -> list[str]:
    """One warning per firmware file a configured printer will need and that is missing."""
    from fnmatch import fnmatchcase

    from supervisor.core.catalog import load_catalog
    from supervisor.workers.firmware import FirmwareMissing, find_firmware

    warnings = []
    for p in settings.printers:
        wanted: dict[str, str] = {}  # file → how the printer comes to need it
        if p.firmware not in ("auto", "none"):
            wanted[p.firmware] = f'firmware "{p.firmware}"'
        elif p.firmware == "auto" and p.match:
            for entry in load_catalog():
                if entry.matches(p.match) or fnmatchcase(entry.product, p.match):
                    wanted.setdefault(entry.file, f"firmware auto (match {p.match} is "
                                                  f"{entry.model}, {entry.product})")
        for name, why in wanted.items():
            try:
                find_firmware(name, settings.daemon.firmware_dirs)
            except FirmwareMissing as exc:
                warnings.append(f"warning: printer {p.name}: {why}: {exc}; until it is there "
                                "the printer waits in firmware-needed")
    return warnings


# -- check-config --------------------------------------------------------------------------------
def cmd_check_config(args: argparse.Namespace) -> int:
    from supervisor.core.ports import assign_ports

    settings = _load(args.path or args.config, "check-config", inspect_devices=True)
    if isinstance(settings, int):
        return settings
    d = settings.daemon
    print(f"configuration: {settings.source or 'defaults (no file)'}: valid")
    print(f"  listen on {', '.join(d.bind)}; event source {d.event_source}; "
          f"log {d.log_file or 'stderr only'}")
    print(f"  mDNS/DNS-SD: {_mdns_summary(settings)}")
    for line in _metrics_summary(settings):
        print(f"  {line}")
    http = d.http_address
    ports = assign_ports(settings.printers, d.base_port, reserved=[http[1]] if http else [])
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
        print(f"  max_clients   {p.max_clients} waiting, {p.max_clients_per_address} per address")
        if d.mdns != "off":
            announced = (f'as "{p.mdns_name}"' if p.mdns_name else
                         "as \"<model> @ <host>\"") if p.mdns else "no (mdns = false)"
            where = p.location or d.location
            print(f"  mdns          {announced}" + (f", location \"{where}\""
                                                    if where and p.mdns else ""))
    if d.auto:
        print(f"auto: other USB printers are served too, on the next free port from "
              f"{d.base_port}")
    for warning in settings.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    for warning in firmware_warnings(settings):
        print(warning, file=sys.stderr)
    metrics_dir = d.metrics_file.parent if d.metrics_file else None
    if metrics_dir is not None and not metrics_dir.is_dir():
        print(f"warning: metrics_file: the directory {metrics_dir} does not exist; nothing is "
              "written until it does (is node_exporter's textfile collector installed?)",
              file=sys.stderr)
    return EXIT_OK


def _metrics_summary(settings: Settings) -> list[str]:
    d = settings.daemon
    lines = [f"metrics file: {d.metrics_file or 'off'}"]
    if d.http_listen:
        who = ", ".join(map(str, d.http_allow)) if d.http_allow else "everyone"
        lines.append(f"status page and /metrics: http://{d.http_listen}/ (allowed: {who})")
    else:
        lines.append("status page and /metrics: off")
    return lines


def _mdns_summary(settings: Settings) -> str:
    from supervisor.core.announce import loopback_only

    d = settings.daemon
    how = {"off": "off", "auto": "auto (avahi if it is on the system bus, else umdns)",
           "avahi": "through avahi-daemon", "umdns": "through umdns"}[d.mdns]
    if d.mdns != "off" and loopback_only(d.bind):
        how += "; nothing is announced while bind is loopback only"
    return how + (f"; location \"{d.location}\"" if d.location else "")


# -- demo ----------------------------------------------------------------------------------------
def cmd_demo(args: argparse.Namespace) -> int:
    from supervisor.lab.demo import run_demo

    return run_demo()


if __name__ == "__main__":
    sys.exit(main())
