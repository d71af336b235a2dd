"""The HTML forms and the CSV and search routes under generated input (Hypothesis): whatever is
typed — control and bidi characters, numbers past any range, dates out of the calendar, very
long text — the answer is a page or a refusal, never a server error. Real HTTP, both databases.

Bounded for CI (a fixed number of examples per route, derandomized); STEPWISE_FUZZ_EXAMPLES
for a longer campaign."""

from __future__ import annotations

import os
from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import run_server, settings_for
from tests.session.conftest import new_patient, session_body
from tests.support import SignedInClient, create_account, login_form_token

EXAMPLES = int(os.environ.get("STEPWISE_FUZZ_EXAMPLES", "40"))
FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Text as people and attackers type it: any character (NUL, bidi overrides, surrogates are
# sent as the browser would, UTF-8-encoded where possible), short or long, and the values that
# broke parsers before: huge and tiny numbers, dates at the calendar's ends.
EDGES = st.sampled_from(
    [
        "",
        " ",
        "0",
        "-1",
        "1e30",
        "1e-30",
        "NaN",
        "Infinity",
        "9" * 40,
        "0001-01-01",
        "9999-12-31",
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:59:59-01:00",
        "2026-02-30",
        "a\x00b",
        "Smith\u202eetal",
        '=HYPERLINK("http://x")',
        "<script>alert(1)</script>",
        "../../etc/passwd",
        "x" * 5000,
    ]
)
TEXT = st.one_of(
    EDGES,
    st.text(st.characters(exclude_categories=("Cs",)), max_size=60),
    st.text(max_size=300).map(lambda t: t.encode("utf-8", "replace").decode("utf-8")),
)


@pytest.fixture
def fuzz_server(database_url: str) -> Iterator[tuple[str, dict[str, SignedInClient], int]]:
    with run_server(settings_for(database_url)) as base:
        accounts = {r: create_account(database_url, r) for r in ("nurse", "physician", "admin")}
        clients = {r: SignedInClient(base, a) for r, a in accounts.items()}
        patient = new_patient(clients["nurse"])
        created = clients["nurse"].post("/api/v1/sessions", json=session_body(patient))
        assert created.status_code == 201, created.text
        try:
            yield base, clients, created.json()["id"]
        finally:
            for client in clients.values():
                client.close()


def _ok(answer, what: str) -> None:
    assert answer.status_code < 500, (what, answer.status_code, answer.text[:500])


def test_the_forms_never_answer_a_server_error(fuzz_server) -> None:
    _, clients, _ = fuzz_server
    nurse, admin = clients["nurse"], clients["admin"]

    @FUZZ
    @given(
        patient=st.fixed_dictionaries(
            {
                k: TEXT
                for k in (
                    "mrn",
                    "family_name",
                    "given_name",
                    "birth_date",
                    "sex",
                    "weight_kg",
                    "allergy_history",
                )
            }
        ),
        session=st.fixed_dictionaries(
            {
                k: TEXT
                for k in (
                    "patient_id",
                    "drug",
                    "route",
                    "template",
                    "dose",
                    "unit",
                    "final_rate",
                    "bag_volume",
                    "step_minutes",
                    "start_fraction",
                    "factor",
                    "steps",
                    "interval",
                    "doses",
                    "reactions",
                    "observation_minutes",
                    "fev1_percent_predicted",
                    "copy_from",
                    "location",
                    "assigned_nurse",
                    "diluent",
                    "submission_key",
                )
            }
        ),
        user=st.fixed_dictionaries({k: TEXT for k in ("username", "role", "password", "reason")}),
    )
    def forms(patient: dict, session: dict, user: dict) -> None:
        _ok(
            nurse.post("/patients/new", data={**patient, "csrf_token": nurse.csrf_token}), "patient"
        )
        _ok(
            nurse.post("/sessions/new", data={**session, "csrf_token": nurse.csrf_token}), "session"
        )
        _ok(admin.post("/admin/users", data={**user, "csrf_token": admin.csrf_token}), "user")
        _ok(
            nurse.get(
                "/protocols/preview/result", params={k: session[k] for k in ("dose", "unit")}
            ),
            "preview",
        )

    forms()


def test_the_login_form_never_answers_a_server_error(fuzz_server) -> None:
    base = fuzz_server[0]

    with httpx.Client(base_url=base, headers={"origin": base}) as anonymous:
        token = login_form_token(anonymous)

        @FUZZ
        @given(username=TEXT, password=TEXT, next_path=TEXT)
        def login(username: str, password: str, next_path: str) -> None:
            answer = anonymous.post(
                "/login",
                data={
                    "username": username,
                    "password": password,
                    "login_token": token,
                    "next": next_path,
                },
            )
            _ok(answer, "login")

        login()


def test_the_searches_and_csv_exports_never_answer_a_server_error(fuzz_server) -> None:
    _, clients, sid = fuzz_server
    physician = clients["physician"]

    @FUZZ
    @given(
        since=TEXT,
        until=TEXT,
        text=TEXT,
        number=st.one_of(TEXT, st.integers(min_value=-(2**70), max_value=2**70).map(str)),
    )
    def searches(since: str, until: str, text: str, number: str) -> None:
        times = {"since": since, "until": until}
        for path, params in (
            ("/audit", {**times, "user": text, "action": text, "session": number}),
            ("/audit/export.csv", {**times, "patient": number, "user": text}),
            ("/vitals/export.csv", {**times, "session": number}),
            (f"/sessions/{sid}/vitals.csv", times),
            (
                "/sessions",
                {
                    "since": since,
                    "until": until,
                    "patient": text,
                    "drug": text,
                    "state": text,
                    "reacted": text,
                },
            ),
            ("/patients", {"q": text}),
            (f"/sessions/{sid}/timeline", {"kind": text, "at": number}),
        ):
            _ok(physician.get(path, params=params), path)
        in_path = quote(number, safe="")
        _ok(physician.get(f"/sessions/{in_path}/report"), "report path")
        _ok(physician.get(f"/patients/{in_path}"), "patient path")

    searches()
