"""A scripted session through the pure machine, shared by the tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from app.protocol.templates import BrighamParameters, build
from app.session import machine as M
from app.session.plan import plan_from_protocol

T0 = datetime(2031, 5, 6, 8, 0, tzinfo=UTC)
NURSE, PHYSICIAN, PHARMACIST, SYSTEM = "nurse", "physician", "pharmacist", "system"


class Walker:
    def __init__(self, dose: int = 2000) -> None:
        protocol = build("brigham-12", BrighamParameters(Decimal(dose), "mg"))
        self.state = M.new_session(plan_from_protocol(protocol))
        self.now = T0
        self.events: list[M.Event] = []

    def do(self, command: M.Command, role: str = NURSE) -> M.SessionState:
        result = M.decide(self.state, command, M.Ctx(self.now, role, 1))
        assert isinstance(result, M.Accepted), result
        self.state = result.state
        self.events.extend(result.events)
        return self.state

    def refuse(self, command: M.Command, role: str = NURSE) -> M.Refused:
        result = M.decide(self.state, command, M.Ctx(self.now, role, 1))
        assert isinstance(result, M.Refused), result
        return result

    def wait(self, **delta: float) -> None:
        self.now += timedelta(**delta)

    def until_deadline(self) -> None:
        assert self.state.deadline is not None
        self.now = max(self.now, self.state.deadline)
        self.do(M.TimerFired(self.state.timer_generation), SYSTEM)

    def make_ready(self) -> None:
        """Approved, bags verified, checklist done, baseline vitals: ready to start."""
        self.do(M.Approve(), PHYSICIAN)
        self.do(M.VerifyBags(), PHARMACIST)
        self.do(M.ChecklistItem("consent"))
        self.do(M.ChecklistItem("rescue_kit"))
        self.do(M.ChecklistItem("premedications", none_reason="no premedication ordered"))
        self.do(M.RecordVitals(within_limits=True))

    def prepare(self) -> None:
        self.make_ready()
        self.do(M.Start())

    def step_through(self) -> None:
        """Vitals during the step, the timer, a minute later the pump change."""
        self.wait(minutes=10)
        self.do(M.RecordVitals(within_limits=True))
        self.until_deadline()
        if self.state.status == "step_due":
            self.wait(minutes=1)
            self.do(M.ConfirmStep())

    def delivered(self) -> Decimal:
        return M.delivered(self.state, self.now)
