"""The commands a session accepts, and the context each is decided in (who, when). Pure data;
app.session.state says who may give each one and which decision answers it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Literal

from app.session.plan import Plan
from app.session.record import Premedication

ResumeFrom = Literal["finish", "repeat", "back1", "back2"]
# How far a resume may re-plan; the API's request body states the same bounds from these.
MAX_STRETCH = 4  # times the approved step times
MAX_INTERMEDIATE = 3
PUMP_RATE_STEP = Decimal("0.1")  # a rate a pump can be set to


@dataclass(frozen=True)
class Ctx:
    now: datetime
    role: str  # nurse | physician | pharmacist | auditor | admin | system
    user_id: int | None = None


@dataclass(frozen=True)
class Approve:
    pass


@dataclass(frozen=True)
class VerifyBags:
    pass


@dataclass(frozen=True)
class EditPlan:
    """A draft plan edited before approval (computed by the protocol engine)."""

    plan: Plan
    summary: str


@dataclass(frozen=True)
class ChecklistItem:
    item: Literal["consent", "rescue_kit", "premedications"]
    done: bool = True
    premedications: tuple[Premedication, ...] = ()
    none_reason: str = ""  # premedications: "none needed" needs a reason


@dataclass(frozen=True)
class RecordVitals:
    within_limits: bool
    has_spirometry: bool = False
    findings: tuple[str, ...] = ()  # every MEDIUM and HIGH finding, in words
    high_findings: tuple[str, ...] = ()  # the HIGH ones (a baseline with any needs an override)
    symptoms: tuple[str, ...] = ()  # checklist codes: they join an open reaction


@dataclass(frozen=True)
class AmendLatestVitals:
    """The latest reading was corrected: its verdict changes, the count of sets does not."""

    within_limits: bool
    findings: tuple[str, ...] = ()
    high_findings: tuple[str, ...] = ()
    baseline: bool = False  # the corrected set is a baseline


@dataclass(frozen=True)
class Start:
    # A physician starts over a baseline that meets HIGH criteria only with a reason.
    override_reason: str = ""
    cosigner: int | None = None  # the second clinician of a high-alert drug's double check


@dataclass(frozen=True)
class ConfirmStep:
    cosigner: int | None = None  # the second clinician of a high-alert drug's double check


@dataclass(frozen=True)
class RecordScan:
    """A bag's label or the patient's wristband, scanned and checked by the shell against
    what was printed (app.labels.checks): `ok` and the words of what was scanned and due."""

    kind: Literal["bag", "wristband"]
    ok: bool
    method: Literal["scanner", "camera", "manual"]
    scanned: str
    expected: str
    bag: int | None = None
    code: str = ""


@dataclass(frozen=True)
class OverrideScan:
    """A physician stands in for a scan that cannot be made (the scanner is broken)."""

    kind: Literal["bag", "wristband"]
    reason: str


@dataclass(frozen=True)
class Pause:
    reason: str
    stopped_at: datetime | None = None  # when the infusion was stopped; default now


@dataclass(frozen=True)
class ReportReaction:
    symptoms: tuple[str, ...]
    onset_at: datetime | None = None
    stopped_at: datetime | None = None
    note: str = ""
    findings: tuple[str, ...] = ()  # clinical findings in words (vitals that opened it)


@dataclass(frozen=True)
class RecordTreatment:
    drug: str
    dose: str
    route: str
    given_at: datetime | None = None


@dataclass(frozen=True)
class ResolveReaction:
    brown_grade: int
    ctcae_grade: int | None = None
    resolved_at: datetime | None = None
    note: str = ""


@dataclass(frozen=True)
class Resume:
    resume_from: ResumeFrom = "repeat"
    stretch: Decimal = Decimal(1)  # of the approved step times, never of stretched ones
    insert_intermediate: int = 0
    cap_rate_ml_h: Decimal | None = None
    # Needed, with the physician's reason, to resume while the fresh vitals breach a MEDIUM
    # or HIGH limit, or to finish or repeat the step after a Brown grade 3 reaction.
    override_reason: str = ""


@dataclass(frozen=True)
class TimerFired:
    generation: int


@dataclass(frozen=True)
class Complete:
    pass


@dataclass(frozen=True)
class Abort:
    reason: str
    # An open reaction ends with the abort: graded, with its outcome (one of OUTCOMES).
    reaction_brown_grade: int | None = None
    reaction_ctcae_grade: int | None = None
    reaction_outcome: str | None = None


Command = (
    Approve
    | VerifyBags
    | EditPlan
    | ChecklistItem
    | RecordVitals
    | AmendLatestVitals
    | Start
    | ConfirmStep
    | RecordScan
    | OverrideScan
    | Pause
    | ReportReaction
    | RecordTreatment
    | ResolveReaction
    | Resume
    | TimerFired
    | Complete
    | Abort
)
