"""The README's state diagram is the machine's own transition table."""

from __future__ import annotations

import re
from pathlib import Path

from supervisor.core.machine import mermaid

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_state_diagram_matches_the_machine() -> None:
    blocks = re.findall(r"```mermaid\n(.*?)\n```", README.read_text(encoding="utf-8"), re.S)
    assert blocks == [mermaid()], "regenerate it: python -m supervisor.core.machine"


def test_readme_opens_with_the_two_commands() -> None:
    head = README.read_text(encoding="utf-8")[:400]
    assert "make demo" in head and "make test" in head
