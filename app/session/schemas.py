"""Request bodies of the session API. Unknown fields are refused; each command body may carry
`expected_version` (409 when the session moved on)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    model_validator,
)

from app.session.commands import MAX_INTERMEDIATE, MAX_STRETCH, PUMP_RATE_STEP, ResumeFrom
from app.session.record import MAX_VITALS_EVERY
from app.text import PlainLine, PlainText
from app.vitals.validation import SYMPTOMS

Text120 = Field(min_length=1, max_length=120)
MAX_ID = 2**31 - 1  # ids are 32-bit integers on PostgreSQL


def _plausible(value: datetime) -> datetime:
    """A time a person typed, with its zone, in this century: anything else is a typing error
    (and a year-1 time with an offset cannot even be converted to UTC)."""
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        raise ValueError("time out of range") from None
    if not 2000 <= utc.year <= 2100:
        raise ValueError("time out of range (2000-2100)")
    return utc


# Times in request bodies: a time zone is required (a naive time is ambiguous at the bedside).
Timestamp = Annotated[AwareDatetime, AfterValidator(_plausible)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Versioned(Strict):
    expected_version: int | None = Field(default=None, ge=1)


class ProtocolParameters(Strict):
    template: PlainLine = Field(max_length=20)
    dose: PlainLine | None = Field(default=None, max_length=40)
    unit: PlainLine = Field(max_length=10)
    final_rate: PlainLine | None = Field(default=None, max_length=40)
    bag_volume: PlainLine | None = Field(default=None, max_length=40)
    step_minutes: PlainLine | None = Field(default=None, max_length=40)
    bags: list[PlainLine] = Field(default_factory=list, max_length=8)
    start_fraction: PlainLine | None = Field(default=None, max_length=40)
    factor: PlainLine | None = Field(default=None, max_length=40)
    steps: PlainLine | None = Field(default=None, max_length=10)
    interval: PlainLine | None = Field(default=None, max_length=40)
    doses: PlainLine | None = Field(default=None, max_length=2000)


class IndexReactionIn(Strict):
    reactions: list[PlainLine] = Field(min_length=1, max_length=20)
    hypotension: bool = False
    desaturation: bool = False
    beta_blocker: bool = False
    cardiac_disease: bool = False
    fev1_percent_predicted: Decimal | None = Field(default=None, gt=0, le=200)


class SessionCreate(Strict):
    patient_id: int = Field(ge=1, le=MAX_ID)
    drug: PlainLine = Text120
    route: Literal["IV", "PO", "SC", "IM"] = "IV"
    # Either the protocol's parameters, or an earlier session of this patient and drug whose
    # plan (template, parameters and draft edits) and index reaction are copied.
    protocol: ProtocolParameters | None = None
    copy_from: int | None = Field(default=None, ge=1, le=MAX_ID)
    index_reaction: IndexReactionIn | None = None
    spirometry_required: bool = False
    pharmacist_signoff: bool = True
    observation_minutes: Decimal = Field(default=Decimal(30), ge=0, le=24 * 60, decimal_places=1)
    # Vitals are due at each step and again this often within a long step (and the
    # observation); None: the facility's default (STEPWISE_VITALS_EVERY_MINUTES).
    vitals_every_minutes: Decimal | None = Field(
        default=None, ge=5, le=MAX_VITALS_EVERY, decimal_places=1
    )
    # Optional, for the board: the chair or bay, and the nurse (user name) at the bedside.
    location: PlainLine | None = Field(default=None, max_length=60)
    assigned_nurse: PlainLine | None = Field(default=None, max_length=64)
    # What the bags are made up in (on the pharmacist's recipe); default 0.9 % sodium chloride.
    diluent: PlainLine | None = Field(default=None, max_length=120)

    @model_validator(mode="after")
    def _protocol_or_copy(self) -> SessionCreate:
        if self.copy_from is not None and self.protocol is not None:
            raise ValueError("give either protocol or copy_from, not both")
        if self.copy_from is None and self.protocol is None:
            raise ValueError("protocol is required unless copy_from names an earlier session")
        if self.copy_from is None and self.index_reaction is None:
            raise ValueError("index_reaction is required unless copy_from names an earlier session")
        return self


class Empty(Versioned):
    pass


class AssignmentIn(Strict):
    location: PlainLine | None = Field(default=None, max_length=60)
    assigned_nurse: PlainLine | None = Field(default=None, max_length=64)


class CosignedIn(Versioned):
    # A high-alert drug's pump rate is co-signed by a second clinician: their own user name
    # and password, typed in place on this tablet (never a shared account).
    cosigner_username: PlainLine | None = Field(default=None, min_length=1, max_length=64)
    cosigner_password: str | None = Field(default=None, min_length=1, max_length=200)


class StartIn(CosignedIn):
    # A physician starts over a baseline that meets HIGH criteria only with a reason.
    override_reason: PlainText = Field(default="", max_length=2000)


class ConfirmStepIn(CosignedIn):
    pass


class ScanIn(Versioned):
    kind: Literal["bag", "wristband"]
    code: PlainLine = Field(min_length=1, max_length=200)  # what the scanner or camera read
    # scanner: a keyboard-wedge scanner; camera: the tablet's camera; manual: typed by hand
    # from the printed code (a last resort, flagged in the record).
    method: Literal["scanner", "camera", "manual"] = "scanner"


class ScanOverrideIn(Versioned):
    kind: Literal["bag", "wristband"]
    reason: PlainText = Field(min_length=1, max_length=2000)


class PlanEditIn(Versioned):
    action: Literal["insert", "delete", "edit"]
    after: int | None = Field(default=None, ge=1, le=200)  # insert: between step after, after+1
    step: int | None = Field(default=None, ge=1, le=200)  # delete / edit: which step (1-based)
    rate_ml_h: Decimal | None = Field(default=None, gt=0, le=1000)
    minutes: Decimal | None = Field(default=None, gt=0, le=24 * 60)
    dose: Decimal | None = Field(default=None, gt=0)
    solution: int | None = Field(default=None, ge=1, le=10)


class ThresholdsIn(Strict):
    overrides: dict[str, Decimal] = Field(min_length=1, max_length=20)
    reason: PlainText = Field(min_length=1, max_length=1000)


class PremedicationIn(Strict):
    drug: PlainLine = Text120
    dose: PlainLine = Field(min_length=1, max_length=60)
    route: PlainLine = Field(min_length=1, max_length=40)
    given_at: Timestamp


class ChecklistIn(Versioned):
    item: Literal["consent", "rescue_kit", "premedications"]
    done: bool = True
    premedications: list[PremedicationIn] = Field(default_factory=list, max_length=10)
    none_reason: PlainText = Field(default="", max_length=500)


class PauseIn(Versioned):
    reason: PlainText = Field(min_length=1, max_length=500)
    stopped_at: Timestamp | None = None


def _known_symptoms(codes: list[str]) -> list[str]:
    unknown = [code for code in codes if code not in SYMPTOMS]
    if unknown:
        raise ValueError(f"unknown symptom {unknown[0]!r}; use the codes of the checklist")
    return codes


# The checklist's symptom codes, stated in the API's schema.
SYMPTOM_CODES: dict[str, JsonValue] = {"type": "string", "enum": list(sorted(SYMPTOMS))}


class ReactionIn(Versioned):
    symptoms: Annotated[list[str], AfterValidator(_known_symptoms)] = Field(
        min_length=1, max_length=30, json_schema_extra={"items": SYMPTOM_CODES}
    )
    onset_at: Timestamp | None = None
    stopped_at: Timestamp | None = None
    note: PlainText = Field(default="", max_length=2000)


class TreatmentIn(Versioned):
    drug: PlainLine = Text120
    dose: PlainLine = Field(min_length=1, max_length=60)
    route: PlainLine = Field(min_length=1, max_length=40)
    given_at: Timestamp | None = None


class ResolveIn(Versioned):
    brown_grade: int = Field(ge=1, le=3)
    ctcae_grade: int | None = Field(default=None, ge=1, le=4)
    resolved_at: Timestamp | None = None
    note: PlainText = Field(default="", max_length=2000)


class ResumeIn(Versioned):
    resume_from: ResumeFrom = "repeat"
    stretch: Decimal = Field(default=Decimal(1), ge=1, le=MAX_STRETCH)
    insert_intermediate: int = Field(default=0, ge=0, le=MAX_INTERMEDIATE)
    # a rate a pump can be set to: 0.1 mL/h steps, at least 0.1
    cap_rate_ml_h: Decimal | None = Field(
        default=None, ge=PUMP_RATE_STEP, le=1000, decimal_places=1
    )
    # Needed, with a reason, to resume while the fresh vitals breach a MEDIUM or HIGH limit,
    # or to finish or repeat the step after a Brown grade 3 reaction.
    override_reason: PlainText = Field(default="", max_length=2000)
    # true: answer with the plan this resume would make, and change nothing.
    dry_run: bool = False


class AbortIn(Versioned):
    reason: PlainText = Field(min_length=1, max_length=2000)
    # An open reaction is closed by the abort: its Brown grade (and CTCAE grade) and outcome
    # are required then, and refused when no reaction is open.
    reaction_brown_grade: int | None = Field(default=None, ge=1, le=3)
    reaction_ctcae_grade: int | None = Field(default=None, ge=1, le=5)
    reaction_outcome: (
        Literal["resolved", "recovering", "ongoing", "resolvedWithSequelae", "fatal", "unknown"]
        | None
    ) = None


class VitalsIn(Versioned):
    """The values themselves are checked by app.vitals.validation (ranges, statuses)."""

    model_config = ConfigDict(extra="allow")

    # A set that meets an alarm condition is saved only when resent with confirm: true.
    confirm: bool = False

    @model_validator(mode="before")
    @classmethod
    def _shallow(cls, data: object) -> object:
        """A reading is a few flat fields (a value or {value, status, reason}); anything nested
        deeper is not a reading, and would cost recursion to fingerprint and store."""
        if _depth(data) > MAX_VITALS_DEPTH:
            raise ValueError(f"a vitals set nests at most {MAX_VITALS_DEPTH} levels deep")
        return data


MAX_VITALS_DEPTH = 4


def _depth(value: object, limit: int = MAX_VITALS_DEPTH + 1) -> int:
    """How deep `value` nests, counted only up to `limit` (so a hostile body costs little)."""
    if limit <= 0 or not isinstance(value, dict | list):
        return 0
    children = value.values() if isinstance(value, dict) else value
    return 1 + max((_depth(child, limit - 1) for child in children), default=0)


class VitalsAmendIn(VitalsIn):
    reason: PlainText = Field(min_length=1, max_length=2000)
