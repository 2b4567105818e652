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
from supervisor.config.tomlform import parse_settings
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
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if required:
            raise ConfigError(
                [Problem("file", "does not exist; create it or leave --config out for defaults")],
                path,
            ) from None
        return Settings()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([Problem("file", f"cannot be read: {exc}")], path) from None
    if is_uci(text):
        from supervisor.config.uciform import parse_uci_settings  # noqa: PLC0415 (OpenWrt's form)

        return parse_uci_settings(text, path, inspect_devices=inspect_devices)
    return parse_settings(text, path, inspect_devices=inspect_devices)


def is_uci(text: str) -> bool:
    """Whether `text` is UCI: its first command is `config` or `package` (TOML has none)."""
    for line in text.splitlines():
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        return words[0] in ("config", "package") and (
            len(words) == 1 or not words[1].startswith("="))
    return False
