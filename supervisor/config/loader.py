"""Which configuration file, and in which form: TOML, or OpenWrt's UCI recognised by content.

Above both forms: it picks one and hands the text to it (the UCI reader only when needed).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from supervisor.config.settings import (
    DEFAULT_CONFIG_PATH,
    DEFAULT_UCI_PATH,
    ConfigError,
    Problem,
    Settings,
)
from supervisor.protocol import CONFIG_ENV


def config_path(explicit: str | None, environ: Mapping[str, str]) -> tuple[Path, bool]:
    """The file to read and whether the user named it (a named file must exist)."""
    if explicit:
        return Path(explicit), True
    if environ.get(CONFIG_ENV):
        return Path(environ[CONFIG_ENV]), True
    # config.toml wins where both exist: it is what a router set up that way was given.
    if not DEFAULT_CONFIG_PATH.exists() and DEFAULT_UCI_PATH.exists():
        return DEFAULT_UCI_PATH, False
    return DEFAULT_CONFIG_PATH, False


def load_settings(path: Path, *, required: bool, inspect_devices: bool = False) -> Settings:
    """Read and validate `path` (TOML, or UCI recognised by its content); a missing default
    file means the defaults. `inspect_devices` (check-config) also refuses a `device` that is
    there but is not a printer's node; the service finds that per printer, at every scan."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        if required:
            raise ConfigError(
                [Problem("file", "does not exist; create it or leave --config out for defaults")],
                path,
            ) from None
        return Settings()
    except OSError as exc:
        raise ConfigError([Problem("file", f"cannot be read: {exc}")], path) from None
    if is_uci(data):  # bytes, as uci reads them: CR is data in quotes, any byte may be in a value
        from supervisor.config.uciform import parse_uci_settings  # noqa: PLC0415 (OpenWrt's form)

        return parse_uci_settings(data, path, inspect_devices=inspect_devices)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError([Problem("file", f"cannot be read: {exc}")], path) from None
    text = text.replace("\r\n", "\n").replace("\r", "\n")  # universal newlines, as before
    from supervisor.config.tomlform import parse_settings  # noqa: PLC0415 (not on a router)

    return parse_settings(text, path, inspect_devices=inspect_devices)


#: uci's command words and their one-letter forms.
_UCI_COMMANDS = frozenset({b"config", b"c", b"package", b"p", b"option", b"o", b"list", b"l"})


def is_uci(text: str | bytes) -> bool:
    """Whether `text` is UCI: its first command is one of uci's (`config`, `c`, `package`...;
    TOML has none). Lines end at LF and words at C's isspace only, as uci reads them (a
    no-break space or U+3000 is part of a word, a VT does not end a line)."""
    data = text.encode("utf-8", "surrogateescape") if isinstance(text, str) else text
    for line in data.split(b"\n"):
        words = line.split()  # bytes split at space, \t, \n, \v, \f, \r: C's isspace
        if not words or words[0].startswith(b"#"):
            continue
        return words[0] in _UCI_COMMANDS and (
            len(words) == 1 or not words[1].startswith(b"="))
    return False
