"""The session's views carry a bounded window of vitals (the newest sets and the newest
baseline) whatever the history; the full history is paged on demand; the trend chart draws one
line per vital. Real server, real database."""

from __future__ import annotations

from bs4 import BeautifulSoup

from app.session.view import RECENT_VITALS
from tests.session.conftest import SessionServer
from tests.session.test_api_races_and_bad_input import ready_session
from tests.session.test_api_walk import OK_VITALS, Bedside
from tests.support import SignedInClient

HISTORY = 500


def _bedside_html(b: Bedside) -> BeautifulSoup:
    page = b.team["nurse"].get(f"/sessions/{b.sid}")
    assert page.status_code == 200, page.text
    return BeautifulSoup(page.text, "html.parser")


def _record(b: Bedside, count: int, every: float = 0) -> dict:
    """`count` sets, `every` seconds apart (0: the clock stays, so no step falls due)."""
    answer: dict = {}
    for n in range(count):
        b.server.advance(seconds=every)
        answer = b.post("nurse", "vitals", {**OK_VITALS, "heart_rate": 60 + n % 30})
    return answer


def test_the_views_stay_bounded_at_500_sets_and_the_full_history_is_paged(
    session_server: SessionServer, team: dict[str, SignedInClient]
) -> None:
    b = ready_session(session_server, team)  # the baseline: the first set
    baseline_id = b.get()["vitals"][0]["id"]
    b.post("nurse", "start")
    early = _record(b, RECENT_VITALS + 3)
    early_page = team["nurse"].get(f"/sessions/{b.sid}").text
    late = _record(b, HISTORY - RECENT_VITALS - 4)

    # The answer, the GET and the replay carry the newest sets and the old baseline only.
    got = b.get()
    assert got["vitals_total"] == HISTORY == late["vitals_total"]
    assert len(late["vitals"]) == len(got["vitals"]) == RECENT_VITALS + 1
    assert got["vitals"][0]["id"] == baseline_id and got["vitals"][0]["baseline"]
    assert not any(v["baseline"] for v in got["vitals"][1:])
    ids = [v["id"] for v in got["vitals"]]
    assert ids == sorted(ids) and ids[-1] == late["vitals"][-1]["id"]
    # Sizes do not grow with the history (ids and times differ by a few characters).
    assert len(str(late)) <= len(str(early)) * 1.02
    bedside_page = team["nurse"].get(f"/sessions/{b.sid}").text
    assert len(bedside_page) <= len(early_page) * 1.05
    replay = team["auditor"].get(f"/api/v1/sessions/{b.sid}/at/{got['last_event_seq']}")
    assert replay.json() == got

    # The full history: every set, newest first, a page at a time.
    seen: list[int] = []
    before = None
    while True:
        query = {"limit": 200} | ({"before": before} if before else {})
        page = team["auditor"].get(f"/api/v1/sessions/{b.sid}/vitals", params=query)
        assert page.status_code == 200, page.text
        body = page.json()
        assert body["total"] == HISTORY and len(body["items"]) <= 200
        seen += [v["id"] for v in body["items"]]
        before = body["next_before"]
        if before is None:
            break
    assert len(seen) == len(set(seen)) == HISTORY
    assert seen == sorted(seen, reverse=True) and seen[-1] == baseline_id
    assert seen[:RECENT_VITALS] == ids[:0:-1]
    too_many = team["auditor"].get(f"/api/v1/sessions/{b.sid}/vitals", params={"limit": 1000})
    assert too_many.status_code == 422

    # The bedside links to it; its page lists the newest and links to the older ones.
    soup = _bedside_html(b)
    link = soup.select_one("#vitals-history-link")
    assert link is not None and link["href"] == f"/sessions/{b.sid}/vitals"
    assert str(HISTORY) in link.get_text()
    history = BeautifulSoup(team["nurse"].get(link["href"]).text, "html.parser")
    assert len(history.select("#vitals-full-history tbody tr")) == 50
    older = history.select_one("#vitals-older")
    assert older is not None
    second = BeautifulSoup(team["nurse"].get(older["href"]).text, "html.parser")
    assert len(second.select("#vitals-full-history tbody tr")) == 50


def test_the_chart_draws_one_line_per_vital_and_the_baseline_keeps_its_limits(
    session_server: SessionServer, team: dict[str, SignedInClient]
) -> None:
    b = ready_session(session_server, team)
    b.post("nurse", "start")
    _record(b, RECENT_VITALS + 5, every=20)
    soup = _bedside_html(b)
    charts = soup.select("#trend-chart svg.chart")
    assert len(charts) == 2
    sbp_hr, spo2 = charts
    assert [p["class"] for p in sbp_hr.select("polyline")] == [
        ["series", "series-sbp"],
        ["series", "series-hr"],
    ]
    assert [p["class"] for p in spo2.select("polyline")] == [["series", "series-spo2"]]
    # One mark per vital (its newest reading), not one per reading.
    assert len(sbp_hr.select("circle")) == 2 and len(spo2.select("circle")) == 1
    assert all(len(p["points"].split()) == RECENT_VITALS for p in soup.select("polyline"))
    assert "HR from" in sbp_hr.select_one("desc").get_text()
    # The baseline is old, yet its limits are drawn (a fall from it) and the entry form
    # gets its values.
    labels = [t.get_text() for t in sbp_hr.select("text.limit-label")]
    assert any(label.startswith("-") for label in labels), labels
    assert soup.select('#baseline-values li[data-field="systolic_bp"]')


def test_a_reaction_keeps_its_suggested_grade_once_its_sets_leave_the_window(
    session_server: SessionServer, team: dict[str, SignedInClient]
) -> None:
    b = ready_session(session_server, team)
    b.post("nurse", "start")
    session_server.advance(minutes=3)
    b.post("nurse", "reactions", {"symptoms": ["wheeze"]})
    session_server.advance(minutes=1)
    low = b.post(
        "nurse",
        "vitals",
        {**OK_VITALS, "systolic_bp": 78, "diastolic_bp": 50, "spo2": 89, "confirm": True},
    )
    graded = low["reactions"][0]["suggested_grade"]
    assert graded is not None and graded["brown_grade"] == 3, graded
    later = _record(b, RECENT_VITALS + 2, every=20)
    assert all(str(v["values"]["systolic_bp"]["value"]) != "78" for v in later["vitals"])
    assert later["reactions"][0]["suggested_grade"] == graded


def test_the_chart_of_500_readings_is_one_polyline_per_vital_and_skips_a_carried_baseline() -> None:
    from datetime import UTC, datetime, timedelta
    from decimal import Decimal

    from app.live import present as P
    from app.templating import templates

    t0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    base = P.VitalsRow(t0, None, True, {}, {"systolic_bp": Decimal(200)}, carried=True)
    rows = [base] + [
        P.VitalsRow(
            t0 + timedelta(hours=5, minutes=n),
            0,
            False,
            {},
            {"systolic_bp": Decimal(100 + n % 20), "heart_rate": Decimal(70)},
        )
        for n in range(HISTORY)
    ]
    c = P.chart(
        rows,
        (("systolic_bp", "series-sbp"), ("heart_rate", "series-hr")),
        [("SBP 90", "limit-high", Decimal(90))],
        Decimal(60),
        Decimal(140),
    )
    assert [s.name for s in c.series] == ["systolic_bp", "heart_rate"]
    assert all(len(s.points.split()) == HISTORY for s in c.series)
    assert c.high < 200  # the carried baseline is not drawn (nor stretches the axes)
    assert c.series[0].last is not None and c.series[0].last[0] == P.CHART_W - P.PAD_R
    assert "SBP from 100 to 119" in c.summary and f"last {HISTORY} vitals sets" in c.summary
    macros = templates.env.get_template("sessions/_regions.html").make_module(
        {"oob": False, "sbp_chart": c, "spo2_chart": c}
    )
    svg = BeautifulSoup(str(macros.chart_svg(c, "Systolic pressure")), "html.parser")
    assert len(svg.select("polyline")) == 2 and len(svg.select("circle")) == 2
    assert svg.select_one("desc").get_text() == c.summary


def test_the_vitals_answer_worked_out_without_reading_equals_the_window_read_again(
    session_server: SessionServer, team: dict[str, SignedInClient]
) -> None:
    # The POST builds its answer's window from the one it read before storing the set; the
    # GET reads it again from the database: the same sets, the baseline kept once it is old.
    b = ready_session(session_server, team)
    b.post("nurse", "start")
    for n in range(RECENT_VITALS + 2):
        answer = b.post("nurse", "vitals", {**OK_VITALS, "heart_rate": 61 + n})
        got = b.get()
        assert answer["vitals"] == got["vitals"], n
        assert answer["vitals_total"] == got["vitals_total"] == n + 2
