"""GET /metrics over real HTTP, against real servers on each database: requests counted by route
template (never a raw path, an id, a name) and timed, live screens shown while open, timers
counted with their lateness, database faults counted while the database is away; open
without a sign-in, as /healthz is. Each test runs its own server, so every count is exact."""

from __future__ import annotations

import asyncio
import secrets
import socket
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts

from app.config import Settings
from app.main import create_app
from app.schema import upgrade
from tests.conftest import run_server
from tests.live.test_websockets import open_screen, ready_session, receive_until
from tests.prometheus_text import Family, parse
from tests.session.conftest import session_body, wait_for
from tests.support import Account, SignedInClient, create_account

REQUESTS = "stepwise_http_requests_total"
DURATIONS = "stepwise_http_request_duration_seconds"
WAIT_SECONDS = 5.0


@pytest.fixture
def server(database_url: str) -> Iterator[tuple[str, FastAPI]]:
    app = create_app(Settings(database_url=database_url, env="test"))
    with run_server(app) as base:
        yield base, app


def scrape(base: str) -> dict[str, Family]:
    """As monitoring does: no cookie, no sign-in."""
    answer = httpx.get(f"{base}/metrics", timeout=15)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    return parse(answer.text)


def scrape_until(base: str, done: Callable[[dict[str, Family]], bool]) -> dict[str, Family]:
    """For what the server does after answering (a screen that closed is let go of)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        families = scrape(base)
        if done(families) or time.monotonic() > deadline:
            return families
        time.sleep(0.05)


def requests_by_route(families: dict[str, Family]) -> dict[str, float]:
    counted: dict[str, float] = {}
    for labels, value in families[REQUESTS].series().items():
        route = dict(labels)["route"]
        counted[route] = counted.get(route, 0) + value
    return counted


def timed_by_route(families: dict[str, Family]) -> dict[str, float]:
    return {
        dict(labels)["route"]: value
        for labels, value in families[DURATIONS].series(f"{DURATIONS}_count").items()
    }


def total(families: dict[str, Family]) -> float:
    return sum(families[REQUESTS].series().values())


def route_templates(app: FastAPI) -> set[str]:
    return {context.path for context in iter_route_contexts(app.routes)}


def test_requests_are_counted_by_route_template_and_open_screens_shown(
    server: tuple[str, FastAPI], accounts: dict[str, Account]
) -> None:
    base, app = server
    nurse = SignedInClient(base, accounts["nurse"])
    physician = SignedInClient(base, accounts["physician"])
    try:
        before = scrape(base)
        mrn = f"MX{secrets.token_hex(4).upper()}"
        patient = nurse.post(
            "/api/v1/patients",
            json={
                "mrn": mrn,
                "family_name": "Quillfeather",
                "given_name": "Oriane",
                "birth_date": "1970-04-02",
                "weight_kg": 70,
                "asthma": False,
            },
        )
        assert patient.status_code == 201, patient.text
        pid = patient.json()["id"]
        assert nurse.get(f"/api/v1/patients/{pid}").status_code == 200  # signed in, an id
        assert nurse.get(f"/api/v1/patients/{pid}000").status_code == 404  # routed, not found
        assert nurse.get(f"/no/such/page/{pid}").status_code == 404  # no route
        assert nurse.get("/static/css/app.css").status_code == 200  # the static files' mount
        created = nurse.post("/api/v1/sessions", json=session_body(pid))
        assert created.status_code == 201, created.text
        sid = created.json()["id"]
        made = 6  # requests since the first scrape, that scrape not included

        after = scrape(base)

        routes = requests_by_route(after)
        # The first scrape was counted before its answer reached the client: every request
        # is there, the scrapes included, and none twice.
        assert total(after) - total(before) == made + 1
        requests = after[REQUESTS]
        patient_route = "/api/v1/patients/{patient_id}"
        assert requests.value(method="GET", route=patient_route, status="2xx") == 1
        assert requests.value(method="GET", route=patient_route, status="4xx") == 1
        assert requests.value(method="GET", route="unmatched", status="4xx") == 1
        assert requests.value(method="POST", route="/api/v1/patients", status="2xx") == 1
        assert requests.value(method="POST", route="/api/v1/sessions", status="2xx") == 1
        assert requests.value(method="GET", route="/metrics", status="2xx") == 1
        assert requests.value(method="GET", route="/static/{path}", status="2xx") == 1
        # The histogram counts every request once, by the same route names.
        assert timed_by_route(after) == routes
        assert after[DURATIONS].value(f"{DURATIONS}_sum", route=patient_route) > 0
        # Route templates only: no id, no path as sent, no patient, no user.
        assert set(routes) <= route_templates(app) | {"unmatched", "/static/{path}"}
        text = httpx.get(f"{base}/metrics", timeout=15).text
        for private in (
            f"/{pid}",
            "/no/such",
            "app.css",
            mrn,
            "Quillfeather",
            "Oriane",
            accounts["nurse"].username,
            accounts["physician"].username,
        ):
            assert private not in text, private

        # A bedside screen and a board, open: websockets are screens, not requests.
        counted = total(scrape(base))

        async def with_screens_open() -> tuple[dict[str, Family], str]:
            bedside = await open_screen(base, f"/ws/sessions/{sid}", nurse)
            board = await open_screen(base, "/ws/board", physician)
            try:
                await receive_until(bedside, 'id="status-panel"')  # the snapshot: it is served
                await receive_until(board, f'id="tile-{sid}"')
                approved = await asyncio.to_thread(
                    physician.post, f"/api/v1/sessions/{sid}/approve", json={}
                )
                assert approved.status_code == 200, approved.text
                update = await receive_until(bedside, "Approved by")
                return await asyncio.to_thread(scrape, base), update
            finally:
                await bedside.close()
                await board.close()

        opened, update = asyncio.run(with_screens_open())

        screens = opened["stepwise_live_screens"]
        assert screens.type == "gauge"
        assert screens.value(kind="bedside") == 1
        assert screens.value(kind="board") == 1
        assert opened["stepwise_live_renders_total"].value(kind="bedside") >= 1
        assert opened["stepwise_live_sent_bytes_total"].value(kind="bedside") >= len(update)
        # The scrape before and the approval; the websocket handshakes are not HTTP requests.
        assert total(opened) - counted == 2
        assert "/ws/" not in "".join(requests_by_route(opened))

        closed = scrape_until(
            base, lambda f: sum(f["stepwise_live_screens"].series().values()) == 0
        )
        assert closed["stepwise_live_screens"].value(kind="bedside") == 0
        assert closed["stepwise_live_screens"].value(kind="board") == 0
        assert closed["stepwise_process_start_time_seconds"].value() <= time.time()
        assert closed["stepwise_gc_collections_total"].type == "counter"
    finally:
        nurse.close()
        physician.close()


def test_a_fired_timer_is_counted_with_its_lateness(empty_database_url: str) -> None:
    # A database of its own: the clock set forward fires no timer another test left pending.
    upgrade(empty_database_url)
    roles = ("nurse", "physician", "pharmacist")
    accounts = {role: create_account(empty_database_url, role) for role in roles}
    settings = Settings(database_url=empty_database_url, env="test", clock_mode="manual")
    app = create_app(settings)
    with run_server(app) as base:
        team = {role: SignedInClient(base, accounts[role]) for role in roles}
        try:
            nurse = team["nurse"]
            sid = ready_session(nurse, team)  # started: its first step's timer is pending
            answer = nurse.get(f"/api/v1/sessions/{sid}")
            before = scrape(base)
            assert before["stepwise_timers_fired_total"].value(kind="step") == 0
            deadline = datetime.fromisoformat(answer.json()["deadline"])
            # The step timer is due at the deadline; the loop sees it 7 s of clock time late.
            app.state.clock.set(deadline + timedelta(seconds=7))

            def view() -> dict:
                return nurse.get(f"/api/v1/sessions/{sid}").json()

            wait_for(view, lambda v: v["status"] == "step_due")
            families = scrape(base)
        finally:
            for client in team.values():
                client.close()

    assert families["stepwise_timers_fired_total"].value(kind="step") == 1
    lateness = families["stepwise_timer_lateness_seconds"]
    bucket = "stepwise_timer_lateness_seconds_bucket"
    assert lateness.value(bucket, kind="step", le="5") == 0
    assert lateness.value(bucket, kind="step", le="30") == 1
    assert lateness.value("stepwise_timer_lateness_seconds_count", kind="step") == 1
    assert lateness.value("stepwise_timer_lateness_seconds_sum", kind="step") == pytest.approx(
        7.0, abs=0.001
    )


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # free now, and nobody listens on it


def test_metrics_answer_while_the_database_is_away_and_count_its_503s() -> None:
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{_closed_port()}/stepwise"
    with run_server(Settings(database_url=url, env="test")) as base:
        cookie = {"stepwise_session": "x" * 43}  # a sign-in to check: the database is needed
        with httpx.Client(base_url=base, cookies=cookie, timeout=15) as client:
            assert client.get("/api/v1/sessions/1").status_code == 503
            assert client.get("/sessions/1").status_code == 503
        families = scrape(base)

    faults = families["stepwise_database_faults_total"]
    assert faults.value(kind="unreachable") == 2
    assert faults.value(kind="busy") == 0
    requests = families[REQUESTS]
    assert requests.value(method="GET", route="/api/v1/sessions/{session_id}", status="5xx") == 1
    assert requests.value(method="GET", route="/sessions/{session_id:int}", status="5xx") == 1
