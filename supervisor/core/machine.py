"""The printer state machine of SPEC §1: its transition table and the per-printer model."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from transitions import Machine

ABSENT: Final = "absent"
FIRMWARE_NEEDED: Final = "firmware-needed"
READY: Final = "ready"
SERVING: Final = "serving"

STATES: Final = (ABSENT, FIRMWARE_NEEDED, READY, SERVING)
#: States in which the printer's port listens (SPEC §5).
LISTENING_STATES: Final = frozenset({READY, SERVING})

#: The whole machine, as data. Rows are tried in order; the first whose conditions hold wins.
TRANSITIONS: Final[tuple[dict[str, Any], ...]] = (
    {"trigger": "plug", "source": ABSENT, "dest": FIRMWARE_NEEDED, "conditions": "needs_firmware"},
    {"trigger": "plug", "source": ABSENT, "dest": READY},
    {"trigger": "firmware_loaded", "source": FIRMWARE_NEEDED, "dest": READY},
    {"trigger": "job_started", "source": READY, "dest": SERVING},
    {"trigger": "job_ended", "source": SERVING, "dest": READY},
    {"trigger": "unplug", "source": [FIRMWARE_NEEDED, READY, SERVING], "dest": ABSENT},
)

logging.getLogger("transitions").setLevel(logging.WARNING)


@dataclass(frozen=True)
class StateChange:
    """What one transition did, handed to whoever watches the printer."""

    printer: str
    source: str
    dest: str
    trigger: str


StateListener = Callable[[StateChange], None]


class Printer:
    """One printer's model: its state plus the facts `status` reports about it.

    The machine only records and decides; the work a state calls for (a listener, a firmware
    push) is started by whoever listens for state changes, and reports back by trigger.
    """

    state: str
    # Triggers, attached by the machine (declared for type checkers).
    plug: Callable[..., bool]
    firmware_loaded: Callable[..., bool]
    job_started: Callable[..., bool]
    job_ended: Callable[..., bool]
    unplug: Callable[..., bool]

    def __init__(self, name: str, *, needs_firmware: bool = False,
                 listener: StateListener | None = None) -> None:
        self.name = name
        self.firmware_required = needs_firmware
        self.since = datetime.now(UTC)
        self._error: str | None = None
        self.error_since: datetime | None = None  # when the error that still holds was first seen
        self.jobs = 0
        self.bytes = 0
        self.queued = 0
        self._listener = listener

    @property
    def error(self) -> str | None:
        """The last problem that still holds, or None."""
        return self._error

    @error.setter
    def error(self, value: str | None) -> None:
        if value != self._error:
            self.error_since = datetime.now(UTC) if value is not None else None
        self._error = value

    def needs_firmware(self, _event: Any = None) -> bool:
        """Condition of `plug`: does this printer get firmware before it may print?"""
        return self.firmware_required

    def _after_change(self, event: Any) -> None:
        self.since = datetime.now(UTC)
        change = StateChange(self.name, event.transition.source, event.transition.dest,
                             event.event.name)
        if self._listener is not None:
            self._listener(change)


def build_machine() -> Machine:
    """The one machine shared by every printer (a model each).

    Synchronous: a transition only records and decides (the work runs in tasks the listener
    starts), so nothing in it awaits; transitions' AsyncMachine cost ~10 asyncio.gather calls
    and 3 loop turns per trigger, twice per job. Queued: a trigger fired from a callback runs
    after the transition in progress, never inside it.
    """
    return Machine(
        model=None,
        states=list(STATES),
        transitions=[dict(row) for row in TRANSITIONS],
        initial=ABSENT,
        queued=True,
        auto_transitions=False,
        send_event=True,
        after_state_change="_after_change",
        ignore_invalid_triggers=True,
    )


def mermaid() -> str:
    """The state diagram, drawn from TRANSITIONS (the README embeds it; a test compares)."""
    ids = {state: state.replace("-", "_") for state in STATES}
    lines = ["stateDiagram-v2"]
    lines += [f'    state "{state}" as {ids[state]}' for state in STATES if ids[state] != state]
    lines.append(f"    [*] --> {ids[ABSENT]}")
    for row in TRANSITIONS:
        sources = row["source"] if isinstance(row["source"], list) else [row["source"]]
        label = row["trigger"] + (f" [{row['conditions']}]" if "conditions" in row else "")
        lines += [f"    {ids[source]} --> {ids[row['dest']]}: {label}" for source in sources]
    return "\n".join(lines)


if __name__ == "__main__":
    print(mermaid())
