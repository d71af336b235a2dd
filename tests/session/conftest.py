from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI

from app.clock import ManualClock
from app.config import Settings
from app.main import create_app
from tests.conftest import run_server
from tests.support import SignedInClient

WAIT_SECONDS = 10.0


@dataclass
class SessionServer:
    base_url: str
    app: FastAPI

    @property
    def clock(self) -> ManualClock:
        return self.app.state.clock

    def advance(self, **delta: float) -> None:
        self.clock.advance(timedelta(**delta))


@pytest.fixture
def session_server(database_url: str) -> Iterator[SessionServer]:
    """A real server whose clock moves only when the test says so; its timer loop runs."""
    # The walk spans hours of clock time; nobody should be signed out for idling meanwhile.
    settings = Settings(
        database_url=database_url,
        env="test",
        clock_mode="manual",
        session_idle_minutes=24 * 60,
        session_absolute_hours=7 * 24,
    )
    app = create_app(settings)
    with run_server(app) as base_url:
        yield SessionServer(base_url, app)


@pytest.fixture
def team(session_server: SessionServer, accounts) -> Iterator[dict[str, SignedInClient]]:
    clients = {
        role: SignedInClient(session_server.base_url, accounts[role])
        for role in ("nurse", "physician", "pharmacist", "auditor")
    }
    yield clients
    for client in clients.values():
        client.close()


def new_patient(client: SignedInClient, asthma: bool = False) -> int:
    response = client.post(
        "/api/v1/patients",
        json={
            "mrn": f"T{secrets.token_hex(5)}",
            "family_name": "Doe",
            "given_name": "Jane",
            "birth_date": "1970-04-02",
            "weight_kg": 70,
            "asthma": asthma,
        },
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


def session_body(patient_id: int, **protocol: Any) -> dict[str, Any]:
    return {
        "patient_id": patient_id,
        "drug": "ceftazidime",
        "route": "IV",
        "protocol": {"template": "brigham-12", "dose": "2000", "unit": "mg", **protocol},
        "index_reaction": {"reactions": ["urticaria"]},
    }


def wait_for(
    fetch: Callable[[], dict[str, Any]], predicate: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    """The timer loop runs in the server: poll its answer until it shows the change."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        body = fetch()
        if predicate(body):
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting; last answer: {body}")
        time.sleep(0.05)
