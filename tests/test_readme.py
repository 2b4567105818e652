"""The README's state diagram is the machine's own transition table."""

from __future__ import annotations

import re
from pathlib import Path

from supervisor.config.tomlform import parse_settings
from supervisor.config.uciform import parse_uci_settings
from supervisor.core.machine import mermaid

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_state_diagram_matches_the_machine() -> None:
    blocks = re.findall(r"```mermaid\n(.*?)\n```", README.read_text(encoding="utf-8"), re.S)
    assert blocks == [mermaid()], "regenerate it: python -m supervisor.core.machine"


def test_readme_opens_with_the_two_commands() -> None:
    head = README.read_text(encoding="utf-8")[:400]
    assert "make demo" in head and "make test" in head


def test_readme_configuration_examples_are_valid() -> None:
    text = README.read_text(encoding="utf-8")
    toml = re.findall(r"```toml\n(.*?)\n```", text, re.S)
    uci = re.findall(r"```uci\n(.*?)\n```", text, re.S)
    assert toml and uci
    for block in toml:
        parse_settings(block)  # raises ConfigError, naming the key and line
    for block in uci:
        settings = parse_uci_settings(block)
        assert settings.warnings == ()
        assert [p.name for p in settings.printers] == ["laserjet", "office-2"]
