"""A server that checks bags by scan and double-checks carboplatin, and a session on it made
ready through the API (labels printed when the pharmacist verified the bags)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from app.config import Settings
from app.main import create_app
from tests.conftest import run_server
from tests.session.conftest import SessionServer, new_patient, session_body
from tests.session.test_api_walk import Bedside
from tests.support import Account, SignedInClient, create_account

HIGH_ALERT = "carboplatin"


@pytest.fixture
def scanning_server(database_url: str) -> Iterator[SessionServer]:
    settings = Settings(
        database_url=database_url,
        env="test",
        clock_mode="manual",
        session_idle_minutes=24 * 60,
        session_absolute_hours=7 * 24,
        scan_to_verify=True,
        high_alert_drugs=HIGH_ALERT,
    )
    app = create_app(settings)
    with run_server(app) as base_url:
        yield SessionServer(base_url, app)


@pytest.fixture
def second_nurse(database_url: str) -> Account:
    return create_account(database_url, "nurse", prefix="nurse-two")


@pytest.fixture
def ward(scanning_server: SessionServer, accounts) -> Iterator[dict[str, SignedInClient]]:
    clients = {
        role: SignedInClient(scanning_server.base_url, accounts[role])
        for role in ("nurse", "physician", "pharmacist", "auditor")
    }
    yield clients
    for client in clients.values():
        client.close()


class Scanning(Bedside):
    """The bedside with scans: the labels as printed, the patient's MRN."""

    mrn: str = ""

    def labels(self) -> dict[int, dict[str, Any]]:
        answer = self.team["nurse"].get(f"/api/v1/sessions/{self.sid}/labels")
        assert answer.status_code == 200, answer.text
        return {label["bag"]: label for label in answer.json()["labels"]}

    def scan(self, kind: str, code: str, expect: int = 200, method: str = "scanner") -> dict:
        return self.post("nurse", "scans", {"kind": kind, "code": code, "method": method}, expect)


def made_ready(
    server: SessionServer, team: dict[str, SignedInClient], drug: str = "ceftazidime"
) -> Scanning:
    nurse = team["nurse"]
    patient = new_patient(nurse)
    created = nurse.post("/api/v1/sessions", json=session_body(patient) | {"drug": drug})
    assert created.status_code == 201, created.text
    b = Scanning(server, team, created.json()["id"])
    b.mrn = nurse.get(f"/api/v1/patients/{patient}").json()["mrn"]
    b.post("physician", "approve")
    b.post("pharmacist", "verify-bags")
    for item in ("consent", "rescue_kit"):
        b.post("nurse", "checklist", {"item": item})
    b.post("nurse", "checklist", {"item": "premedications", "none_reason": "none ordered"})
    b.vitals()
    return b
