"""UCI, OpenWrt's configuration format: read as libuci reads it (config.ucireader), written as
`uci` writes it, and its words for booleans and names."""

from __future__ import annotations

import re
from typing import Final

from supervisor.config.ucireader import UciError, UciSection, parse_uci

__all__ = ["FALSE_WORDS", "TRUE_WORDS", "UciError", "UciSection", "parse_uci", "quote",
           "render_section", "uci_bool", "valid_name"]

_UCI_NAME_RE: Final = re.compile(r"[A-Za-z0-9_]+")  # libuci's uci_validate_name

#: As OpenWrt's config_get_bool reads them.
TRUE_WORDS: Final = frozenset({"1", "on", "true", "yes", "enabled"})
FALSE_WORDS: Final = frozenset({"0", "off", "false", "no", "disabled"})


def uci_bool(value: str) -> bool | None:
    lowered = value.lower()
    return True if lowered in TRUE_WORDS else False if lowered in FALSE_WORDS else None


def valid_name(name: str) -> bool:
    """Whether uci accepts `name` as a section or option name."""
    return bool(_UCI_NAME_RE.fullmatch(name))


# -- writing ---------------------------------------------------------------------------------
def quote(value: str) -> str:
    """A value as uci export writes it: single-quoted, a quote inside as '\\''."""
    return "'" + value.replace("'", "'\\''") + "'"


def render_section(type_: str, name: str | None,
                   options: list[tuple[str, str | list[str]]]) -> list[str]:
    """`config TYPE 'NAME'` and its options (a list value: one `list` line per item)."""
    lines = [f"config {type_}" + (f" {quote(name)}" if name else "")]
    for key, value in options:
        if isinstance(value, list):
            lines += [f"\tlist {key} {quote(item)}" for item in value]
        else:
            lines.append(f"\toption {key} {quote(value)}")
    return lines
