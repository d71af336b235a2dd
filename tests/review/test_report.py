"""The printable session report: the pure assembly of its rows (cumulative doses, pauses,
deviations, signatures), then the page itself on a real server with a session driven through the
API (a reaction, a treatment, a graded resolution, a resume that repeats the step at half speed)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, localcontext
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from bs4 import BeautifulSoup

from app.live.present import amount
from app.review.report_build import build_report
from app.review.report_model import EventRecord, PatientFacts, Person, duration_text
from app.session import machine as M
from app.session import view as V
from app.session.plan import Bag, Plan, PlanStep
from tests.review.views import session_view, vitals_set
from tests.session.conftest import SessionServer, new_patient, session_body
from tests.session.conftest import session_server as session_server
from tests.session.conftest import team as team
from tests.session.test_api_races_and_bad_input import ready_session
from tests.support import SignedInClient

# --- the pure assembly --------------------------------------------------------------------------

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
NURSE, DOCTOR, PHARMACIST = 11, 12, 13
USERS = {
    NURSE: Person("nurse-a", "A. Nurse"),
    DOCTOR: Person("dr-b", "Dr B. Allergist"),
    PHARMACIST: Person("pharm-c", "pharm-c"),
}
PATIENT = PatientFacts("Okafor", "Ada", "MRN1", date(1968, 3, 2), "female", Decimal("64.5"))
INDEX = {"reactions": ["urticaria"], "hypotension": True, "fev1_percent_predicted": "72"}

# Approved: three 15-minute steps from one bag, then the final step to the target.
APPROVED = Plan(
    kind="infusion",
    target_dose=Decimal(100),
    unit="mg",
    bags=(Bag(1, "1/1", Decimal(250), Decimal(1)),),
    steps=(
        PlanStep(solution=1, rate_ml_h=Decimal(4), minutes=Decimal(15)),
        PlanStep(solution=1, rate_ml_h=Decimal(8), minutes=Decimal(15)),
        PlanStep(solution=1, rate_ml_h=Decimal(16), minutes=Decimal(15)),
        PlanStep(solution=1, rate_ml_h=Decimal(40), minutes=None),
    ),
)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def iso(minutes: float | None) -> str | None:
    return None if minutes is None else at(minutes).isoformat()


def step(rate: str, minutes: str | None, origin: str = "plan", of_step: int | None = None):
    return {
        "solution": 1,
        "rate_ml_h": Decimal(rate),
        "minutes": None if minutes is None else Decimal(minutes),
        "dose": None if minutes is None else Decimal(rate) * Decimal(minutes) / 60,
        "origin": origin,
        "of_step": of_step,
    }


def segment(index: int, rate: str, start: float, stop: float | None, dose: str) -> V.Segment:
    return V.Segment(
        step=index,
        solution=1,
        rate_ml_h=Decimal(rate),
        started_at=at(start),
        stopped_at=None if stop is None else at(stop),
        volume_ml=Decimal(dose),
        dose=Decimal(dose),
    )


def make_view(steps: list[dict], segments: list[V.Segment], **extra: Any) -> V.SessionView:
    with localcontext() as ctx:
        ctx.prec = 60  # as the ledger adds
        delivered = sum((s.dose for s in segments), Decimal(0))
    fields: dict[str, Any] = {
        "current_step": len({s.step for s in segments}) - 1 if segments else None,
        "delivered_dose": delivered,
        "delivered_percent": delivered,
        "plan": V.PlanView(
            "infusion",
            (V.Bag(1, "1/1", Decimal(250), Decimal(1)),),
            tuple(V.Step(position=i, **s) for i, s in enumerate(steps)),
        ),
        "segments": tuple(segments),
    }
    return session_view(**(fields | extra))


def event(seq: int, minutes: float, kind: str, actor: int | None = NURSE, **data: Any):
    role = {NURSE: "nurse", DOCTOR: "physician", PHARMACIST: "pharmacist", None: "system"}
    return EventRecord(seq, at(minutes), kind, data, actor, role.get(actor, "nurse"))


def report_of(view: V.SessionView, events: list[EventRecord], now: float = 200, approved=APPROVED):
    return build_report(view, events, USERS, approved, PATIENT, INDEX, at(now))


def test_cumulative_doses_add_up_exactly_to_the_delivered_dose() -> None:
    thirds = "0.333333333333333333333333333333333333333333333333333333333333"
    view = make_view(
        [step("4", "15"), step("8", "15"), step("16", "15"), step("40", None)],
        [
            segment(0, "4", 0, 16, thirds),
            segment(1, "8", 16, 32, thirds),
            segment(2, "16", 32, None, "1.5"),
        ],
    )
    report = report_of(view, [], now=40)
    rows = report.administration
    assert [r.ordinal for r in rows] == [1, 2, 3]
    assert [r.step for r in rows] == [1, 2, 3]
    assert rows[0].cumulative == Decimal(thirds)
    assert rows[1].cumulative == Decimal("0." + "6" * 60)  # not rounded to 28 digits
    # 60-digit arithmetic, as the ledger's: the last total is the view's delivered dose exactly
    assert rows[-1].cumulative == view.delivered_dose == report.delivered_dose
    assert rows[0].minutes == 16
    assert rows[2].stopped_at is None and rows[2].minutes == 8  # running: measured to now
    assert [p.state for p in report.plan] == ["given", "given", "running", "to come"]
    assert report.plan[0].given_dose == Decimal(thirds)
    assert report.deviations == ()


def test_dates_are_shown_when_the_session_crosses_midnight_in_the_facility_zone() -> None:
    # 22:30 to 00:30 UTC crosses midnight in London, not in New York (17:30 to 19:30).
    late = datetime(2026, 3, 2, 22, 30, tzinfo=UTC)
    view = make_view([step("4", None)], [])
    events = [EventRecord(1, late, "created", {}, NURSE, "nurse")]
    after_midnight = late + timedelta(hours=2)
    london = build_report(
        view, events, USERS, APPROVED, PATIENT, INDEX, after_midnight, ZoneInfo("Europe/London")
    )
    new_york = build_report(
        view, events, USERS, APPROVED, PATIENT, INDEX, after_midnight, ZoneInfo("America/New_York")
    )
    assert london.multi_day and not new_york.multi_day
    assert london.time(late) == "02 Mar 22:30:00"
    assert new_york.time(late) == "17:30:00"  # EST


def resumed_session() -> tuple[V.SessionView, list[EventRecord]]:
    """Step 2 reacts at minute 20 (the nurse says the pump stopped at 19); the physician
    resumes at 45 with "repeat, ×2"; the pump restarts at 46; then steps 3, 4 as stretched."""
    steps = [
        step("4", "15"),
        step("8", "15"),
        step("8", "30", "repeat", 1),
        step("16", "30", "plan", 2),
        step("40", None, "plan", 3),
    ]
    view = make_view(
        steps,
        [
            segment(0, "4", 0, 15, "1"),
            segment(1, "8", 15, 19, "0.5"),
            segment(2, "8", 46, 76, "4"),
            segment(3, "16", 76, None, "2"),
        ],
        current_step=3,
        reactions=(
            V.Reaction(
                number=1,
                onset_at=at(20),
                symptoms=("urticaria", "wheeze"),
                at_step=1,
                treatments=(M.Treatment("cetirizine", "10 mg", "PO", at(22)),),
                brown_grade=2,
                ctcae_grade=None,
                resolved_at=at(40),
                note="",
            ),
        ),
    )
    events = [
        event(1, -30, "created"),
        event(2, -20, "approved", DOCTOR, status="planned"),
        event(3, -10, "bags_verified", PHARMACIST, status="ready"),
        event(4, 0, "started"),
        event(5, 0, "step_started", step=0),
        event(6, 15, "step_due", None, next_step=1),
        event(7, 15, "step_confirmed", step=1),
        event(8, 15, "step_started", step=1),
        event(9, 20, "reaction_reported", reaction=1, at_step=1, symptoms=["urticaria"]),
        event(10, 22, "treatment_recorded", reaction=1),
        event(11, 40, "reaction_resolved", DOCTOR, reaction=1, brown_grade=2),
        event(12, 45, "resumed", DOCTOR, resume_from="repeat", stretch="2", next_step=2),
        event(13, 46, "step_confirmed", step=2),
        event(14, 46, "step_started", step=2),
        event(15, 76, "step_confirmed", step=3),
        event(16, 76, "step_started", step=3),
    ]
    return view, events


def test_a_reaction_pause_runs_from_the_pump_stop_to_the_resume_and_the_restart() -> None:
    view, events = resumed_session()
    (pause,) = report_of(view, events).pauses
    assert pause.began_at == at(19)  # the segment's stop, not the report time
    assert pause.at_step == 2
    assert pause.reactions == (1,)
    assert (pause.ended_by, pause.ended_at) == ("resumed", at(45))
    assert pause.resumed_by == "Dr B. Allergist (dr-b)"
    assert pause.resume_choice == "repeat the step, step times ×2"
    assert pause.restarted_at == at(46)
    assert pause.duration == timedelta(minutes=26)
    assert pause.infusion_off == timedelta(minutes=27)


def test_deviations_name_the_repeat_the_stretch_and_the_pause_in_step_order() -> None:
    view, events = resumed_session()
    report = report_of(view, events)
    assert [(d.kind, d.steps) for d in report.deviations] == [
        ("pause", "2"),
        ("repeat", "3"),
        ("stretched", "3–4"),
    ]
    by_kind = {d.kind: d.text for d in report.deviations}
    assert by_kind["repeat"] == "repeats approved step 2"
    assert by_kind["stretched"] == "step time ×2 (15 → 30 min)"
    assert by_kind["pause"] == "paused 26 min (reaction 1)"
    plan = report.plan
    assert [p.state for p in plan] == ["given", "interrupted", "given", "running", "to come"]
    assert [p.stands_for for p in plan] == [1, 2, 2, 3, 4]
    assert [p.deviates for p in plan] == [False, False, True, True, False]
    assert plan[1].reactions == (1,)


def test_rate_caps_intermediate_steps_and_a_short_dose_are_deviations() -> None:
    steps = [
        step("4", "15"),
        step("6", "15", "intermediate", 1),
        step("8", "15", "step_back", 1),
        step("10", "15", "plan", 2),  # approved 16 mL/h: capped at 10
        step("10", None, "plan", 3),  # approved 40 mL/h
    ]
    view = make_view(
        steps,
        [segment(0, "4", 0, 15, "1"), segment(1, "6", 15, 20, "0.5")],
        status="aborted",
        abort_reason="patient request",
    )
    events = [event(1, 20, "aborted", DOCTOR, reason="patient request", delivered="1.5")]
    report = report_of(view, events)
    kinds = [(d.kind, d.steps, d.text) for d in report.deviations]
    assert ("intermediate", "2", "intermediate step inserted after a reaction") in kinds
    assert ("step_back", "3", "steps back to approved step 2") in kinds
    assert ("rate_capped", "4–5", "rate capped (16 → 10 mL/h, 40 → 10 mL/h)") in kinds
    assert kinds[-1] == ("dose", "—", "delivered 1.5 of 100 mg")
    assert [p.state for p in report.plan][2:] == ["not given", "not given", "not given"]
    assert report.plan[1].stands_for is None  # an intermediate step stands for no approved one
    (signature,) = report.signatures
    assert signature.what == "Session aborted"
    assert signature.detail == "patient request; 1.5 mg delivered"
    assert report.ended_at == at(20)


def test_a_hold_still_open_is_measured_to_now_and_one_ended_by_abort_stops_there() -> None:
    view = make_view([step("4", "15"), step("40", None)], [segment(0, "4", 0, 10, "0.6")])
    hold = [
        event(1, 0, "step_started", step=0),
        event(2, 11, "paused", reason="IV line blocked", stopped_at=iso(10)),
    ]
    (pause,) = report_of(view, hold, now=30).pauses
    assert (pause.began_at, pause.reason, pause.ended_by) == (at(10), "IV line blocked", "")
    assert pause.duration == timedelta(minutes=20) and pause.infusion_off is None
    aborted = [*hold, event(3, 25, "aborted", DOCTOR, reason="line", delivered="0.6")]
    (pause,) = report_of(view, aborted, now=30).pauses
    assert (pause.ended_by, pause.ended_at, pause.duration) == (
        "aborted",
        at(25),
        timedelta(minutes=15),
    )
    assert pause.resumed_by == ""


def test_a_reaction_during_observation_pauses_from_the_report_not_the_last_step() -> None:
    view = make_view([step("4", "15"), step("40", None)], [segment(0, "4", 0, 15, "1")])
    events = [
        event(1, 0, "step_started", step=0),
        event(2, 15, "last_step_done", None),
        event(3, 40, "reaction_reported", reaction=1),
        event(4, 50, "resumed", DOCTOR, to="observing"),
    ]
    (pause,) = report_of(view, events).pauses
    assert (pause.began_at, pause.ended_at) == (at(40), at(50))
    assert pause.resume_choice == "continue the observation"
    assert pause.restarted_at is None


def test_signatures_name_people_and_the_automatic_actor() -> None:
    view, events = resumed_session()
    events = [*events, event(17, 90, "completed", 99, delivered="100")]
    report = report_of(view, events)
    rows = [(s.what, s.who, s.role) for s in report.signatures]
    assert rows == [
        ("Plan drafted", "A. Nurse (nurse-a)", "nurse"),
        ("Plan approved", "Dr B. Allergist (dr-b)", "physician"),
        ("Bags verified", "pharm-c", "pharmacist"),
        ("Infusion started", "A. Nurse (nurse-a)", "nurse"),
        ("Reaction resolved and graded", "Dr B. Allergist (dr-b)", "physician"),
        ("Resumed", "Dr B. Allergist (dr-b)", "physician"),
        ("Session completed", "user 99", "nurse"),
    ]
    assert report.signatures[4].detail == "reaction 1: Brown grade 2"
    (reaction,) = report.reactions
    assert reaction.graded_by == "Dr B. Allergist (dr-b)"
    assert reaction.at_step == 2
    assert reaction.symptoms == ("Hives (urticaria)", "Wheeze")
    assert [t.drug for t in reaction.treatments] == ["cetirizine"]
    assert report.index_reactions == ("urticaria or flushing",)
    assert report.index_flags == (
        "hypotension at the index reaction",
        "FEV1 72 % of predicted",
    )
    assert report.age == 58  # on the day of the session: its 58th birthday


def test_vitals_keep_every_version_and_say_why_a_value_is_missing() -> None:
    def reading(rid: int, version: int, current: bool, sbp: dict, reason: str | None):
        return vitals_set(
            at(5),
            {
                "systolic_bp": sbp,
                "spo2": {"status": "refused", "reason": "asleep"},
                "symptoms": ["flushing"],
                "note": "calm",
            },
            id=rid + version,
            reading_id=rid,
            version=version,
            current=current,
            amendment_reason=reason,
            recorded_by=NURSE,
            step=0,
        )

    view = make_view(
        [step("4", "15")],
        [],
        vitals=(
            reading(1, 1, False, {"status": "measured", "value": "12"}, None),
            reading(1, 2, True, {"status": "measured", "value": "120"}, "typo"),
            reading(3, 1, True, {"status": "unable_to_obtain", "reason": "cuff"}, None),
        ),
    )
    report = report_of(view, [])
    assert report.vital_fields == ("systolic_bp", "spo2")  # only what was recorded, in order
    old, new, unable = report.vitals
    assert (old.current, old.values["systolic_bp"]) == (False, "12")
    assert (new.version, new.amendment_reason, new.values["systolic_bp"]) == (2, "typo", "120")
    assert unable.values == {"systolic_bp": "unable: cuff", "spo2": "refused: asleep"}
    assert (new.step, new.recorded_by, new.symptoms, new.note) == (
        1,
        "A. Nurse (nurse-a)",
        ("Flushing",),
        "calm",
    )


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(minutes=21), "21 min"),
        (timedelta(minutes=16, seconds=20), "16 min 20 s"),
        (timedelta(hours=2, minutes=5, seconds=59), "2 h 05 min"),
        (None, "—"),
    ],
)
def test_durations_read_like_a_clock(delta: timedelta | None, text: str) -> None:
    assert duration_text(delta) == text


# --- the page, on a real server -----------------------------------------------------------------


def _report(client: SignedInClient, sid: int) -> BeautifulSoup:
    response = client.get(f"/sessions/{sid}/report")
    assert response.status_code == 200, response.text
    return BeautifulSoup(response.text, "html.parser")


def _cells(row) -> list[str]:
    return [c.get_text(" ", strip=True) for c in row.find_all(["td", "th"])]


def test_the_report_of_a_session_with_a_reaction_and_a_resume(
    session_server: SessionServer, team: dict[str, SignedInClient]
) -> None:
    b = ready_session(session_server, team)
    b.post("nurse", "start")
    for _ in range(3):
        b.finish_step()  # steps 1-3; step 4 runs
    session_server.advance(minutes=4)
    view = b.post("nurse", "reactions", {"symptoms": ["urticaria", "wheeze"]})
    alarm = next(a for a in view["alarms"]["items"] if a["condition"] == "reaction")
    b.post("physician", f"alarms/{alarm['id']}/acknowledge")
    session_server.advance(minutes=1)
    b.post(
        "nurse",
        "reactions/1/treatments",
        {"drug": "diphenhydramine", "dose": "25 mg", "route": "IV"},
    )
    session_server.advance(minutes=20)
    b.post("physician", "reactions/1/resolve", {"brown_grade": 2})
    b.vitals()
    b.post("physician", "resume", {"resume_from": "repeat", "stretch": "2"})
    session_server.advance(minutes=1)
    b.post("nurse", "confirm-step")
    for _ in range(2):
        b.finish_step()
    view = b.get()  # the manual clock stands still: the report reads the same moment
    assert view["status"] == "running"
    physician = team["physician"].account.username

    page = _report(team["auditor"], b.sid)

    # plan beside the actual administration: one row per segment, the running total exact
    rows = page.select("#administration-table tbody tr")
    assert len(rows) == len(view["segments"])
    for row, seg in zip(rows, view["segments"], strict=True):
        assert int(row["data-step"]) == seg["step"] + 1
        assert Decimal(row.select_one(".dose-cell")["data-exact"]) == Decimal(seg["dose"])
        # dated ("07 Dec 21:55:53") when the session crosses midnight in the facility's zone
        assert any(c.endswith(seg["started_at"][11:19]) for c in _cells(row))
    cumulative = [
        Decimal(td["data-exact"]) for td in page.select("#administration-table .cumulative")
    ]
    assert cumulative == sorted(cumulative)
    assert cumulative[-1] == Decimal(view["delivered_dose"])
    last = page.select("#administration-table .cumulative")[-1].get_text(strip=True)
    assert last == amount(view["delivered_dose"], 3)
    plan_rows = page.select("#plan-table tbody tr")
    assert len(plan_rows) == len(view["plan"]["steps"])
    repeat = page.select_one('#plan-table tr[data-origin="repeat"]')
    assert "deviates" in repeat["class"]
    assert _cells(repeat)[:6] == ["5", "repeat", "4", "1", "20", "30 (15)"]

    # the pause, with its duration: stopped at the report of the reaction, resumed 21 min later
    (pause,) = page.select("#pauses-table tbody tr")
    cells = _cells(pause)
    assert cells[1] == "4" and "reaction 1" in cells[3]
    assert physician in cells[5]
    assert "repeat the step, step times ×2" in cells[6]
    assert cells[-2:] == ["21 min", "22 min"]  # paused; infusion off until the pump restarted

    # deviations: the pause, the repeated step, the stretched step times
    deviations = {
        row["data-kind"]: _cells(row) for row in page.select("#deviations-table tbody tr")
    }
    assert deviations["pause"][2] == "paused 21 min (reaction 1)"
    assert deviations["repeat"][:1] == ["5"] and "approved step 4" in deviations["repeat"][2]
    assert deviations["stretched"][0] == "5–12"
    assert deviations["stretched"][2] == "step time ×2 (15 → 30 min)"

    # reactions, grades, treatments
    reaction = page.select_one("#reaction-1")
    text = reaction.get_text(" ", strip=True)
    assert "Brown grade 2" in text and "at step 4" in text
    assert "diphenhydramine" in text and "25 mg" in text and "Wheeze" in text
    assert physician in text  # graded by

    # signatures: the physician approved, graded and resumed
    signatures = [_cells(r) for r in page.select("#signatures-table tbody tr")]
    whats = {c[1]: c[2] for c in signatures}
    assert physician in whats["Plan approved"]
    assert physician in whats["Resumed"]
    assert team["pharmacist"].account.username in whats["Bags verified"]
    assert team["nurse"].account.username in whats["Infusion started"]

    # alarms with their acknowledgement, vitals with their chart, nothing inline
    high = [r for r in page.select("#alarms-table tbody tr") if "priority-high" in r["class"]]
    assert any(physician in _cells(r)[3] for r in high)
    assert len(page.select("#vitals-table tbody tr")) == len(view["vitals"])
    charts = page.select("#vitals svg.chart")
    assert len(charts) == 2 and all(c.select("line.limit") for c in charts)
    assert all(c.select("polyline.series") for c in charts)
    assert page.select_one("#premedications-none") is not None
    assert "urticaria" in page.select_one("#index-reaction").get_text()
    assert page.find_all(style=True) == [] and page.find_all("style") == []
    assert all(s.get("src") for s in page.find_all("script"))
    back = page.select_one(".screen-only #back-to-bedside")
    assert back["href"] == f"/sessions/{b.sid}"
    assert "Print" in page.select_one(".print-hint").get_text()
    assert page.select_one('link[href^="/static/css/report.css?v="]') is not None


def test_a_planned_session_has_nothing_given_and_no_deviations(
    session_server: SessionServer, team: dict[str, SignedInClient]
) -> None:
    nurse = team["nurse"]
    created = nurse.post("/api/v1/sessions", json=session_body(new_patient(nurse)))
    assert created.status_code == 201, created.text
    sid = created.json()["id"]
    page = _report(team["pharmacist"], sid)
    assert page.select_one("#administration-none") is not None
    assert page.select_one("#deviations-none") is not None
    assert len(page.select("#plan-table tbody tr")) == 12
    assert {r["data-origin"] for r in page.select("#plan-table tbody tr")} == {"plan"}
    assert [_cells(r)[1] for r in page.select("#signatures-table tbody tr")] == ["Plan drafted"]
    assert "not yet" in page.select_one("#outcome").get_text()


def test_who_may_read_the_report(
    session_server: SessionServer, team: dict[str, SignedInClient], accounts
) -> None:
    b = ready_session(session_server, team)
    for role in ("nurse", "physician", "pharmacist", "auditor"):
        assert team[role].get(f"/sessions/{b.sid}/report").status_code == 200, role
    admin = SignedInClient(session_server.base_url, accounts["admin"])
    try:
        refused = admin.get(f"/sessions/{b.sid}/report")
    finally:
        admin.close()
    assert refused.status_code == 403
    assert "may not" in refused.text
    missing = team["auditor"].get("/sessions/999999/report")
    assert missing.status_code == 404
    assert "There is no session 999999." in missing.text
    anonymous = httpx.get(f"{session_server.base_url}/sessions/{b.sid}/report")
    assert anonymous.status_code == 303
    assert anonymous.headers["location"].startswith("/login?next=")
