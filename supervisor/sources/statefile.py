"""The remembered port of each printer identity, kept in `state_dir` across restarts."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Final

from supervisor.core.registry import Remembered
from supervisor.observe.log import get_logger

STATE_FILE: Final = "ports.json"
FORMAT_VERSION: Final = 1

log = get_logger("supervisor.state")


def load_ports(state_dir: Path) -> dict[str, Remembered]:
    """Identity → name and port; a missing or corrupt file is logged and means 'nothing yet'."""
    path = state_dir / STATE_FILE
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        entries = raw["printers"]
        return {str(identity): Remembered(str(e["name"]), int(e["port"]))
                for identity, e in entries.items()}
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        log.warning("state_file_unreadable", path=str(path), error=repr(exc),
                    action="starting from an empty memory; it is rewritten on the next change")
        return {}


def save_ports(state_dir: Path, memory: dict[str, Remembered]) -> None:
    """Write atomically: a crash mid-write leaves the old file, never half a file."""
    state_dir.mkdir(parents=True, exist_ok=True)
    document = {"version": FORMAT_VERSION, "printers": {
        identity: {"name": r.name, "port": r.port} for identity, r in sorted(memory.items())}}
    # One writer (this process): its own temporary name, made afresh (a crash may have left it).
    tmp = state_dir / f".{STATE_FILE}.{os.getpid()}.tmp"
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(document, out, indent=1)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, state_dir / STATE_FILE)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
