"""UCI, OpenWrt's configuration format: read as libuci reads it, written as `uci` writes it.

One parser for the package: `/etc/config/printer-supervisor` (the service's configuration on
OpenWrt) and `/etc/config/p910nd` (`migrate-p910nd`). Pure: text in, sections out.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Final

_UCI_NAME_RE: Final = re.compile(r"[A-Za-z0-9_]+")  # libuci's uci_validate_name
#: As OpenWrt's config_get_bool reads them.
TRUE_WORDS: Final = frozenset({"1", "on", "true", "yes", "enabled"})
FALSE_WORDS: Final = frozenset({"0", "off", "false", "no", "disabled"})


def uci_bool(value: str) -> bool | None:
    lowered = value.lower()
    return True if lowered in TRUE_WORDS else False if lowered in FALSE_WORDS else None


def valid_name(name: str) -> bool:
    """Whether uci accepts `name` as a section type or name."""
    return bool(_UCI_NAME_RE.fullmatch(name))


class UciError(ValueError):
    """Text libuci would refuse to load; `line` is 1-based."""

    def __init__(self, line: int, message: str) -> None:
        self.line = line
        self.message = message
        super().__init__(f"line {line}: {message}")


@dataclass(frozen=True)
class UciSection:
    """One `config TYPE ['NAME']` section; a `list` option's value is a tuple."""

    type: str
    name: str | None  # None: anonymous, addressed as @TYPE[index]
    index: int  # position among the sections of its type
    line: int
    options: Mapping[str, str | tuple[str, ...]] = field(default_factory=dict)
    option_lines: Mapping[str, int] = field(default_factory=dict)  # where each was last set
    package: str = "p910nd"

    @property
    def ref(self) -> str:
        """The section as `uci show` names it: p910nd.office or p910nd.@p910nd[0]."""
        return f"{self.package}.{self.name if self.name else f'@{self.type}[{self.index}]'}"


class _Scanner:
    """Splits UCI text into commands of words, unquoting as libuci does.

    A word joins quoted and unquoted parts (`'it'\\''s'` is it's). Single quotes keep every
    character; double quotes and bare words take the character after a backslash literally;
    a backslash before the end of a line continues the word on the next one. Quoted parts may
    span lines. A bare `#` comments out the rest of the line, a bare `;` ends the command.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.line = 1

    def _peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def _take(self) -> str:
        char = self._peek()
        self.pos += 1
        if char == "\n":
            self.line += 1
        return char

    def commands(self) -> Iterator[tuple[int, list[str]]]:
        while self.pos < len(self.text):
            start = self.line
            words = self._command()
            if words:
                yield start, words

    def _command(self) -> list[str]:
        words: list[str] = []
        while True:
            while self._peek() not in ("", "\n") and self._peek().isspace():
                self._take()
            char = self._peek()
            if char in ("", "\n", ";"):
                self._take()
                return words
            if char == "#":
                while self._peek() not in ("", "\n"):
                    self._take()
                continue
            words.append(self._word())

    def _word(self) -> str:
        parts: list[str] = []
        while (char := self._peek()) and not char.isspace() and char not in "#;":
            if char == "'":
                parts.append(self._quoted("'"))
            elif char == '"':
                parts.append(self._quoted('"'))
            elif char == "\\":
                parts.append(self._escape())
            else:
                parts.append(self._take())
        return "".join(parts)

    def _quoted(self, quote: str) -> str:
        start = self.line
        self._take()
        parts: list[str] = []
        while (char := self._peek()) != quote:
            if not char:
                raise UciError(start, f"unterminated {quote}: a quoted value never ends")
            parts.append(self._escape() if char == "\\" and quote == '"' else self._take())
        self._take()
        return "".join(parts)

    def _escape(self) -> str:
        self._take()
        if self._peek() == "\r" and self.text[self.pos + 1:self.pos + 2] == "\n":
            self._take()
        if self._peek() in ("", "\n"):
            self._take()  # a line continuation
            return ""
        return self._take()


def parse_uci(text: str, package: str = "p910nd") -> list[UciSection]:
    """The sections of a UCI file, options merged as libuci merges them; UciError if invalid.
    `package` names them in `ref` (uci takes it from the file's name, not its content)."""
    sections: list[_Open] = []
    by_name: dict[str, _Open] = {}
    current: _Open | None = None
    for line, words in _Scanner(text).commands():
        command, args = words[0], words[1:]
        if command in ("p", "package"):
            continue  # the package name: this file is p910nd's whatever it says
        if command in ("c", "config"):
            if not args or not args[0]:
                raise UciError(line, "config needs a section type, e.g. config p910nd")
            name = args[1] if len(args) > 1 and args[1] else None
            if not valid_name(args[0]) or (name is not None and not valid_name(name)):
                raise UciError(line, "a section type or name may hold only A-Z, a-z, 0-9 and _ "
                                     "(as uci requires)")
            current = by_name.get(name) if name is not None else None
            if current is not None:  # a named section reopened: its options merge
                current.type = args[0]
                continue
            current = _Open(args[0], name, line)
            sections.append(current)
            if name is not None:
                by_name[name] = current
        elif command in ("o", "option", "l", "list"):
            if current is None:
                raise UciError(line, f"{command} before the first config section")
            if not args or not args[0]:
                raise UciError(line, f"{command} needs a name")
            current.set(args[0], args[1] if len(args) > 1 else "", command in ("l", "list"))
            current.option_lines[args[0]] = line
        else:
            raise UciError(line, f"invalid command {command!r}: expected config, option or list")
    counts: dict[str, int] = {}
    result = []
    for s in sections:
        index = counts.get(s.type, 0)
        counts[s.type] = index + 1
        result.append(UciSection(s.type, s.name, index, s.line, s.options, s.option_lines,
                                 package))
    return result


@dataclass
class _Open:
    """A section being read."""

    type: str
    name: str | None
    line: int
    options: dict[str, str | tuple[str, ...]] = field(default_factory=dict)
    option_lines: dict[str, int] = field(default_factory=dict)

    def set(self, key: str, value: str, is_list: bool) -> None:
        """uci_set / uci_add_list: an option replaces, a list appends, an empty option deletes."""
        if is_list:
            old = self.options.get(key, ())
            self.options[key] = (*((old,) if isinstance(old, str) else old), value)
        elif value:
            self.options[key] = value
        else:
            self.options.pop(key, None)




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
