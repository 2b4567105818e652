"""The TOML form of the configuration (SPEC §3): text in, Settings or ConfigError out."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from supervisor.config.settings import ConfigError, Problem, Settings
from supervisor.config.validate import Validator


def parse_settings(text: str, source: Path | None = None, *,
                   inspect_devices: bool = False) -> Settings:
    """Validate TOML text into Settings, or raise ConfigError listing every problem."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = _line_of_decode_error(str(exc))
        raise ConfigError([Problem("syntax", f"not valid TOML: {exc}", line)], source) from None
    validator = Validator(text, inspect_devices=inspect_devices)
    settings = validator.settings(raw, source)
    if validator.problems:
        raise ConfigError(validator.problems, source)
    return settings


def _line_of_decode_error(message: str) -> int | None:
    found = re.search(r"line (\d+)", message)
    return int(found.group(1)) if found else None


