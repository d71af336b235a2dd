"""The timeline replay: the view rebuilt at any event equals what the API answered then."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.db import create_engine, session_factory
from app.session import snapshot_delta
from app.session.models import SessionSnapshot
from app.session.snapshot_delta import CHECKPOINT_EVERY
from tests.session.conftest import SessionServer
from tests.session.test_api_races_and_bad_input import ready_session
from tests.session.test_api_walk import OK_VITALS, Bedside
from tests.support import SignedInClient, run_async


def reaction_and_resume(
    server: SessionServer, team: dict[str, SignedInClient]
) -> tuple[Bedside, list[dict]]:
    """A session through a reaction and a resume; every answer the API gave, in order."""
    b = ready_session(server, team)
    answers = [b.get()]
    answers.append(b.post("nurse", "start"))
    answers.append(b.finish_step())
    server.advance(minutes=4)
    answers.append(b.post("nurse", "vitals", OK_VITALS))
    server.advance(minutes=2)
    answers.append(b.post("nurse", "reactions", {"symptoms": ["flushing", "wheeze"]}))
    server.advance(minutes=1)
    answers.append(
        b.post(
            "nurse",
            "reactions/1/treatments",
            {"drug": "diphenhydramine", "dose": "25 mg", "route": "IV"},
        )
    )
    alarm = next(a for a in answers[-1]["alarms"]["items"] if a["condition"] == "reaction")
    answers.append(b.post("nurse", f"alarms/{alarm['id']}/acknowledge"))
    server.advance(minutes=10)
    answers.append(b.post("physician", "reactions/1/resolve", {"brown_grade": 2}))
    answers.append(b.post("nurse", "vitals", OK_VITALS))
    answers.append(b.post("physician", "resume", {"resume_from": "repeat", "stretch": "2"}))
    server.advance(minutes=1)
    answers.append(b.post("nurse", "confirm-step"))
    answers.append(b.finish_step())
    return b, answers


async def _kinds(database_url: str, sid: int) -> list[str]:
    engine = create_engine(database_url)
    try:
        async with session_factory(engine)() as db:
            return list(
                await db.scalars(
                    select(SessionSnapshot.kind)
                    .where(SessionSnapshot.session_id == sid)
                    .order_by(SessionSnapshot.seq)
                )
            )
    finally:
        await engine.dispose()


@pytest.mark.parametrize("every", [CHECKPOINT_EVERY, 4], ids=["as kept", "a full one often"])
def test_the_view_at_each_event_equals_the_answer_given_then(
    session_server: SessionServer,
    team: dict[str, SignedInClient],
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    every: int,
) -> None:
    monkeypatch.setattr(snapshot_delta, "CHECKPOINT_EVERY", every)  # the server runs in-process
    b, answers = reaction_and_resume(session_server, team)
    # Rebuilt from deltas, and (kept often) from several full ones: the first is always whole.
    kinds = run_async(lambda: _kinds(database_url, b.sid))
    assert kinds[0] == "full" and "delta" in kinds
    assert (kinds.count("full") > 2) == (every == 4), kinds
    auditor = team["auditor"]
    for answer in answers:
        seq = answer["last_event_seq"]
        then = auditor.get(f"/api/v1/sessions/{b.sid}/at/{seq}")
        assert then.status_code == 200, then.text
        assert then.json() == answer, f"at event {seq}"
    # Each event of one change shows that change's result (a reaction and its alarms are
    # written together; there is no state "between" them).
    reacted = next(i for i, a in enumerate(answers) if a["status"] == "paused")
    first = answers[reacted - 1]["last_event_seq"] + 1
    for seq in range(first, answers[reacted]["last_event_seq"] + 1):
        assert auditor.get(f"/api/v1/sessions/{b.sid}/at/{seq}").json() == answers[reacted]
    latest = b.get()
    assert auditor.get(f"/api/v1/sessions/{b.sid}/at/{latest['last_event_seq']}").json() == latest
    assert auditor.get(f"/api/v1/sessions/{b.sid}/at/0").status_code == 404
    assert auditor.get("/api/v1/sessions/999999/at/1").status_code == 404


def test_the_timeline_page_lists_every_event_in_order_and_replays_any_of_them(
    session_server: SessionServer, team: dict[str, SignedInClient], accounts
) -> None:
    from bs4 import BeautifulSoup

    b, answers = reaction_and_resume(session_server, team)
    last = b.get()["last_event_seq"]
    page = team["auditor"].get(f"/sessions/{b.sid}/timeline")
    assert page.status_code == 200
    soup = BeautifulSoup(page.text, "html.parser")
    seqs = [int(tr["id"].removeprefix("event-")) for tr in soup.select("tbody tr[id^=event-]")]
    assert seqs == list(range(1, last + 1))  # every event, in order, none missing
    reported = soup.select_one("tr.cat-reactions")
    assert reported is not None and "nurse" in reported.get_text()
    assert "running" in reported.get_text() and "paused" in reported.get_text()  # before → after

    only_alarms = BeautifulSoup(
        team["auditor"].get(f"/sessions/{b.sid}/timeline?kind=alarms").text, "html.parser"
    )
    kinds = {tr["class"][0] for tr in only_alarms.select("tbody tr[id^=event-]")}
    assert kinds == {"cat-alarms"}

    paused = next(a for a in answers if a["status"] == "paused")
    at = BeautifulSoup(
        team["auditor"].get(f"/sessions/{b.sid}/timeline?at={paused['last_event_seq']}").text,
        "html.parser",
    )
    assert at.select_one("#status-panel .badge").get_text(strip=True) == "Paused"
    assert at.select_one("#reaction-panel.open") is not None
    assert at.select_one("#replay button") is None  # a replay offers no actions

    assert team["nurse"].get(f"/sessions/{b.sid}/timeline").status_code == 200
    admin = SignedInClient(session_server.base_url, accounts["admin"])
    assert admin.get(f"/sessions/{b.sid}/timeline").status_code == 403
    admin.close()
    assert team["auditor"].get("/sessions/999999/timeline").status_code == 404


def test_a_replay_shows_no_actions_even_to_a_physician(
    session_server: SessionServer, team: dict[str, SignedInClient]
) -> None:
    from bs4 import BeautifulSoup

    b, answers = reaction_and_resume(session_server, team)
    paused = next(a for a in answers if a["status"] == "paused")
    page = team["physician"].get(f"/sessions/{b.sid}/timeline?at={paused['last_event_seq']}")
    soup = BeautifulSoup(page.text, "html.parser")
    assert soup.select_one("#alarm-banner li.alarm-high") is not None
    assert soup.select("#replay button") == []
