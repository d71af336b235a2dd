"""The report's pauses and its deviations from the approved plan, worked out from the session's
events and its rows. Pure."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from app.live import present as P
from app.review.report_model import (
    RESUME_TITLES,
    AdministrationRow,
    Deviation,
    EventRecord,
    PauseRow,
    Person,
    PlanRow,
    duration_text,
    person_name,
)


def _when(value: str | None) -> datetime | None:
    # Event data keeps its times as ISO text: events are read as stored.
    return None if value is None else datetime.fromisoformat(value)


def resume_choice(data: Mapping[str, Any]) -> str:
    if data.get("to") == "observing":
        return "continue the observation"
    parts = [RESUME_TITLES.get(data.get("resume_from", ""), str(data.get("resume_from", "")))]
    stretch = data.get("stretch")
    if stretch is not None and Decimal(str(stretch)) != 1:
        parts.append(f"step times ×{P.amount(stretch, 2)}")
    if data.get("insert_intermediate"):
        parts.append(f"{data['insert_intermediate']} intermediate step(s) inserted")
    if data.get("cap_rate_ml_h"):
        parts.append(f"rate capped at {P.amount(data['cap_rate_ml_h'], 1)} mL/h")
    return ", ".join(parts)


def pauses_of(
    events: Sequence[EventRecord],
    administration: Sequence[AdministrationRow],
    users: Mapping[int, Person],
    now: datetime,
) -> tuple[PauseRow, ...]:
    """Pauses from the events: a hold or a reaction stops the infusion; the physician's resume
    ends the pause; the next confirmed pump change restarts the infusion."""
    out: list[PauseRow] = []
    infusing = False
    open_pause: dict[str, Any] | None = None
    waiting_restart: int | None = None  # index in `out` of a resumed pause awaiting its pump

    def stop_time(at: datetime) -> datetime:
        before = [r for r in administration if r.started_at <= at and r.stopped_at is not None]
        if infusing and before and before[-1].stopped_at is not None:
            return before[-1].stopped_at
        return at

    def close(at: datetime, how: str, event: EventRecord | None) -> None:
        nonlocal open_pause
        assert open_pause is not None
        out.append(
            PauseRow(
                number=len(out) + 1,
                at_step=open_pause["at_step"],
                began_at=open_pause["began_at"],
                reason=open_pause["reason"],
                reactions=tuple(open_pause["reactions"]),
                ended_at=at if how else None,
                ended_by=how,
                resumed_by=person_name(users, event.actor_id, event.actor_role)
                if event is not None and how == "resumed"
                else "",
                resume_choice=resume_choice(event.data)
                if event is not None and how == "resumed"
                else "",
                restarted_at=None,
                duration=at - open_pause["began_at"],
                infusion_off=None,
            )
        )
        open_pause = None

    step: int | None = None  # 1-based step last started
    for event in events:
        kind, data = event.kind, event.data
        if kind == "step_started":
            if waiting_restart is not None:
                out[waiting_restart] = _with_restart(out[waiting_restart], event.at)
                waiting_restart = None
            infusing = True
            step = data["step"] + 1 if data.get("step") is not None else step
        elif kind in ("last_step_done", "target_reached"):
            infusing = False
        elif kind == "paused" and open_pause is None:
            began = _when(data.get("stopped_at")) or event.at
            reason = data.get("reason") or "hold"
            open_pause = {"began_at": began, "reason": reason, "reactions": [], "at_step": step}
            infusing = False
        elif kind == "reaction_reported":
            if open_pause is None:
                began = stop_time(event.at)
                open_pause = {
                    "began_at": began,
                    "reason": "reaction",
                    "reactions": [],
                    "at_step": step,
                }
                infusing = False
            if data.get("reaction") is not None:
                open_pause["reactions"].append(data["reaction"])
        elif kind == "resumed" and open_pause is not None:
            close(event.at, "resumed", event)
            if data.get("to") != "observing":
                waiting_restart = len(out) - 1
        elif kind in ("completed", "aborted"):
            if open_pause is not None:
                close(event.at, kind, event)
            waiting_restart = None
            infusing = False
    if open_pause is not None:
        close(now, "", None)
    return tuple(out)


def _with_restart(pause: PauseRow, at: datetime) -> PauseRow:
    return replace(pause, restarted_at=at, infusion_off=at - pause.began_at)


def _runs(rows: Sequence[PlanRow], key: Any) -> list[list[PlanRow]]:
    """Consecutive steps with the same non-None key, grouped."""
    runs: list[list[PlanRow]] = []
    last: Any = None
    for row in rows:
        k = key(row)
        if k is None:
            last = None
            continue
        if runs and k == last and runs[-1][-1].step == row.step - 1:
            runs[-1].append(row)
        else:
            runs.append([row])
        last = k
    return runs


def _pairs(pairs: Iterable[tuple[Decimal | None, Decimal | None]], unit: str) -> str:
    seen: list[str] = []
    for before, after in pairs:
        text = f"{P.amount(before, 1)} → {P.amount(after, 1)} {unit}"
        if text not in seen:
            seen.append(text)
    return ", ".join(seen)


def deviations_of(
    plan: Sequence[PlanRow],
    pauses: Sequence[PauseRow],
    *,
    status: str,
    delivered: Decimal,
    target: Decimal,
    unit: str,
) -> tuple[Deviation, ...]:
    out: list[Deviation] = []
    for row in plan:
        of = f"approved step {row.stands_for}"
        text = {
            "repeat": f"repeats {of}",
            "step_back": f"steps back to {of}",
            "intermediate": "intermediate step inserted after a reaction",
            "finish": f"finishes the rest of {of}"
            + (f" ({P.amount(row.minutes, 1)} min)" if row.minutes is not None else ""),
            "inserted": "inserted in the draft before approval",
            "edited": "edited in the draft before approval",
        }.get(row.origin)
        if text is not None:
            out.append(Deviation(row.origin, row.step, row.step, text))
    for run in _runs(plan, lambda r: r.stretch):
        factor = run[0].stretch
        pairs = _pairs(((r.approved_minutes, r.minutes) for r in run), "min")
        text = f"step time ×{P.amount(factor, 2)} ({pairs})"
        out.append(Deviation("stretched", run[0].step, run[-1].step, text))
    for run in _runs(plan, lambda r: r.rate_ml_h if r.capped else None):
        pairs = _pairs(((r.approved_rate_ml_h, r.rate_ml_h) for r in run), "mL/h")
        out.append(Deviation("rate_capped", run[0].step, run[-1].step, f"rate capped ({pairs})"))
    for pause in pauses:
        why = pause.reason
        if pause.reactions:
            why = ", ".join(f"reaction {n}" for n in pause.reactions)
        text = f"paused {duration_text(pause.duration)} ({why})"
        out.append(Deviation("pause", pause.at_step, pause.at_step, text))
    out.sort(key=lambda d: (d.first_step is None, d.first_step or 0))
    if status in ("completed", "aborted") and delivered != target:
        text = f"delivered {P.amount(delivered, 3)} of {P.amount(target, 3)} {unit}"
        out.append(Deviation("dose", None, None, text))
    return tuple(out)
