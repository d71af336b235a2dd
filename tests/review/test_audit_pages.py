"""Audit search: who may see it, each filter, keyset pages, and the integrity check on demand
(a POST with the CSRF token: it writes its result into the log)."""

from __future__ import annotations

import httpx
from bs4 import BeautifulSoup
from sqlalchemy import select

from app.audit import AuditEvent
from app.db import create_engine, session_factory
from tests.session.conftest import SessionServer
from tests.session.test_api_races_and_bad_input import ready_session
from tests.support import SignedInClient, run_async


def seqs_of(html: str) -> list[int]:
    soup = BeautifulSoup(html, "html.parser")
    return [int(tr["id"].removeprefix("audit-")) for tr in soup.select("tr[id^=audit-]")]


def audit_rows(database_url: str, **where: str) -> list[AuditEvent]:
    async def read() -> list[AuditEvent]:
        engine = create_engine(database_url)
        try:
            async with session_factory(engine)() as db:
                query = select(AuditEvent)
                for name, value in where.items():
                    query = query.where(getattr(AuditEvent, name) == value)
                return list(await db.scalars(query.order_by(AuditEvent.seq)))
        finally:
            await engine.dispose()

    return run_async(read)


def test_filters_pages_and_roles(
    session_server: SessionServer,
    team: dict[str, SignedInClient],
    accounts,
    database_url: str,
) -> None:
    b = ready_session(session_server, team)
    b.post("nurse", "start")
    auditor = team["auditor"]

    by_session = seqs_of(auditor.get(f"/audit?session={b.sid}").text)
    expected = [r.seq for r in audit_rows(database_url, entity="session", entity_id=str(b.sid))]
    assert by_session == sorted(expected, reverse=True)[:50]
    assert len(by_session) >= 8  # create, approve, verify, checklist x3, vitals, start

    patient = b.get()["patient_id"]
    by_patient = seqs_of(auditor.get(f"/audit?patient={patient}").text)
    patient_rows = audit_rows(database_url, entity="patient", entity_id=str(patient))
    assert set(by_session) <= set(by_patient)
    assert {r.seq for r in patient_rows} <= set(by_patient)

    nurse_name = accounts["nurse"].username
    page = auditor.get(f"/audit?user={nurse_name}&action=session.")
    rows = BeautifulSoup(page.text, "html.parser").select("tr[id^=audit-]")
    assert rows and all(nurse_name in r.get_text() and "session." in r.get_text() for r in rows)

    first = seqs_of(auditor.get("/audit?size=5").text)
    assert len(first) == 5 and first == sorted(first, reverse=True)
    page_one = BeautifulSoup(auditor.get("/audit?size=5").text, "html.parser")
    older = page_one.find("a", string=lambda t: t and "Older entries" in t)
    assert older is not None and f"before={first[-1]}" in older["href"]
    second = seqs_of(auditor.get(older["href"]).text)
    assert len(second) == 5
    assert second and max(second) < min(first)  # the next page, no overlap, no gap
    assert second[0] == max(r.seq for r in audit_rows(database_url) if r.seq < first[-1])

    assert team["physician"].get("/audit").status_code == 200
    assert team["nurse"].get("/audit").status_code == 403
    admin = SignedInClient(session_server.base_url, accounts["admin"])
    assert admin.get("/audit").status_code == 403
    admin.close()

    for bad, says in (
        ("since=yesterday", "since must be an ISO 8601 time"),
        ("session=abc", "session must be a session id"),
        ("since=2031-01-02T00:00&until=2031-01-01T00:00", "is after until"),
    ):
        answer = auditor.get(f"/audit?{bad}")
        assert answer.status_code == 422 and says in answer.text


def without_csrf_header(client: SignedInClient, path: str, **kwargs) -> httpx.Response:
    """A POST as the client would send it, but without the X-CSRF-Token header it adds."""
    request = client.build_request("POST", path, **kwargs)
    del request.headers["x-csrf-token"]
    return client.send(request)


def test_the_integrity_check_is_a_post_with_the_csrf_token_and_is_recorded(
    session_server: SessionServer,
    team: dict[str, SignedInClient],
    accounts,
    database_url: str,
) -> None:
    auditor = team["auditor"]
    name = accounts["auditor"].username
    checks = len(audit_rows(database_url, action="audit.verify"))
    mine = len(audit_rows(database_url, actor_username=name))

    # What a link on another site makes the browser send (a top-level GET, the sign-in cookie
    # riding along) writes nothing any more.
    answer = auditor.get("/audit/verify", headers={"sec-fetch-site": "cross-site"})
    assert answer.status_code == 405
    assert auditor.get("/audit/verify").status_code == 405
    assert len(audit_rows(database_url, actor_username=name)) == mine

    # A cross-site POST is refused before any route runs; one without the token, or with a
    # wrong one, is refused (and the refusal recorded) without checking or recording a check.
    cross = auditor.post(
        "/audit/verify",
        data={"csrf_token": auditor.csrf_token},
        headers={"sec-fetch-site": "cross-site"},
    )
    assert cross.status_code == 403 and "cross-site" in cross.text
    for form in ({}, {"csrf_token": "not-the-token"}):
        refused = without_csrf_header(auditor, "/audit/verify", data=form)
        assert refused.status_code == 403 and "CSRF" in refused.text, form
    denied = audit_rows(database_url, action="access.denied", actor_username=name)
    assert [d.entity_id for d in denied[-2:]] == ["POST /audit/verify"] * 2
    assert len(audit_rows(database_url, action="audit.verify")) == checks

    # The page's button is a form that posts its CSRF token, as a browser submits it.
    page = BeautifulSoup(auditor.get("/audit").text, "html.parser")
    form = page.select_one("form[action='/audit/verify']")
    assert form is not None and form["method"] == "post"
    assert form.select_one("button[type=submit]") is not None
    fields = {i["name"]: i["value"] for i in form.select("input[type=hidden]")}
    assert fields == {"csrf_token": auditor.csrf_token}
    answer = without_csrf_header(auditor, form["action"], data=fields)
    assert answer.status_code == 200
    status = BeautifulSoup(answer.text, "html.parser").select_one("#chain-status")
    assert status is not None and "intact" in status.get_text()
    recorded = audit_rows(database_url, action="audit.verify")
    assert len(recorded) == checks + 1
    assert '"ok":true' in (recorded[-1].after_json or "").replace(" ", "")
    assert recorded[-1].actor_username == name

    # htmx and scripts send the token as a header instead: the same.
    assert auditor.post("/audit/verify").status_code == 200
    assert len(audit_rows(database_url, action="audit.verify")) == checks + 2
    assert team["nurse"].post("/audit/verify").status_code == 403
    assert len(audit_rows(database_url, action="audit.verify")) == checks + 2


def test_opening_a_report_is_logged_as_an_export(
    session_server: SessionServer,
    team: dict[str, SignedInClient],
    accounts,
    database_url: str,
) -> None:
    b = ready_session(session_server, team)
    assert team["auditor"].get(f"/sessions/{b.sid}/report").status_code == 200
    (row,) = audit_rows(database_url, action="export.report", entity_id=str(b.sid))
    assert row.actor_username == accounts["auditor"].username
