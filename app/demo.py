"""A training ward to look at: patients and sessions in the states a newcomer should see move
(running, a step due, paused after a reaction, a plan waiting for its sign-offs).

The sessions are driven through the public HTTP API, as the demo nurse, physician and
pharmacist would, on a clock held by hand so that half an hour of a ward's work takes a few
seconds. Then the training clock takes over: the installation is dated just far enough back
that its clock (installation time + speed x wall time since) starts after the last seeded
event, so the record never runs backwards and the running session carries on from there.
Only for an empty database outside production.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import func, select, update

from app.auth.service import demo_password
from app.clock import ManualClock
from app.config import Settings
from app.db import Installation, create_engine, session_factory
from app.session.models import DesensitizationSession

ORIGIN = "http://demo.invalid"
SEEDED_MINUTES = 30  # of ward time the seed covers
OK_VITALS = {
    "systolic_bp": 126,
    "diastolic_bp": 78,
    "heart_rate": 76,
    "spo2": 98,
    "respiratory_rate": 15,
    "temperature_c": "36.7",
    "consciousness": "A",
    "supplemental_oxygen": False,
}


class DemoRefused(Exception):
    pass


@dataclass(frozen=True)
class Seeded:
    session_id: int
    patient: str
    state: str


@dataclass(frozen=True)
class Patient:
    mrn: str
    family_name: str
    given_name: str
    birth_date: str
    weight_kg: int
    drug: str
    dose: str
    location: str


PATIENTS = (
    Patient(
        "DEMO-0001", "Okafor", "Adaeze", "1961-05-14", 68, "carboplatin", "450", "Bay 1, chair 2"
    ),
    Patient(
        "DEMO-0002", "Lindqvist", "Maja", "1979-11-02", 61, "ceftazidime", "2000", "Bay 1, chair 4"
    ),
    Patient(
        "DEMO-0003", "Moreau", "Julien", "1955-02-27", 82, "paclitaxel", "300", "Bay 2, chair 1"
    ),
    Patient("DEMO-0004", "Tanaka", "Hiro", "1988-08-19", 74, "rituximab", "700", "Bay 2, chair 3"),
)


class _Ward:
    """The demo team signed in to an in-process app whose clock the seed moves."""

    def __init__(self, app: Any, clock: ManualClock) -> None:
        self.app, self.clock = app, clock
        self.start = clock.now()
        self.clients: dict[str, httpx.AsyncClient] = {}

    async def sign_in(self, role: str) -> None:
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app),
            base_url=ORIGIN,
            headers={"origin": ORIGIN},
        )
        answer = await client.post(
            "/login",
            json={"username": role, "password": demo_password(role)},
            headers={"content-type": "application/json"},
        )
        if answer.status_code != 200:
            raise DemoRefused(f"the demo {role} could not sign in: {answer.text}")
        client.headers["x-csrf-token"] = answer.json()["csrf_token"]
        self.clients[role] = client

    async def post(self, role: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = await self.clients[role].post(path, json=body)
        if answer.status_code >= 300:
            raise DemoRefused(f"POST {path} as {role}: {answer.status_code} {answer.text}")
        return answer.json()

    async def get(self, path: str) -> dict[str, Any]:
        return (await self.clients["nurse"].get(path)).json()

    def at(self, minute: float) -> None:
        self.clock.set(self.start + timedelta(minutes=minute))

    async def command(self, sid: int, role: str, name: str, body: dict | None = None) -> dict:
        return await self.post(role, f"/api/v1/sessions/{sid}/{name}", body or {})

    async def drafted(self, p: Patient) -> int:
        patient = await self.post(
            "nurse",
            "/api/v1/patients",
            {
                "mrn": p.mrn,
                "family_name": p.family_name,
                "given_name": p.given_name,
                "birth_date": p.birth_date,
                "weight_kg": p.weight_kg,
                "asthma": False,
            },
        )
        session = await self.post(
            "physician",
            "/api/v1/sessions",
            {
                "patient_id": patient["id"],
                "drug": p.drug,
                "route": "IV",
                "protocol": {"template": "brigham-12", "dose": p.dose, "unit": "mg"},
                "index_reaction": {"reactions": ["urticaria", "angioedema"]},
                "location": p.location,
                "assigned_nurse": "nurse",
            },
        )
        return int(session["id"])

    async def ready(self, p: Patient) -> int:
        sid = await self.drafted(p)
        await self.command(sid, "physician", "approve")
        await self.command(sid, "pharmacist", "verify-bags")
        await self.command(sid, "nurse", "checklist", {"item": "consent"})
        await self.command(sid, "nurse", "checklist", {"item": "rescue_kit"})
        premedication = {
            "drug": "cetirizine",
            "dose": "10 mg",
            "route": "PO",
            "given_at": self.clock.now().isoformat(),
        }
        await self.command(
            sid, "nurse", "checklist", {"item": "premedications", "premedications": [premedication]}
        )
        await self.command(sid, "nurse", "vitals", OK_VITALS)
        return sid

    async def start_with_checks(self, sid: int, p: Patient) -> None:
        """The wristband and bag 1's label scanned as a nurse would; a high-alert drug's
        rate co-signed by the physician."""
        checks = (await self.get(f"/api/v1/sessions/{sid}"))["checks"]
        if checks["wristband_due"]:
            await self.command(sid, "nurse", "scans", {"kind": "wristband", "code": p.mrn})
        if checks["bag_due"] is not None:
            labels = (await self.get(f"/api/v1/sessions/{sid}/labels"))["labels"]
            code = next(lab["code"] for lab in labels if lab["bag"] == checks["bag_due"])
            await self.command(sid, "nurse", "scans", {"kind": "bag", "code": code})
        body = {}
        if checks["double_check_due"]:
            body = {
                "cosigner_username": "physician",
                "cosigner_password": demo_password("physician"),
            }
        await self.command(sid, "nurse", "start", body)

    async def wait_until(self, sid: int, status: str) -> None:
        for _ in range(200):  # the timer loop polls every 0.2 s
            if (await self.get(f"/api/v1/sessions/{sid}"))["status"] == status:
                return
            await asyncio.sleep(0.05)
        raise DemoRefused(f"session {sid} did not reach {status}")

    async def close(self) -> None:
        for client in self.clients.values():
            await client.aclose()


async def _seed(ward: _Ward) -> list[Seeded]:
    reacted, due, running, planned = PATIENTS
    for role in ("nurse", "physician", "pharmacist"):
        await ward.sign_in(role)
    ward.at(0)
    a = await ward.ready(reacted)
    b = await ward.ready(due)
    await ward.start_with_checks(a, reacted)
    ward.at(6)
    await ward.start_with_checks(b, due)
    ward.at(8)
    await ward.command(a, "nurse", "vitals", {**OK_VITALS, "heart_rate": 82})
    ward.at(12)
    await ward.command(b, "nurse", "vitals", OK_VITALS)
    ward.at(15.5)  # step 1 of A ends at 15 min: the nurse confirms step 2
    await ward.wait_until(a, "step_due")
    view = await ward.get(f"/api/v1/sessions/{a}")
    await ward.command(a, "nurse", "confirm-step", {"expected_version": view["version"]})
    c = await ward.ready(running)
    ward.at(21.5)
    await ward.wait_until(b, "step_due")  # B's step 1 ended at 21 min; nobody has confirmed
    ward.at(22)  # seven minutes into step 2: hives and flushing, the nurse stops the pump
    await ward.command(a, "nurse", "reactions", {"symptoms": ["urticaria", "flushing", "pruritus"]})
    ward.at(24)
    await ward.command(
        a, "nurse", "reactions/1/treatments", {"drug": "cetirizine", "dose": "10 mg", "route": "IV"}
    )
    await ward.command(a, "nurse", "vitals", {**OK_VITALS, "heart_rate": 96})
    ward.at(25)
    await ward.start_with_checks(c, running)
    d = await ward.drafted(planned)  # waits for the physician's approval
    ward.at(SEEDED_MINUTES)
    await ward.command(c, "nurse", "vitals", OK_VITALS)
    return [
        Seeded(c, f"{running.family_name}, {running.given_name}", "running"),
        Seeded(b, f"{due.family_name}, {due.given_name}", "step due"),
        Seeded(a, f"{reacted.family_name}, {reacted.given_name}", "paused after a reaction"),
        Seeded(d, f"{planned.family_name}, {planned.given_name}", "plan awaiting approval"),
    ]


async def seed_training_ward(settings: Settings, speed: float) -> list[Seeded]:
    """Seed an empty database with the demo ward; `settings` are those the server will run
    with (a training clock of `speed`)."""
    if settings.env == "production":
        raise DemoRefused("the demo ward is never seeded in production")
    if speed < 2:
        raise DemoRefused("the demo ward needs a training clock: --speed 2 or more")
    engine = create_engine(settings.database_url)
    try:
        async with session_factory(engine)() as db:
            if await db.scalar(select(func.count()).select_from(DesensitizationSession)):
                raise DemoRefused("this database already has sessions: the demo needs an empty one")
        from app.main import create_app

        app = create_app(settings.model_copy(update={"clock_mode": "manual"}))
        async with app.router.lifespan_context(app):
            clock = app.state.clock
            assert isinstance(clock, ManualClock)
            ward = _Ward(app, clock)
            try:
                seeded = await _seed(ward)
            finally:
                await ward.close()
            end = clock.now()
        # The training clock reads installation + speed x (wall - installation): dated back by
        # the seeded span / (speed - 1), it starts where the seed ended (and a little after).
        wall = datetime.now(UTC)
        back = (end - wall) / (speed - 1) + timedelta(seconds=2)
        async with session_factory(engine)() as db:
            await db.execute(update(Installation).values(created_at=wall - back))
            await db.commit()
        return seeded
    finally:
        await engine.dispose()
