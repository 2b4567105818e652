"""The printer state machine as a table: (state, trigger) → state, one log line per change."""

from __future__ import annotations

import pytest

from supervisor.core.machine import (
    ABSENT,
    FIRMWARE_NEEDED,
    READY,
    SERVING,
    STATES,
    TRANSITIONS,
    Printer,
    StateChange,
    build_machine,
)

CASES = [
    # state, trigger, needs firmware, expected state
    (ABSENT, "plug", False, READY),
    (ABSENT, "plug", True, FIRMWARE_NEEDED),
    (FIRMWARE_NEEDED, "firmware_loaded", True, READY),
    (READY, "job_started", False, SERVING),
    (SERVING, "job_ended", False, READY),
    (FIRMWARE_NEEDED, "unplug", True, ABSENT),
    (READY, "unplug", False, ABSENT),
    (SERVING, "unplug", False, ABSENT),
    # Triggers that do not apply leave the state alone.
    (ABSENT, "unplug", False, ABSENT),
    (ABSENT, "job_started", False, ABSENT),
    (READY, "plug", False, READY),
    (READY, "job_ended", False, READY),
    (FIRMWARE_NEEDED, "job_started", True, FIRMWARE_NEEDED),
    (SERVING, "job_started", False, SERVING),
    (SERVING, "firmware_loaded", False, SERVING),
]


@pytest.mark.parametrize(("state", "trigger", "firmware", "expected"), CASES)
def test_transition_table(state: str, trigger: str, firmware: bool, expected: str) -> None:
    changes: list[StateChange] = []
    machine = build_machine()
    printer = Printer("p", needs_firmware=firmware, listener=changes.append)
    machine.add_model(printer)
    machine.set_state(state, model=printer)
    printer.trigger(trigger)
    assert printer.state == expected
    if expected == state:
        assert changes == []
    else:
        assert changes == [StateChange("p", state, expected, trigger)]


def test_models_share_one_machine_but_not_their_state() -> None:
    machine = build_machine()
    first, second = Printer("a"), Printer("b")
    machine.add_model([first, second])
    first.plug()
    assert (first.state, second.state) == (READY, ABSENT)


def test_entering_a_state_stamps_since() -> None:
    machine = build_machine()
    printer = Printer("a")
    machine.add_model(printer)
    before = printer.since
    printer.plug()
    assert printer.since > before


def test_every_state_is_reachable_and_can_be_left_by_unplug() -> None:
    destinations = {row["dest"] for row in TRANSITIONS}
    assert destinations == set(STATES)
    unplugged_from = {s for row in TRANSITIONS if row["trigger"] == "unplug" for s in row["source"]}
    assert unplugged_from == set(STATES) - {ABSENT}
