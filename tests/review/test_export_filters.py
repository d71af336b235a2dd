"""The time and text filters of the audit search and of the exports, at their edges: a time that
falls outside the years 1-9999 once it is taken to UTC, and text that is not plain, are refused
with a 422 naming the filter (they were a 500, and text was only checked for NUL), on every
route that takes them; nothing is exported or audited."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from bs4 import BeautifulSoup

from app import localtime
from app.config import Settings
from tests.review.test_exports import export_entries, last_seq
from tests.session.conftest import SessionServer
from tests.session.test_api_races_and_bad_input import ready_session
from tests.support import Account, SignedInClient

# Every route whose query goes through app.review.exports.parse_time / text_filter.
EXPORTS = (
    "/audit/export.csv",
    "/audit/export.jsonl",
    "/vitals/export.csv",
    "/sessions/{sid}/vitals.csv",
)
AUDIT_ONLY = ("/audit/export.csv", "/audit/export.jsonl")

OUT_OF_RANGE = (
    ("since", "0001-01-01T00:00:00+01:00"),  # the year 0 in UTC
    ("until", "9999-12-31T23:59:59-01:00"),  # the year 10000 in UTC
    ("since", "0001-01-01T00:59:59.999999+01:00"),
    ("until", "9999-12-31T23:00:00-23:59"),
)


def refused(answer, field: str, words: str) -> None:
    assert answer.status_code == 422, (answer.request.url, answer.text)
    body = answer.json()
    assert body["field"] == field, body
    assert body["detail"].startswith(field) and words in body["detail"], body


def page_refused(answer, field: str, words: str) -> None:
    assert answer.status_code == 422, (answer.request.url, answer.text)
    error = BeautifulSoup(answer.text, "html.parser").select_one(f"[data-error-for={field}]")
    assert error is not None, answer.text
    assert error.get_text().startswith(field) and words in error.get_text()


def test_times_outside_the_years_1_to_9999_in_utc_are_refused_on_every_route(
    session_server: SessionServer, team: dict[str, SignedInClient], database_url: str
) -> None:
    sid = ready_session(session_server, team).sid
    auditor = team["auditor"]
    before = last_seq(database_url)
    for field, value in OUT_OF_RANGE:
        for path in EXPORTS:
            answer = auditor.get(path.format(sid=sid), params={field: value})
            refused(answer, field, "between the years 1 and 9999 in UTC")
        page = auditor.get("/audit", params={field: value})
        page_refused(page, field, "between the years 1 and 9999 in UTC")
    assert export_entries(database_url, before) == []

    # The very edges that do fit are times like any other (and the database takes them).
    edges = {"since": "0001-01-01T00:00:00Z", "until": "9999-12-31T23:59:59.999999Z"}
    for path in EXPORTS:
        assert auditor.get(path.format(sid=sid), params=edges).status_code == 200, path
    assert auditor.get("/audit", params=edges).status_code == 200
    recorded = export_entries(database_url, before)
    assert len(recorded) == len(EXPORTS)
    assert all('"since":"0001-01-01T00:00:00.000000Z"' in e["after_json"] for e in recorded)


@pytest.fixture
def zoned(
    database_url: str, accounts: dict[str, Account], start_server
) -> Iterator[Callable[[str], SignedInClient]]:
    """A server whose facility reads another time zone, and its auditor signed in. The zone is
    the process's (app.localtime): it is set back afterwards."""
    previous = localtime.zone_name()
    clients: list[SignedInClient] = []

    def make(zone: str) -> SignedInClient:
        base = start_server(Settings(database_url=database_url, env="test", timezone=zone))
        clients.append(SignedInClient(base, accounts["auditor"]))
        return clients[-1]

    yield make
    for client in clients:
        client.close()
    localtime.configure(previous)


def test_plain_dates_and_times_at_the_edges_are_refused_where_the_facility_zone_moves_them(
    zoned: Callable[[str], SignedInClient], database_url: str
) -> None:
    """A time without a zone is the facility's: midnight of 0001-01-01 in Tokyo is still the
    year 0 in UTC, and the last minute of 9999 in New York already the year 10000."""
    before = last_seq(database_url)
    tokyo = zoned("Asia/Tokyo")
    for path in ("/audit/export.csv", "/audit/export.jsonl", "/vitals/export.csv"):
        refused(tokyo.get(path, params={"since": "0001-01-01"}), "since", "years 1 and 9999")
    page_refused(tokyo.get("/audit", params={"since": "0001-01-01"}), "since", "years 1 and")
    assert tokyo.get("/audit", params={"until": "9999-12-31"}).status_code == 200

    new_york = zoned("America/New_York")
    for path in ("/audit/export.csv", "/audit/export.jsonl", "/vitals/export.csv"):
        answer = new_york.get(path, params={"until": "9999-12-31T23:59"})
        refused(answer, "until", "years 1 and 9999")
    page_refused(new_york.get("/audit", params={"until": "9999-12-31T23:59"}), "until", "years")
    assert new_york.get("/audit", params={"since": "0001-01-01"}).status_code == 200
    assert export_entries(database_url, before) == []


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("user", "nurse\u202e", "U+202E (right-to-left override)"),
        ("user", "nur\u200bse", "U+200B (zero width space)"),
        ("action", "export.\x1b[2J", "U+001B"),
        ("entity_id", "12\ufeff", "U+FEFF"),
        ("action", "session.\x00", "U+0000"),
        ("user", "nurse\nadmin", "U+000A"),
    ],
)
def test_text_filters_must_be_plain_text_on_one_line(
    session_server: SessionServer,
    team: dict[str, SignedInClient],
    database_url: str,
    field: str,
    value: str,
    says: str,
) -> None:
    auditor = team["auditor"]
    before = last_seq(database_url)
    for path in AUDIT_ONLY:
        refused(auditor.get(path, params={field: value}), field, says)
    if field != "entity_id":  # the search page has no such field
        page_refused(auditor.get("/audit", params={field: value}), field, says)
    assert export_entries(database_url, before) == []
