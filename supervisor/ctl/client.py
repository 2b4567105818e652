"""The thin client of the control socket (SPEC §7): where it is, one request, one reply.

Imported only by the commands that talk to the service, and light, because the hotplug shims
run `notify` for every USB event: `_socket` instead of socket.py (whose selectors and enum cost
4 ms), a request encoded by hand when that is certain to equal json.dumps, and the config's
`control_socket` read from its one line when that is unambiguous; tomllib and json (12 and 2 ms
of imports) only when it is not.
"""

from __future__ import annotations

import _socket
import os

from supervisor import protocol

TIMEOUT_S = 2.0  # notify runs in OpenWrt's one-at-a-time hotplug chain: never hang it
ACCEPTED = b'{"ok": true}\n'  # the service's answer to an accepted notify, as json.dumps has it


class ServiceUnreachable(Exception):
    """The request was not delivered; the message says why in a sentence."""


# -- where -----------------------------------------------------------------------------------
def socket_path(explicit: str | None, config: str | None) -> str:
    """--socket, else $PRINTER_SUPERVISOR_SOCKET, else the config's control_socket, else the
    default path."""
    if explicit:
        return explicit
    if os.environ.get(protocol.SOCKET_ENV):
        return os.environ[protocol.SOCKET_ENV]
    config = config or os.environ.get(protocol.CONFIG_ENV) or _default_config()
    try:
        with open(config, "rb") as handle:
            text = handle.read()
    except PermissionError as exc:
        raise ServiceUnreachable(f"cannot read {config} to find the control socket "
                                 f"({exc.strerror}): run as root, or pass --socket.") from None
    except OSError:
        return protocol.DEFAULT_SOCKET  # no file: the defaults
    if _is_uci(text):
        path: object = _control_socket_uci(text)
    else:
        found = control_socket_line(text)
        path = _control_socket_toml(text) if isinstance(found, _Unsure) else found
    return path if isinstance(path, str) and path else protocol.DEFAULT_SOCKET


def _default_config() -> str:
    """config.toml, else OpenWrt's UCI file (config.toml wins where both exist)."""
    if not os.path.exists(protocol.DEFAULT_CONFIG) and os.path.exists(protocol.DEFAULT_UCI):
        return protocol.DEFAULT_UCI
    return protocol.DEFAULT_CONFIG


#: uci's command words and their one-letter forms (supervisor.config.uci reads them all).
_UCI_COMMANDS = frozenset({b"config", b"c", b"package", b"p", b"option", b"o", b"list", b"l"})


def _is_uci(text: bytes) -> bool:
    """Whether the first command is one of uci's (as supervisor.config.loader.is_uci decides)."""
    for line in text.split(b"\n"):
        words = line.split()  # bytes split at C's isspace, as uci does
        if words and not words[0].startswith(b"#"):
            return words[0] in _UCI_COMMANDS and (
                len(words) == 1 or not words[1].startswith(b"="))
    return False


def _control_socket_uci(text: bytes) -> object:
    found = control_socket_uci_line(text)
    if not isinstance(found, _Unsure):
        return found
    from supervisor.config.uci import UciError, parse_uci  # only when the line reader is unsure

    try:
        sections = parse_uci(text)
    except UciError:
        return None
    daemon = next((s for s in sections if s.type == "daemon"), None)
    return daemon.options.get("control_socket") if daemon is not None else None


def control_socket_uci_line(text: bytes) -> str | _Unsure | None:
    """The UCI form's `option control_socket` when one plain line in the one `config daemon`
    says it, None when the file never names it, else UNSURE (the UCI parser decides).

    Plain, so that every line means to uci what it seems to: no NUL in the file; no line but
    comments holds a backslash, `;`, CR, VT or FF, or opens a quote it does not close; and the
    line is `option control_socket VALUE` (or `o`), VALUE one bare word or one quoted part,
    then nothing but a comment."""
    if b"control_socket" not in text:
        return None
    if b"\0" in text:
        return UNSURE
    section, daemons, found = None, 0, []
    for raw in text.split(b"\n"):
        words = raw.split()
        if not words or words[0].startswith(b"#"):
            continue
        if any(byte in raw for byte in b"\\;\r\v\f") or not _quotes_close(raw):
            return UNSURE
        if words[0] in (b"config", b"c"):
            section = words[1] if len(words) > 1 else b""
            daemons += section == b"daemon"
            if daemons > 1:
                return UNSURE  # the parser takes the first daemon section
            continue
        if b"control_socket" not in raw:
            continue
        value = _uci_value(words, raw)
        if section != b"daemon" or value is None:
            return UNSURE
        if value:  # `option control_socket ''` changes nothing, in uci
            found.append(value)
    return _only(found)


def _uci_value(words: list[bytes], raw: bytes) -> bytes | None:
    """The value of a plain `option control_socket VALUE [# comment]` line, else None."""
    if words[0] not in (b"option", b"o") or len(words) < 3 or words[1] != b"control_socket":
        return None
    if words[2][:1] in (b"'", b'"'):
        return _plain_string(raw.split(b"control_socket", 1)[1].strip())
    extra = len(words) > 3 and not words[3].startswith(b"#")
    if extra or any(byte in words[2] for byte in b"'\"#"):
        return None
    return words[2]


def _quotes_close(line: bytes) -> bool:
    """Whether every quote the line opens ends on it (a `#` outside quotes ends the line)."""
    at = 0
    while True:
        marks = [i for i in (line.find(b"'", at), line.find(b'"', at), line.find(b"#", at))
                 if i >= 0]
        if not marks or line[min(marks)] == ord("#"):
            return True
        at = min(marks)
        close = line.find(line[at:at + 1], at + 1)
        if close < 0:
            return False
        at = close + 1


class _Unsure:
    """The file says something the line reader does not vouch for: the full parser decides."""


UNSURE = _Unsure()


def control_socket_line(text: bytes) -> str | _Unsure | None:
    """`[daemon] control_socket` when one plain line says it, None when the file never names
    it, else UNSURE. Plain: one `control_socket = "…"` (no escapes) or `'…'` under a
    `[daemon]` header; anything else (escapes, dotted or quoted keys, inline tables, multi-line
    strings, a second occurrence, non-UTF-8) is UNSURE, and tomllib reads the file."""
    if b"control_socket" not in text:
        return None
    if b'"""' in text or b"'''" in text:
        return UNSURE  # a multi-line string could hold a line that looks like the key
    table, found = None, []
    for raw in text.split(b"\n"):
        line = raw.strip()
        if not line or line.startswith(b"#"):
            continue
        if line.startswith(b"["):
            table = line.partition(b"#")[0].strip()
            continue
        if b"control_socket" not in line:
            continue
        key, sep, rest = line.partition(b"=")
        value = _plain_string(rest.strip()) if sep else None
        if table != b"[daemon]" or key.strip() != b"control_socket" or value is None:
            return UNSURE
        found.append(value)
    return _only(found)


def _only(found: list[bytes]) -> str | _Unsure | None:
    """What the lines said: nothing (the word was only in comments), one value, or UNSURE."""
    if not found:
        return None
    if len(found) != 1:
        return UNSURE
    try:
        return found[0].decode("utf-8")
    except UnicodeDecodeError:
        return UNSURE


def _plain_string(text: bytes) -> bytes | None:
    """The value of `"…"` (no backslash) or `'…'`, followed by nothing or a comment."""
    quote = text[:1]
    if quote not in (b'"', b"'"):
        return None
    end = text.find(quote, 1)
    if end < 0:
        return None
    value, tail = text[1:end], text[end + 1:].strip()
    if (quote == b'"' and b"\\" in value) or (tail and not tail.startswith(b"#")):
        return None
    if any(byte < 0x20 or byte == 0x7F for byte in value):
        return None
    return value


def _control_socket_toml(text: bytes) -> object:
    import tomllib  # only when the line reader is unsure

    try:
        daemon = tomllib.loads(text.decode("utf-8")).get("daemon", {})
        return daemon.get("control_socket") if isinstance(daemon, dict) else None
    except (ValueError, UnicodeDecodeError):
        return None  # a broken file (check-config explains): the default will do


# -- one request -----------------------------------------------------------------------------
def request(path: str, message: dict[str, object]) -> dict[str, object]:
    """One request, one reply (SPEC §7)."""
    conn = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        conn.settimeout(TIMEOUT_S)
        try:
            conn.connect(path)
        except (FileNotFoundError, ConnectionRefusedError):
            raise ServiceUnreachable(f"printer-supervisor is not running (nothing listens on "
                                     f"{path}).") from None
        except PermissionError:
            raise ServiceUnreachable(f"not allowed to use {path}: run as root or as a member "
                                     "of the service's group.") from None
        except OSError as exc:  # backlog full (EAGAIN), timeout: there but not answering
            raise ServiceUnreachable(
                f"printer-supervisor did not accept a connection on {path} "
                f"({exc.strerror or exc}): it is overloaded or hung.") from None
        try:
            conn.sendall(encode(message).encode() + b"\n")
            reply = b""
            while not reply.endswith(b"\n") and (chunk := conn.recv(65536)):
                reply += chunk
        except OSError as exc:
            raise ServiceUnreachable(f"printer-supervisor did not answer on {path}: "
                                     f"{exc}.") from None
    finally:
        conn.close()
    return decode(reply, path)


def encode(message: object) -> str:
    """json.dumps(message): by hand for dicts of plain ASCII strings and ints (a hotplug event),
    through json for anything else."""
    quick = _quick_json(message)
    if quick is not None:
        return quick
    import json  # only for what the quick encoder does not vouch for

    return json.dumps(message)


def _quick_json(value: object) -> str | None:
    if isinstance(value, str):
        if value.isascii() and value.isprintable() and '"' not in value and "\\" not in value:
            return f'"{value}"'
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, dict):
        parts = []
        for key, item in value.items():
            encoded = (_quick_json(key) if isinstance(key, str) else None,
                       _quick_json(item))
            if encoded[0] is None or encoded[1] is None:
                return None
            parts.append(f"{encoded[0]}: {encoded[1]}")
        return "{" + ", ".join(parts) + "}"
    return None


def decode(reply: bytes, path: str) -> dict[str, object]:
    """The service's answer; the common one is recognised without json."""
    if reply == ACCEPTED:
        return {"ok": True}
    import json

    try:
        answer = json.loads(reply)
    except ValueError:
        raise ServiceUnreachable(f"printer-supervisor gave no valid answer on {path}.") from None
    if not isinstance(answer, dict):
        raise ServiceUnreachable(f"printer-supervisor gave no valid answer on {path}.")
    return answer
