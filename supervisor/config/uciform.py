"""OpenWrt's form of the configuration: /etc/config/printer-supervisor, read and written.

One `config daemon` section and one `config printer 'NAME'` section per printer; options carry
the TOML keys' names, lists are `list` options (a single `option` works too). The sections are
turned into the TOML document's shape and validated by the same code, so both forms mean the
same and report problems alike, here by section, option and line. Unknown options and sections
are warned about, not refused: LuCI and older packages may leave some behind.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Final

from supervisor.config.settings import DaemonSettings, PrinterSettings, Problem, Settings
from supervisor.config.uci import (
    UciError,
    UciSection,
    parse_uci,
    render_section,
    uci_bool,
    valid_name,
)
from supervisor.config.validate import validate_raw

PACKAGE: Final = "printer-supervisor"
#: `uci set …=''` deletes an option and a file's `option log_file ''` changes nothing: no log
#: file is said `option log_file 'off'`.
NO_LOG_FILE: Final = "off"
# Each key's kind, from the settings' own fields (lists are tuples there).
_KINDS: Final = {
    kind: {f.name: _kind for f in dataclasses.fields(cls)
           if (_kind := ("list" if str(f.type).startswith("tuple") else
                         "bool" if str(f.type) == "bool" else
                         "int" if str(f.type) in ("int", "int | None") else
                         "float" if str(f.type) in ("float", "float | None") else "str"))}
    for kind, cls in (("daemon", DaemonSettings), ("printer", PrinterSettings))
}


def parse_uci_settings(text: str | bytes, source: Path | None = None, *,
                       inspect_devices: bool = False) -> Settings:
    """Validate UCI into Settings, or raise ConfigError listing every problem. `text`: the
    file's bytes (a str is taken as its UTF-8); values that are not UTF-8 are read as
    supervisor.config.uci shows them (U+FFFD) and validated like any other."""
    from supervisor.config.settings import ConfigError  # noqa: PLC0415

    try:
        sections = parse_uci(text, PACKAGE)
    except UciError as exc:
        where = f" ({exc.where})" if exc.where else ""
        raise ConfigError([Problem("syntax", f"not valid UCI{where}: {exc.message}",
                                   exc.line)], source) from None
    problems: list[Problem] = []
    warnings: list[tuple[int, str]] = []  # (line, text)
    daemon_sections = [s for s in sections if s.type == "daemon"]
    printer_sections = []
    for section in (s for s in sections if s.type == "printer"):
        if section.name is None and "name" not in section.options:
            problems.append(Problem(f"{section.ref}: name", "an anonymous printer section needs "
                                    "`option name`, or give the section a name: config printer "
                                    "'laserjet'", section.line))
        else:
            printer_sections.append(section)
    for extra in daemon_sections[1:]:
        problems.append(Problem(extra.ref, "a second `config daemon` section: keep one",
                                extra.line))
    for other in sections:
        if other.type not in ("daemon", "printer"):
            warnings.append((other.line, f"{other.ref} (line {other.line}): section type "
                                          f"{other.type!r} ignored; allowed: daemon, printer"))
    raw: dict[str, Any] = {}
    if daemon_sections:
        raw["daemon"] = _options(daemon_sections[0], "daemon", problems, warnings)
    raw["printer"] = [_printer(s, problems, warnings) for s in printer_sections]

    def locate(header: str, index: int, key: str | None) -> int | None:
        if header == "[daemon]":
            section = daemon_sections[0] if daemon_sections else None
        else:
            section = printer_sections[index] if index < len(printer_sections) else None
        if section is None:
            return None
        return section.option_lines.get(key, section.line) if key else section.line

    in_order = tuple(text for _, text in sorted(warnings))
    return validate_raw(raw, source, locate, problems, in_order,
                        inspect_devices=inspect_devices)


def _printer(section: UciSection, problems: list[Problem],
             warnings: list[tuple[int, str]]) -> dict[str, Any]:
    values = _options(section, "printer", problems, warnings)
    if "name" not in values and section.name is not None:
        values["name"] = section.name
    return values


def _options(section: UciSection, kind: str, problems: list[Problem],
             warnings: list[tuple[int, str]]) -> dict[str, Any]:
    """The section's options as TOML would have them typed; what cannot be is a problem."""
    kinds = _KINDS[kind]
    values: dict[str, Any] = {}
    for key, value in section.options.items():
        line = section.option_lines.get(key, section.line)
        if key not in kinds:
            warnings.append((line, f"{section.ref} (line {line}): unknown option {key!r} "
                                   f"ignored; allowed: {', '.join(sorted(kinds))}"))
            continue
        off = (kind, key, value) == ("daemon", "log_file", NO_LOG_FILE)
        typed = _typed("" if off else value, kinds[key])
        if isinstance(typed, _Wrong):
            problems.append(Problem(f"{section.ref}: {key}", typed.message, line))
            continue
        values[key] = typed
    return values


@dataclasses.dataclass(frozen=True)
class _Wrong:
    message: str


def _typed(value: str | tuple[str, ...], kind: str) -> object:
    if kind == "list":
        return list(value) if isinstance(value, tuple) else [value]
    if isinstance(value, tuple):
        return _Wrong(f"must be a single `option`, not a `list` ({len(value)} values)")
    if kind == "bool":
        parsed = uci_bool(value)
        return _Wrong(f"must be 1 or 0 (or yes/no, on/off, true/false), got {value!r}") if (
            parsed is None) else parsed
    if kind in ("int", "float"):
        try:
            return int(value) if kind == "int" else float(value)
        except ValueError:
            what = "an integer" if kind == "int" else "a number"
            return _Wrong(f"must be {what}, got {value!r}")
    return value


# -- writing ---------------------------------------------------------------------------------
def settings_to_uci(settings: Settings) -> str:
    """The settings as /etc/config/printer-supervisor, every value that is not the default."""
    lines = [f"# printer-supervisor (UCI): `uci show {PACKAGE}`; after a change, `uci commit "
             f"{PACKAGE} && reload_config` (the service reloads)."]
    daemon = [(key, NO_LOG_FILE if (key, value) == ("log_file", "") else value)
              for key, value in _non_default(settings.daemon, DaemonSettings())]
    lines += ["", *render_section("daemon", None, daemon)]
    for printer in settings.printers:
        options = _non_default(printer, PrinterSettings(name=printer.name))
        name = printer.name if valid_name(printer.name) else None
        if name is None:  # uci names take no "-": the section is named by an option then
            options.insert(0, ("name", printer.name))
        lines += ["", *render_section("printer", name, options)]
    return "\n".join(lines) + "\n"


def _non_default(values: Any, defaults: Any) -> list[tuple[str, str | list[str]]]:
    options: list[tuple[str, str | list[str]]] = []
    for f in dataclasses.fields(values):
        value = getattr(values, f.name)
        if f.name == "name" or value == getattr(defaults, f.name):
            continue
        options.append((f.name, _text(value)))
    return options


def _text(value: object) -> str | list[str]:
    if isinstance(value, tuple):
        return [str(item) for item in value]
    if isinstance(value, bool):
        return "1" if value else "0"
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
