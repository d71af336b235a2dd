"""Session rows written before keep loading: the stored machine state and alarm board.

`fixtures/stored_states_v1.json` holds real rows written by the service (planned, running, a
pump change due, paused with an open reaction and its audio pause, resumed slower, observing,
completed, aborted with an acknowledged alarm, a plain hold), each with the JSON stored, the
state its decoder gave then (as Python source) and what encoding that state gave back.
"""

from __future__ import annotations

import datetime
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from app.alarms.logic import Alarm, AlarmBoard, AlarmSettings, AudioPause
from app.session import alarm_board, codec
from app.session.ledger import Segment
from app.session.machine import SessionState
from app.session.plan import Bag, Plan, PlanStep
from app.session.record import Checklist, Premedication, Reaction, Treatment

STORED = json.loads((Path(__file__).parent / "fixtures" / "stored_states_v1.json").read_text())
# What the decoded values' source text names.
NAMES: dict[str, Any] = {
    cls.__name__: cls
    for cls in (
        Alarm,
        AlarmBoard,
        AlarmSettings,
        AudioPause,
        Bag,
        Checklist,
        Plan,
        PlanStep,
        Premedication,
        Reaction,
        Segment,
        SessionState,
        Treatment,
    )
} | {"Decimal": Decimal, "datetime": datetime}


# Fields added since the fixture was written: an old row loads with these, and encodes with them.
ADDED_SINCE = {
    "scan_required": False,
    "patient_checked": False,
    "bag_checked": None,
    "double_check_required": False,
    "double_check_due": False,
    "label_hours": "24",
}


def as_decoded_then(source: str) -> Any:
    return eval(source, {"__builtins__": {}}, NAMES)  # our own fixture text


def test_the_fixture_covers_every_phase() -> None:
    phases = {json.loads(row["stored"])["status"] for row in STORED}
    assert phases >= {"planned", "running", "step_due", "paused", "observing"} | {
        "completed",
        "aborted",
    }


@pytest.mark.parametrize("row", STORED, ids=[row["name"] for row in STORED])
def test_a_stored_state_loads_as_before_and_dumps_unchanged(row: dict[str, str]) -> None:
    state = codec.loads(row["stored"])
    assert state == as_decoded_then(row["decoded"])
    encoded = codec.dumps(state)
    assert json.loads(encoded) == json.loads(row["reencoded"]) | ADDED_SINCE
    assert encoded == codec.to_json(json.loads(row["reencoded"]) | ADDED_SINCE)  # same bytes
    assert codec.dumps(codec.loads(encoded)) == encoded


@pytest.mark.parametrize("row", STORED, ids=[row["name"] for row in STORED])
def test_a_stored_alarm_board_loads_as_before_and_dumps_unchanged(row: dict[str, str]) -> None:
    board = alarm_board.loads(row["stored_alarms"])
    assert board == as_decoded_then(row["decoded_alarms"])
    assert alarm_board.dumps(board) == row["reencoded_alarms"]


def test_decimals_stay_strings_and_times_keep_their_offset() -> None:
    row = next(r for r in STORED if r["name"] == "paused_open_reaction")
    stored = json.loads(codec.dumps(codec.loads(row["stored"])))
    reaction = stored["reactions"][0]
    assert stored["plan"]["bags"][2]["concentration"] == "5.952780"  # trailing zero kept
    assert stored["vitals_every_minutes"] == "30"
    assert reaction["onset_at"] == "2031-05-06T09:33:25.000250+00:00"
    assert reaction["treatments"][0]["given_at"].endswith("+00:00")


def test_a_naive_time_is_refused_rather_than_stored() -> None:
    state = codec.loads(STORED[0]["stored"])
    naive = SessionState(state.status, state.plan, last_at=datetime.datetime(2031, 5, 6, 8, 0))
    with pytest.raises(ValueError, match="naive datetime"):
        codec.dumps(naive)
