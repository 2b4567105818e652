"""Reading UCI, OpenWrt's configuration format, as libuci reads it.

One parser for the package: `/etc/config/printer-supervisor` (the service's configuration on
OpenWrt) and `/etc/config/p910nd` (`migrate-p910nd`). Pure: bytes in, sections out. It accepts
exactly the files `uci` loads and reads the same values (shared/reference/openwrt.md §1 has the
differential run this follows); a file uci refuses is refused with uci's reason and the line.

How uci reads, in the words the code below uses:

- **Lines.** The file is bytes, split at LF only. uci reads with fgets into a buffer of 32 bytes
  that doubles whenever a line does not fit, and keeps of each read what comes before its first
  NUL: a NUL drops the rest of that read (the rest of its line, when the line fit) and the
  next read joins on, so `option port 1<NUL>junk` is port 1.
- **Whitespace** is C's isspace: space, tab, LF, VT, FF, CR and nothing else. A CR outside
  quotes separates words (CRLF files read as LF files; a file with CR-only line ends is one
  long line, refused for its extra words); inside quotes it is data. A no-break space,
  U+2028, U+3000 or \\x1c-\\x1f is part of a bare word.
- **Commands.** After the leading whitespace, the command word runs to the next space or tab and
  is taken literally: `config`/`c`, `option`/`o`, `list`/`l`, `package`/`p` (quoted, escaped or
  glued to anything else, it is an "invalid command"); a word starting `#` comments out the
  line. Every command takes exactly its arguments: one more is "too many arguments", and then
  uci (and LuCI) refuse the whole file.
- **Arguments.** A word joins quoted and bare parts (`'it'\\''s'` is it's). Single quotes keep
  every character; double quotes and bare words take the character after a backslash
  literally; a backslash at the end of a line joins the next line (a bare word then ends if
  that line starts with whitespace). Quotes may span lines. `#` outside quotes comments out the
  rest of the line, also glued to a word (`/dev/lp0#x` is /dev/lp0).
- **`;`.** At the start of an argument (after whitespace) it ends the command and another may
  follow on the line. Glued to the end of a word it ends the word, and then: if the word had no
  quote and no backslash, the rest of the line is dropped unread (`option port 9104;option
  location x` sets only the port); otherwise it separates as above. Anything after a
  separating `;` must be a command: a `;` at the end of a line, or at its start, is an
  "invalid command".
- **Names.** Option and section names: A-Z, a-z, 0-9, `_`. Section types: printable ASCII
  (`printer-x`, `a.b`). `package` takes one name of A-Z, a-z, 0-9, `_`, `-` (uci takes the
  package from the file's name; the line is only checked).
- **Sections.** A named section opened again merges its options, unless the type differs:
  "section of different type overwrites prior section with same name". An anonymous section is
  also known by the name uci gives it (`cfg` + its position and a hash of its type, two and
  four hex digits) and `config TYPE 'cfg…'` reopens it.
- **Options.** `option` sets (replacing a list too); `option NAME ''` changes nothing (only the
  command line's `uci set …=''` deletes); `list` appends, turning an option into a list.
- **Bytes.** Values are bytes to uci; here they are text: UTF-8, each sequence that is not UTF-8
  shown as U+FFFD (see `_text`).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

_NAME_BYTES_RE: Final = re.compile(rb"[A-Za-z0-9_]+")
_PACKAGE_BYTES_RE: Final = re.compile(rb"[A-Za-z0-9_-]+")
_TYPE_BYTES_RE: Final = re.compile(rb"[\x21-\x7e]+")  # printable ASCII, no space
#: C's isspace in the C locale: what uci skips between words.
_SPACE: Final = frozenset(b" \t\n\v\f\r")
_QUOTE, _DOUBLE, _BACKSLASH, _HASH, _SEMICOLON, _LF, _CR = (ord(c) for c in "'\"\\#;\n\r")
_END: Final = -1  # what _Parser.char answers past the buffer's content
#: uci's command words and their one-letter forms, as the command each one is.
_COMMANDS: Final = {b"config": "config", b"c": "config", b"option": "option", b"o": "option",
                    b"list": "list", b"l": "list", b"package": "package", b"p": "package"}
_FIRST_READ_BYTES: Final = 32  # libuci's first line buffer (LINEBUF); it doubles from there
class UciError(ValueError):
    """Text libuci would refuse to load; `line` is 1-based: the line of the command at fault
    (of the opening quote, for a quote that never ends). `where` names the section and option
    being read, as `uci show` would (empty where no section is open)."""

    def __init__(self, line: int, message: str, where: str = "") -> None:
        self.line = line
        self.message = message
        self.where = where
        super().__init__(f"line {line}: {where + ': ' if where else ''}{message}")


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


def _text(value: bytes) -> str:
    """A value as the settings hold it. uci keeps bytes; the service needs text (it logs,
    announces and shows every value, and the TOML form is UTF-8 by definition), so each
    sequence that is not UTF-8 is shown as U+FFFD, the way device strings are read: a location
    `Caf<0xE9>` loads as 'Caf\\ufffd' and is checked like any other location; a path with such
    a byte names the file with U+FFFD in its name (check-config then says it is missing)."""
    return value.decode("utf-8", "replace")


class _Source:
    """The file as uci's line reader hands it over: read by read into one buffer.

    `read(offset)` replaces the buffer from `offset` on with the next line (a quote or a
    backslash continuing past the end reads at its own offset): reads of at most the buffer's
    room, each kept up to its first NUL, until one ends the line with LF; a read that begins
    with NUL (or the end of the file) ends it there. Lines are counted as an editor counts
    them, for the messages.
    """

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0  # the next byte to read
        self.buf = bytearray()
        self._size = _FIRST_READ_BYTES
        self._pieces: list[tuple[int, int]] = []  # (offset in buf, offset in data)
        self._newlines = [i for i, byte in enumerate(data) if byte == _LF]

    def read(self, offset: int) -> None:
        del self.buf[offset:]
        while self._pieces and self._pieces[-1][0] >= offset:
            self._pieces.pop()
        if offset >= self._size - 1:
            self._size *= 2
        while self.at < len(self.data):
            room = self._size - len(self.buf) - 1
            newline = self.data.find(b"\n", self.at, self.at + room)
            stop = newline + 1 if newline >= 0 else min(self.at + room, len(self.data))
            got = self.data[self.at:stop].partition(b"\0")[0]
            start, self.at = self.at, stop
            if not got:
                return
            self._pieces.append((len(self.buf), start))
            self.buf += got
            if got[-1] == _LF:
                return
            self._size *= 2

    def line_of(self, pos: int) -> int:
        """The file's line (1-based) of the buffer's byte at `pos`."""
        index = bisect.bisect_right(self._pieces, (pos, len(self.data))) - 1
        buf_start, data_start = self._pieces[max(index, 0)] if self._pieces else (0, 0)
        return bisect.bisect_left(self._newlines, data_start + pos - buf_start) + 1


@dataclass(eq=False)  # sections are told apart by identity
class _Open:
    """A section being read."""

    type: str
    name: str | None
    line: int
    options: dict[str, str | tuple[str, ...]] = field(default_factory=dict)
    option_lines: dict[str, int] = field(default_factory=dict)


class _Parser:
    """uci's reading of one file, command by command (the rules: the module's docstring)."""

    def __init__(self, data: bytes, package: str) -> None:
        self.source = _Source(data)
        self.package = package
        self.pos = 0
        self.sections: list[_Open] = []
        self.by_name: dict[str, _Open] = {}  # named, and anonymous by uci's name for them
        self.current: _Open | None = None
        self.where = ""  # the section and option being read, for errors
        self.section_ref = ""  # the current section's

    def parse(self) -> list[_Open]:
        while self.source.at < len(self.source.data):
            self.pos = 0
            self.source.read(0)
            if self.source.buf:
                self._line()
        return self.sections

    # -- the buffer ---------------------------------------------------------------------------
    @property
    def char(self) -> int:
        buf = self.source.buf
        return buf[self.pos] if self.pos < len(buf) else _END

    def _skip_space(self) -> None:
        while self.char in _SPACE:
            self.pos += 1

    def _ends_here(self) -> None:
        """What uci does by writing NUL at the position: the rest of the line is not read."""
        del self.source.buf[self.pos:]

    def _error(self, line: int, message: str) -> UciError:
        return UciError(line, message, self.where)

    # -- commands -----------------------------------------------------------------------------
    def _line(self) -> None:
        buf = self.source.buf
        self._skip_space()
        while True:
            while self.char in (0x20, 0x09):
                self.pos += 1
            if self.pos >= len(buf):
                return
            start = self.pos
            ends = [i for i in (buf.find(b" ", start), buf.find(b"\t", start)) if i >= 0]
            end = min(ends) if ends else len(buf)
            word = bytes(buf[start:end])
            if word.startswith(b"#"):
                return
            line = self.source.line_of(start)
            self.where = ""
            command = _COMMANDS.get(word)
            if command is None:
                raise self._error(line, _invalid_command(word))
            if end >= len(buf):  # the word is the file's last: no space after it
                raise self._error(line, f"{command} without name (uci: {word.decode()} "
                                        "without name)")
            self.pos = end + 1
            if command == "config":
                self._config(line)
            elif command == "package":
                self._package(line)
            else:
                self._option(line, is_list=command == "list")

    def _package(self, line: int) -> None:
        name = self._arg(line, "package needs a name")
        if not _PACKAGE_BYTES_RE.fullmatch(name):
            raise self._error(line, f"invalid character in name field: package {_shown(name)}: "
                                    "a package name may hold only A-Z, a-z, 0-9, _ and -")
        self._end(line)

    def _config(self, line: int) -> None:
        type_ = self._arg(line, "config needs a section type, e.g. config printer 'laserjet'")
        if not _TYPE_BYTES_RE.fullmatch(type_):
            raise self._error(line, f"invalid character in type field: {_shown(type_)}: a "
                                    "section type is printable ASCII, no spaces")
        name = self._arg(line)
        if name and not _NAME_BYTES_RE.fullmatch(name):
            raise self._error(line, f"invalid character in name field: section name "
                                    f"{_shown(name)}: a section name may hold only A-Z, a-z, "
                                    "0-9 and _ (as uci requires)")
        kind, label = type_.decode("ascii"), name.decode("ascii") or None
        reopened = self.by_name.get(label) if label else None
        if reopened is not None:
            self.where = self.section_ref = self._ref(reopened)
            self._end(line)
            if reopened.type != kind:
                raise self._error(line, "section of different type overwrites prior section "
                                        f"with same name: it is a config {reopened.type} "
                                        f"(line {reopened.line})")
            self.current = reopened
            return
        self.current = _Open(kind, label, line)
        self.where = self.section_ref = self._ref(self.current)
        self._end(line)
        self.sections.append(self.current)
        self.by_name.setdefault(label or _anonymous_name(len(self.sections), kind), self.current)

    def _ref(self, section: _Open) -> str:
        """The section as `uci show` names it (the sections read so far place it)."""
        if section.name:
            return f"{self.package}.{section.name}"
        before = self.sections[:self.sections.index(section)] if (
            section in self.sections) else self.sections
        return f"{self.package}.@{section.type}[{sum(s.type == section.type for s in before)}]"

    def _option(self, line: int, *, is_list: bool) -> None:
        command = "list" if is_list else "option"
        section = self.current
        if section is None:
            raise self._error(line, f"{command} before the first config section (uci: "
                                    "option/list command found before the first section)")
        self.where = self.section_ref
        name = self._arg(line, f"{command} needs a name")
        if not _NAME_BYTES_RE.fullmatch(name):
            raise self._error(line, f"invalid character in name field: option {_shown(name)}: "
                                    "an option name may hold only A-Z, a-z, 0-9 and _ (as uci "
                                    "requires)")
        key = name.decode("ascii")
        self.where += f": {key}"
        value = _text(self._arg(line))
        self._end(line)
        if is_list:
            old = section.options.get(key, ())
            section.options[key] = (*((old,) if isinstance(old, str) else old), value)
        elif value:
            section.options[key] = value
        else:
            return  # `option NAME ''` in a file changes nothing, in uci
        section.option_lines[key] = line

    def _end(self, line: int) -> None:
        """uci's assert_eol: nothing more for this command (a `;` may start the next)."""
        self._skip_space()
        extra = self._arg(line)
        if extra:
            raise self._error(line, f"too many arguments: {_shown(extra)} is one word more than "
                                    "the command takes; quote a value that holds spaces "
                                    "('Office 1st floor'). uci and LuCI refuse the whole file")

    # -- arguments ----------------------------------------------------------------------------
    def _arg(self, line: int, required: str = "") -> bytes:
        """The next argument; empty at the end of the command. `required`: why it must not be
        (uci's "insufficient arguments")."""
        self._skip_space()
        if self.char == _SEMICOLON:
            self.pos += 1
            value = b""
        else:
            value = self._word()
        if not value and required:
            raise self._error(line, f"insufficient arguments: {required}")
        return value

    def _word(self) -> bytes:
        out = bytearray()
        dropped = 0  # quotes and backslashes read but not kept: see `;` in the module doc
        separate = True
        while True:
            char = self.char
            if char == _QUOTE:
                self._quoted(out, double=False)
                dropped += 2
            elif char == _DOUBLE:
                dropped += 2 + self._quoted(out, double=True)
            elif char == _HASH:
                self._ends_here()
                break
            elif char == _SEMICOLON:
                separate = False
                if not dropped:
                    self._ends_here()
                break
            elif char == _BACKSLASH:
                dropped += 1
                if self._escaped():
                    out.append(self.char)
                    self.pos += 1
            elif char == _END:
                break
            else:
                out.append(char)
                self.pos += 1
            if self.char == _END or self.char in _SPACE:
                break
        if separate and self.char != _END:
            self.pos += 1  # the whitespace that ended the word
        return bytes(out)

    def _quoted(self, out: bytearray, *, double: bool) -> int:
        """A quoted part into `out`; the number of backslashes dropped."""
        quote = _DOUBLE if double else _QUOTE
        line = self.source.line_of(self.pos)
        self.pos += 1
        dropped = 0
        while True:
            char = self.char
            if char == quote:
                self.pos += 1
                return dropped
            if char == _END:  # the value goes on on the next line
                self.source.read(self.pos)
                if self.char == _END:
                    mark = chr(quote)
                    raise self._error(line, f"unterminated {mark}: a quoted value never ends "
                                            f"(uci: EOF with unterminated {mark})")
                continue
            if char == _BACKSLASH and double:
                dropped += 1
                if not self._escaped():
                    continue
            out.append(self.char)
            self.pos += 1

    def _escaped(self) -> bool:
        """Past a backslash: True if the character now at `pos` is to be kept as it is, False
        if the backslash ended the line and the next one was read in its place."""
        self.pos += 1
        buf, char = self.source.buf, self.char
        crlf_end = char == _CR and buf[self.pos + 1:] == b"\n"
        if char in (_END, _LF) or crlf_end:
            self.source.read(self.pos)
            return False
        return True


def _invalid_command(word: bytes) -> str:
    stripped = word.rstrip(bytes(_SPACE))
    if stripped in _COMMANDS and stripped != word:  # `config` alone on its line
        command = _COMMANDS[stripped]
        needs = "a section type" if command == "config" else "a name"
        return (f"invalid command {_shown(word)}: {command} with nothing after it on the line "
                f"({command} needs {needs})")
    return (f"invalid command {_shown(word)}: expected config, option, list or package (or c, "
            "o, l, p), unquoted and followed by a space or tab")


def _shown(raw: bytes) -> str:
    return repr(_text(raw))


def _anonymous_name(position: int, type_: str) -> str:
    """The name uci gives an anonymous section: `cfg`, how many sections the file has opened
    so far (this one included) and its type's djb hash, in hex (libuci's uci_fixup_section)."""
    digest = 5381
    for byte in type_.encode("ascii"):
        digest = (digest * 33 + byte) & 0xFFFFFFFF
    return f"cfg{position:02x}{digest & 0xFFFF:04x}"


def parse_uci(text: str | bytes, package: str = "p910nd") -> list[UciSection]:
    """The sections of a UCI file, options merged as libuci merges them; UciError if uci would
    refuse the file. `text`: the file's bytes (a str is taken as its UTF-8). `package` names
    them in `ref` (uci takes it from the file's name, not its content)."""
    data = text.encode("utf-8", "surrogateescape") if isinstance(text, str) else text
    counts: dict[str, int] = {}
    result = []
    for s in _Parser(data, package).parse():
        index = counts.get(s.type, 0)
        counts[s.type] = index + 1
        result.append(UciSection(s.type, s.name, index, s.line, s.options, s.option_lines,
                                 package))
    return result
