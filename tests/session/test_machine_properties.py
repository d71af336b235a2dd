"""Random command sequences against the pure session machine (product-spec §3 invariants).

Every rule sends a command with a random role at a random time (sometimes earlier than the last
entry). After each step the invariants are checked; a refused command must leave the state
exactly as it was.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal, localcontext

from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from app.protocol.templates import (
    BrighamParameters,
    DosesParameters,
    DoublingParameters,
    build,
)
from app.session import machine as M
from app.session.ledger import PRECISION, ledger
from app.session.plan import plan_from_protocol
from app.session.replan import original_step
from app.session.state import entry_of
from tests.session.walk import T0

ROLES = st.sampled_from(["nurse", "physician", "pharmacist", "auditor", "admin", "system"])
CLINICAL_ROLES = st.sampled_from(["nurse", "nurse", "physician"])
# Mostly forward, sometimes a long wait, rarely backwards (time must never run back).
TIME_STEPS = st.one_of(
    st.integers(min_value=0, max_value=20 * 60),
    st.integers(min_value=20 * 60, max_value=4 * 3600),
    st.integers(min_value=-600, max_value=-1),
)
SYMPTOMS = st.lists(
    st.sampled_from(["urticaria", "flushing", "wheeze", "nausea"]), min_size=0, max_size=3
)
# What a vitals set found, in words, as the shell passes it: nothing, a MEDIUM or a HIGH one.
FINDINGS = st.sampled_from(
    [((), ()), (("heart rate 118 /min",), ()), (("SpO2 89 %",), ("SpO2 89 %",))]
)
OVERRIDE = st.sampled_from(["", "", "allergist at the bedside, benefit outweighs the risk"])
OUTCOMES = st.one_of(st.none(), st.sampled_from(["recovering", "resolved", "later"]))

PLANS = [
    plan_from_protocol(build("brigham-12", BrighamParameters(Decimal(2000), "mg"))),
    plan_from_protocol(
        build("brigham-16", BrighamParameters(Decimal(450), "mg", final_rate_ml_h=Decimal(60)))
    ),
    plan_from_protocol(
        build("brigham-8", BrighamParameters(Decimal(100), "g", step_minutes=Decimal(20)))
    ),
    plan_from_protocol(build("doubling", DoublingParameters(Decimal(1000), "mg"))),
    plan_from_protocol(
        build(
            "doses",
            DosesParameters(
                (Decimal(100), Decimal(200), Decimal(400), Decimal(800), Decimal(1600)), "units"
            ),
        )
    ),
]


@dataclass
class ResumeRecord:
    first_index: int
    chosen_rate: Decimal | None
    cap: Decimal | None
    after_reaction: bool


class SessionMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.state: M.SessionState | None = None
        self.now = T0
        self.accepted = 0
        self.last_resume: ResumeRecord | None = None
        self.events_seen: list[M.Event] = []

    # -- setup ----------------------------------------------------------------------------------

    @precondition(lambda self: self.state is None)
    @rule(
        plan_index=st.integers(min_value=0, max_value=len(PLANS) - 1),
        signoff=st.booleans(),
        spirometry=st.booleans(),
    )
    def create(self, plan_index: int, signoff: bool, spirometry: bool) -> None:
        self.state = M.new_session(
            PLANS[plan_index],
            pharmacist_signoff=signoff,
            spirometry_required=spirometry,
            observation_minutes=Decimal(30),
        )

    # -- sending commands -----------------------------------------------------------------------

    def send(self, command: M.Command, role: str, seconds: int) -> M.Result:
        assert self.state is not None
        at = self.now + timedelta(seconds=seconds)
        before = self.state
        result = M.decide(before, command, M.Ctx(at, role, 7))
        if isinstance(result, M.Refused):
            assert self.state == before  # nothing changed
            assert result.reason and "\n" not in result.reason
            if before.status in M.TERMINAL:
                assert result.kind == "state"
            return result
        # accepted
        assert before.status not in M.TERMINAL, "terminal states absorb every command"
        assert role in entry_of(command).roles, "every transition is guarded by role"
        assert at >= (before.last_at or at), "time never runs backwards"
        assert result.state.version == before.version + 1
        self.now = at
        self.state = result.state
        self.accepted += 1
        self.events_seen.extend(result.events)
        for reached in result.events:
            event(f"event {reached.kind}")
        return result

    @precondition(lambda self: self.state is not None)
    @rule(
        command=st.sampled_from([M.Approve(), M.VerifyBags(), M.ConfirmStep(), M.Complete()]),
        role=ROLES,
        seconds=TIME_STEPS,
    )
    def simple(self, command: M.Command, role: str, seconds: int) -> None:
        before = self.state
        result = self.send(command, role, seconds)
        if isinstance(command, M.ConfirmStep) and isinstance(result, M.Accepted):
            self._check_first_rate_after_resume(before, result.state)

    @precondition(lambda self: self.state is not None)
    @rule(override=OVERRIDE, role=ROLES, seconds=TIME_STEPS)
    def start(self, override: str, role: str, seconds: int) -> None:
        assert self.state is not None
        gated = bool(self.state.checklist.baseline_high)
        result = self.send(M.Start(override), role, seconds)
        if isinstance(result, M.Accepted):
            overrides = [e for e in result.events if e.kind == "safety_override"]
            # a baseline that meets HIGH criteria starts only on a physician's override
            assert bool(overrides) == gated
            if gated:
                assert role == "physician" and overrides[0].data["reason"] == override

    @precondition(lambda self: self.state is not None)
    @rule(
        item=st.sampled_from(["consent", "rescue_kit", "premedications"]),
        role=CLINICAL_ROLES,
        seconds=TIME_STEPS,
    )
    def checklist(self, item: str, role: str, seconds: int) -> None:
        self.send(M.ChecklistItem(item, none_reason="not ordered"), role, seconds)

    @precondition(lambda self: self.state is not None)
    @rule(
        found=FINDINGS,
        spirometry=st.booleans(),
        symptoms=SYMPTOMS,
        role=ROLES,
        seconds=TIME_STEPS,
    )
    def vitals(
        self,
        found: tuple[tuple[str, ...], tuple[str, ...]],
        spirometry: bool,
        symptoms: list[str],
        role: str,
        seconds: int,
    ) -> None:
        findings, high = found
        ok = not findings and not symptoms
        command = M.RecordVitals(ok, spirometry, findings, high, tuple(symptoms))
        assert self.state is not None
        reaction = self.state.open_reaction
        result = self.send(command, role, seconds)
        if isinstance(result, M.Accepted) and reaction is not None:
            # symptoms seen while a reaction is open become part of it
            now = next(r for r in result.state.reactions if r.number == reaction.number)
            assert set(symptoms) | set(reaction.symptoms) == set(now.symptoms)

    @precondition(lambda self: self.state is not None and self.state.deadline is not None)
    @rule(extra=st.integers(min_value=-30, max_value=600), stale=st.booleans())
    def timer(self, extra: int, stale: bool) -> None:
        assert self.state is not None and self.state.deadline is not None
        seconds = int((self.state.deadline - self.now).total_seconds()) + extra
        generation = self.state.timer_generation - (1 if stale else 0)
        self.send(M.TimerFired(generation), "system", max(seconds, -5))

    @precondition(lambda self: self.state is not None)
    @rule(role=CLINICAL_ROLES, seconds=TIME_STEPS, back=st.integers(min_value=0, max_value=120))
    def pause(self, role: str, seconds: int, back: int) -> None:
        stopped = self.now + timedelta(seconds=seconds - back)
        self.send(M.Pause("hold for the doctor", stopped), role, seconds)

    @precondition(lambda self: self.state is not None)
    @rule(symptoms=SYMPTOMS, role=CLINICAL_ROLES, seconds=TIME_STEPS)
    def reaction(self, symptoms: list[str], role: str, seconds: int) -> None:
        self.send(M.ReportReaction(tuple(symptoms)), role, seconds)

    @precondition(lambda self: self.state is not None)
    @rule(role=CLINICAL_ROLES, seconds=TIME_STEPS)
    def treatment(self, role: str, seconds: int) -> None:
        self.send(M.RecordTreatment("diphenhydramine", "25 mg", "IV"), role, seconds)

    @precondition(lambda self: self.state is not None)
    @rule(grade=st.integers(min_value=0, max_value=4), role=CLINICAL_ROLES, seconds=TIME_STEPS)
    def resolve(self, grade: int, role: str, seconds: int) -> None:
        self.send(M.ResolveReaction(grade), role, seconds)

    @precondition(lambda self: self.state is not None)
    @rule(
        where=st.sampled_from(["finish", "repeat", "back1", "back2"]),
        stretch=st.sampled_from([Decimal(1), Decimal("1.5"), Decimal(2), Decimal(5)]),
        intermediate=st.integers(min_value=0, max_value=4),
        cap=st.one_of(st.none(), st.sampled_from([Decimal(5), Decimal(30), Decimal(0)])),
        role=st.sampled_from(["physician", "physician", "nurse"]),
        seconds=TIME_STEPS,
    )
    def resume(
        self,
        where: str,
        stretch: Decimal,
        intermediate: int,
        cap: Decimal | None,
        role: str,
        seconds: int,
        override: str = "",
    ) -> None:
        before = self.state
        assert before is not None
        after_reaction = before.pause_had_reaction
        last = before.reactions[-1] if before.reactions and after_reaction else None
        severe = (
            last is not None
            and last.brown_grade == 3
            and where in ("finish", "repeat")
            and before.paused_from != "observing"
        )
        gated = not before.last_vitals_within_limits or severe
        result = self.send(M.Resume(where, stretch, intermediate, cap, override), role, seconds)
        if isinstance(result, M.Accepted):
            overrides = [e for e in result.events if e.kind == "safety_override"]
            # out-of-limit vitals, or finish/repeat after Brown 3, resume only on an override
            assert bool(overrides) == gated
            if gated:
                assert role == "physician" and override
        if isinstance(result, M.Accepted) and result.state.next_step is not None:
            state = result.state
            assert state.approved is not None
            # every new step but the last runs its approved time × this stretch, however many
            # resumes came before (a stretch is never compounded)
            for step in state.plan.steps[state.next_step : -1]:
                if step.origin == "finish" or step.minutes is None or step.of_step is None:
                    continue
                approved = state.approved.steps[step.of_step].minutes
                if approved is not None:
                    assert step.minutes == approved * stretch, (step, approved, stretch)
            assert self.state is not None
            back = {"finish": 0, "repeat": 0, "back1": 1, "back2": 2}[where]
            current = state.current
            assert current is not None and state.approved is not None
            reacted = original_step(state.plan, current)
            # the step the physician chose: a step of the approved ladder when stepping back,
            # else the interrupted step as it stood
            chosen = state.approved.steps[reacted - back] if back else state.plan.steps[current]
            self.last_resume = ResumeRecord(state.next_step, chosen.rate_ml_h, cap, after_reaction)

    @precondition(lambda self: self.state is not None)
    @rule(
        where=st.sampled_from(["finish", "repeat", "back1", "back2"]),
        stretch=st.sampled_from([Decimal(1), Decimal("1.5"), Decimal(2)]),
        override=OVERRIDE,
        role=st.sampled_from(["physician", "physician", "nurse"]),
        seconds=TIME_STEPS,
    )
    def resume_with_override(
        self, where: str, stretch: Decimal, override: str, role: str, seconds: int
    ) -> None:
        self.resume(where, stretch, 0, None, role, seconds, override)

    @precondition(lambda self: self.state is not None)
    @rule(
        role=ROLES,
        seconds=TIME_STEPS,
        reason=st.sampled_from(["", "severe reaction"]),
        rare=st.integers(min_value=0, max_value=30),
        grade=st.one_of(st.none(), st.integers(min_value=0, max_value=4)),
        outcome=OUTCOMES,
    )
    def abort(
        self,
        role: str,
        seconds: int,
        reason: str,
        rare: int,
        grade: int | None,
        outcome: str | None,
    ) -> None:
        # A valid abort ends the run; keep it rare so most runs go deep.
        assert self.state is not None
        reaction = self.state.open_reaction
        result = self.send(
            M.Abort(reason if rare == 0 else "", grade, None, outcome), role, seconds
        )
        if isinstance(result, M.Accepted) and reaction is not None:
            closed = [e for e in result.events if e.kind == "reaction_closed"]
            assert [e.data["reaction"] for e in closed] == [reaction.number]
            assert closed[0].data["brown_grade"] == grade and grade in (1, 2, 3)

    # -- the natural next step, so random runs reach every state ---------------------------------

    def advance(self, data: st.DataObject) -> None:
        state = self.state
        assert state is not None
        minute = 60
        if state.status == "planned":
            if state.approved_by is None:
                self.send(M.Approve(), "physician", minute)
            else:
                self.send(M.VerifyBags(), "pharmacist", minute)
        elif state.status == "ready":
            missing = state.checklist.missing()
            if "consent" in missing:
                self.send(M.ChecklistItem("consent"), "nurse", minute)
            elif "rescue kit at the bedside" in missing:
                self.send(M.ChecklistItem("rescue_kit"), "nurse", minute)
            elif "premedications" in missing:
                premed = M.Premedication("cetirizine", "10 mg", "PO", self.now)
                self.send(
                    M.ChecklistItem("premedications", premedications=(premed,)), "nurse", minute
                )
            elif missing:
                findings, high = data.draw(FINDINGS)
                self.send(M.RecordVitals(not findings, True, findings, high), "nurse", minute)
            elif state.checklist.baseline_high:
                self.send(M.Start("allergist present"), "physician", minute)
            else:
                self.send(M.Start(), "nurse", minute)
        elif state.status in ("running", "observing") and not state.observation_done:
            if not M.vitals_gate_met(state):
                self.send(M.RecordVitals(True), "nurse", 5 * minute)
            elif state.deadline is not None:
                wait = int((state.deadline - self.now).total_seconds())
                self.send(M.TimerFired(state.timer_generation), "system", max(wait, 0) + 1)
        elif state.status == "step_due":
            if not M.vitals_gate_met(state):
                self.send(M.RecordVitals(True), "nurse", minute)
            else:
                before = state
                result = self.send(
                    M.ConfirmStep(),
                    "nurse",
                    data.draw(st.integers(min_value=0, max_value=30 * minute)),
                )
                if isinstance(result, M.Accepted):
                    self._check_first_rate_after_resume(before, result.state)
        elif state.status == "paused":
            if state.open_reaction is not None:
                if data.draw(st.booleans()):
                    self.send(M.RecordTreatment("epinephrine", "0.3 mg", "IM"), "nurse", minute)
                else:
                    self.send(
                        M.ResolveReaction(data.draw(st.integers(1, 3))), "physician", 10 * minute
                    )
            elif not M.vitals_gate_met(state):
                findings, high = data.draw(FINDINGS)
                self.send(M.RecordVitals(not findings, False, findings, high), "nurse", minute)
            else:
                self.resume_rule_body(data)
        elif state.status == "observing":
            self.send(M.Complete(), "nurse", minute)

    def resume_rule_body(self, data: st.DataObject) -> None:
        where = data.draw(st.sampled_from(["finish", "repeat", "back1", "back2"]))
        stretch = data.draw(st.sampled_from([Decimal(1), Decimal("1.5"), Decimal(2)]))
        count = data.draw(st.integers(min_value=0, max_value=2))
        cap = data.draw(st.one_of(st.none(), st.sampled_from([Decimal(5), Decimal(30)])))
        if self.state is not None and self.state.paused_from == "observing":
            where, stretch, count, cap = "repeat", Decimal(1), 0, None
        override = data.draw(OVERRIDE)
        self.resume(where, stretch, count, cap, "physician", 60, override)

    @precondition(lambda self: self.state is not None)
    @rule(data=st.data())
    def advance_a(self, data: st.DataObject) -> None:
        self.advance(data)

    @precondition(lambda self: self.state is not None)
    @rule(data=st.data())
    def advance_b(self, data: st.DataObject) -> None:
        self.advance(data)

    @precondition(lambda self: self.state is not None)
    @rule(data=st.data())
    def advance_c(self, data: st.DataObject) -> None:
        self.advance(data)

    @precondition(lambda self: self.state is not None)
    @rule(data=st.data())
    def advance_d(self, data: st.DataObject) -> None:
        self.advance(data)

    # -- invariants -----------------------------------------------------------------------------

    def _check_first_rate_after_resume(self, before, after) -> None:
        record = self.last_resume
        if record is None or before.next_step != record.first_index:
            return
        self.last_resume = None
        segment = after.running_segment
        if segment is None or segment.rate_ml_h is None or record.chosen_rate is None:
            return
        if not record.after_reaction:
            return  # a plain hold may simply continue the ladder
        # After a reaction the next rate is never above the rate of the step chosen.
        assert segment.rate_ml_h <= record.chosen_rate
        if record.cap is not None:
            assert segment.rate_ml_h <= record.cap

    @invariant()
    def no_infusion_while_a_reaction_is_open(self) -> None:
        if self.state is not None and self.state.open_reaction is not None:
            assert self.state.running_segment is None
            assert self.state.status in ("paused", "aborted")

    @invariant()
    def ledger_within_bounds(self) -> None:
        state = self.state
        if state is None:
            return
        book = ledger(state.plan, state.segments, self.now)
        for bag in state.plan.bags:
            assert book.volume_used.get(bag.number, Decimal(0)) <= bag.volume_ml
        with localcontext() as ctx:
            ctx.prec = PRECISION
            physical = sum((b.amount for b in state.plan.bags), Decimal(0))
            if state.plan.bags:
                assert book.delivered <= physical + Decimal("1e-30")
            finished = any(e.kind == "last_step_done" for e in self.events_seen)
            if finished and state.status in ("observing", "completed"):
                # the last step completes exactly the target
                assert abs(book.delivered - state.plan.target_dose) < Decimal("1e-30")

    @invariant()
    def a_closed_reaction_is_graded_and_an_aborted_session_has_no_open_one(self) -> None:
        state = self.state
        if state is None:
            return
        for reaction in state.reactions:
            if not reaction.is_open:
                assert reaction.brown_grade in (1, 2, 3)
                assert reaction.outcome in M.OUTCOMES
        if state.status == "aborted":
            assert state.open_reaction is None

    @invariant()
    def stretch_applies_to_the_approved_times_and_never_compounds(self) -> None:
        state = self.state
        if state is None or state.approved is None:
            return
        for step in state.plan.steps:
            if step.of_step is None or step.minutes is None:
                continue
            approved = state.approved.steps[step.of_step].minutes
            if approved is not None:
                assert step.minutes <= approved * M.MAX_STRETCH, (step, approved)

    @invariant()
    def time_runs_forward_in_the_record(self) -> None:
        if self.state is None:
            return
        previous = None
        for segment in self.state.segments:
            if segment.stopped_at is not None:
                assert segment.stopped_at >= segment.started_at
            if previous is not None:
                assert segment.started_at >= previous.started_at
            previous = segment


TestSessionMachine = SessionMachine.TestCase
TestSessionMachine.settings = settings(
    max_examples=int(__import__("os").environ.get("SESSION_EXAMPLES", "200")),
    stateful_step_count=80,
    deadline=None,
)
