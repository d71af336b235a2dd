"""Rendering the live views: the bedside view of one session and the board's tiles, as
out-of-band HTML fragments with stable ids. Reads only, in a read transaction closed before
anything is rendered."""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from jinja2 import Template
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.clock import Clock
from app.db import DEFERRED_BEGIN
from app.live import present as P
from app.live.board import BoardTiles
from app.live.hub import BOARD, Fanout, Hub, Topic
from app.patients.models import Patient
from app.patients.rules import age_words, rules_age
from app.permissions import PERMISSIONS, is_allowed
from app.session import read
from app.session.committed import Committed, PatientInfo, event_line, patient_info
from app.session.models import DesensitizationSession, SessionEvent
from app.session.view import Alarm, SessionView
from app.templating import templates
from app.vitals.rules import THRESHOLD_LABELS, THRESHOLD_SPECS, Thresholds, symptom_words
from app.vitals.validation import CONSCIOUSNESS_LEVELS, SYMPTOMS

logger = logging.getLogger(__name__)


TIMELINE_EVENTS = 20
# Sessions whose latest timeline the renderer keeps, so that a change handed over by the
# command that made it is rendered without a read (see LiveRenderer.session).
KEPT_TIMELINES = 512


@dataclass
class SessionPage:
    """Everything the bedside templates need for one session at one moment."""

    view: SessionView
    patient: PatientInfo
    age: Decimal | None  # in years with whole months, as the alarm rules take it
    now: datetime
    events: list[dict[str, Any]]
    role: str
    screens: int = 0
    age_words: str = ""

    @property
    def may(self) -> Callable[[str], bool]:
        if not self.role:  # the fragment shared by every role must not depend on one
            return _no_role
        return lambda action: is_allowed(self.role, action)


def _no_role(action: str) -> bool:
    raise RuntimeError(f"a fragment shared by every role asked whether it may {action}")


async def load_session_page(
    db: AsyncSession, session_id: int, now: datetime, role: str
) -> SessionPage | None:
    """Callers begin a read transaction (DEFERRED on SQLite) first."""
    row = await db.get(DesensitizationSession, session_id)
    if row is None:
        return None
    view = await read.current_view(db, row, now)
    patient = await db.get(Patient, row.patient_id)
    assert patient is not None
    events = list(
        await db.scalars(
            select(SessionEvent)
            .where(SessionEvent.session_id == session_id)
            .order_by(SessionEvent.seq.desc())
            .limit(TIMELINE_EVENTS)
        )
    )
    return page_of(view, patient_info(patient), now, [event_line(e) for e in events], role)


def page_of(
    view: SessionView, patient: PatientInfo, now: datetime, events: list[dict[str, Any]], role: str
) -> SessionPage:
    born = patient.birth_date
    return SessionPage(
        view=view,
        patient=patient,
        age=None if born is None else rules_age(born, now.date()),
        now=now,
        events=events,
        role=role,
        age_words="" if born is None else age_words(born, now.date()),
    )


def page_context(page: SessionPage) -> dict[str, Any]:
    """What the bedside templates use, worked out once."""
    view = page.view
    rows = P.vitals_rows(view)
    baseline = P.baseline_of(rows)
    latest = P.latest_of(rows)
    deadline, until = P.countdown_target(view)
    thresholds = view.thresholds.thresholds
    sbp_low, _ = thresholds.sbp_low_for(page.age)
    sbp_limits: list[tuple[str, str, Decimal]] = [(f"SBP {sbp_low}", "limit-high", sbp_low)]
    spo2_limits: list[tuple[str, str, Decimal]] = [
        (f"SpO₂ {thresholds.spo2_low_percent}", "limit-high", thresholds.spo2_low_percent)
    ]
    if baseline is not None and baseline.raw.get("systolic_bp") is not None:
        base = baseline.raw["systolic_bp"]
        assert base is not None
        fall = (base * (1 - thresholds.sbp_fall_percent / 100)).quantize(Decimal(1))
        sbp_limits.append((f"-{thresholds.sbp_fall_percent}%", "limit-high", fall))
        sbp_limits.append(
            (f"-{thresholds.sbp_fall_mmhg}", "limit-medium", base - thresholds.sbp_fall_mmhg)
        )
    if baseline is not None and baseline.raw.get("spo2") is not None:
        base = baseline.raw["spo2"]
        assert base is not None
        spo2_limits.append(
            (f"-{thresholds.spo2_fall_points}", "limit-medium", base - thresholds.spo2_fall_points)
        )
    return {
        "p": page,
        "v": view,
        "step": P.step_info(view),
        "checks": P.checks_due(view),
        "status_title": P.STATUS_TITLES[view.status],
        "deadline": deadline,
        "until": until,
        "rows": rows,
        "baseline": baseline,
        "latest": latest,
        "labels": P.VITAL_LABELS,
        "trend": lambda name: P.trend(rows, name),
        "sbp_chart": P.chart(
            rows,
            (("systolic_bp", "series-sbp"), ("heart_rate", "series-hr")),
            sbp_limits,
            Decimal(60),
            Decimal(140),
        ),
        "spo2_chart": P.chart(
            rows, (("spo2", "series-spo2"),), spo2_limits, Decimal(88), Decimal(100)
        ),
        "alarms": _active_alarms(view),
        "open_reaction": view.open_reaction,
        "symptoms": SYMPTOMS,
        "symptom_words": symptom_words,
        "consciousness_levels": CONSCIOUSNESS_LEVELS,
        "origin_words": P.origin_words,
        "plan": P.plan_table(view),
        "recipes": P.bag_recipes(view),
        "amount": P.amount,
        "may": page.may,
        "thresholds_in_force": view.thresholds.in_force,
        "thresholds_form": threshold_fields(thresholds),
    }


@dataclass(frozen=True)
class ThresholdField:
    name: str
    label: str
    value: str
    default: str
    low: str
    high: str
    unit: str


def threshold_fields(thresholds: Thresholds) -> list[ThresholdField]:
    """Every threshold a physician may set for the session, with its value now and its range."""
    defaults = Thresholds()
    return [
        ThresholdField(
            name,
            THRESHOLD_LABELS[name],
            P.trimmed(getattr(thresholds, name)),
            P.trimmed(getattr(defaults, name)),
            P.trimmed(spec.low),
            P.trimmed(spec.high),
            spec.unit,
        )
        for name, spec in THRESHOLD_SPECS.items()
    ]


def _template(name: str) -> Template:
    return templates.env.get_template(name)


def may_actions(role: str) -> str:
    """The actions this role may take, for the page's data-may: it shows what they allow."""
    return " ".join(sorted(action for action, roles in PERMISSIONS.items() if role in roles))


class LiveRenderer:
    """Renders views for the hub. The board keeps each session's tile until that session's
    event sequence moves, so a change costs one session's reads, not the whole ward's."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], clock: Clock) -> None:
        self.sessionmaker = sessionmaker
        self.clock = clock
        self.board = BoardTiles()
        # Session id -> (seq, its newest TIMELINE_EVENTS events) as last rendered.
        self._timelines: OrderedDict[int, tuple[int, list[dict[str, Any]]]] = OrderedDict()

    async def snapshot(self, topic: Topic, role: str, hub: Hub | None) -> str | None:
        """The whole view a screen gets on (re)connect."""
        if topic == BOARD:
            await self.tiles(hub)
            return self.board.whole(_counts(hub), self.clock.now())
        assert isinstance(topic, int)
        views = await self.session(topic, frozenset({role}), hub)
        return None if views is None else views.shared + views.by_role[role]

    async def session(
        self, session_id: int, roles: frozenset[str], hub: Hub | None, known: Any = None
    ) -> Fanout | None:
        """The bedside fragments after a change, from one read of the view, or from what the
        command that made the change built of it (`known`, a Committed) when the timeline it
        extends is the one last rendered here: the shared one rendered once for every role,
        the sign-offs and actions once per role."""
        page = self._page_of_known(session_id, known)
        if page is None:
            async with self.sessionmaker() as db:
                await db.connection(execution_options=DEFERRED_BEGIN)  # a read: no write lock
                page = await load_session_page(db, session_id, self.clock.now(), "")
                await db.rollback()  # the read is over before any rendering
        if page is None:
            return None
        self._keep_timeline(page)
        # The board's tile comes from the same read: the board update after it reuses it.
        self._put_tile(page)
        page.screens = hub.count(session_id) if hub is not None else 0
        context = page_context(page)
        shared = _template("sessions/_live.html").render(**context, oob=True)
        by_role = {}
        for role in roles:
            as_role = replace(page, role=role)
            by_role[role] = _template("sessions/_live_role.html").render(
                **{**context, "p": as_role, "may": as_role.may}, oob=True
            )
        return Fanout(shared, by_role)

    def _page_of_known(self, session_id: int, known: Any) -> SessionPage | None:
        """The page from a handed-over change, or None when it must be read: the change is
        not handed over, or the timeline it extends was not the last one rendered here."""
        if not isinstance(known, Committed) or known.view.id != session_id or not known.events:
            return None
        kept = self._timelines.get(session_id)
        if kept is None or kept[0] != known.events[-1]["seq"] - 1:
            return None
        events = [*known.events, *kept[1]][:TIMELINE_EVENTS]
        return page_of(known.view, known.patient, known.now, events, "")

    def _keep_timeline(self, page: SessionPage) -> None:
        self._timelines[page.view.id] = (page.view.last_event_seq, page.events)
        self._timelines.move_to_end(page.view.id)
        while len(self._timelines) > KEPT_TIMELINES:
            self._timelines.popitem(last=False)

    def _put_tile(self, page: SessionPage) -> None:
        view = page.view
        tile = tile_of(page) if view.status in P.ACTIVE else None
        self.board.put(view.id, view.last_event_seq, tile)

    async def board_changes(
        self,
        changed: Mapping[int, int],
        presence: Collection[int],
        hub: Hub | None,
        known: Mapping[int, Any] | None = None,
    ) -> str | None:
        """The board update after these sessions moved to these seqs (tiles not read since
        are read now, one session each, unless the change was handed over in `known`) and
        these had screens connect or leave."""
        now = self.clock.now()
        for session_id, change in (known or {}).items():
            if isinstance(change, Committed) and not self.board.fresh(
                session_id, change.view.last_event_seq
            ):
                self._put_tile(page_of(change.view, change.patient, change.now, [], ""))
        stale = [s for s, seq in changed.items() if not self.board.fresh(s, seq)]
        if stale:
            async with self.sessionmaker() as db:
                await db.connection(execution_options=DEFERRED_BEGIN)
                read = {s: await self._tile(db, s, now) for s in stale}
                await db.rollback()
            for session_id, tile in read.items():
                seq = changed[session_id] if tile is None else tile.pop("seq", changed[session_id])
                self.board.put(session_id, seq, tile)
        return self.board.changes(changed.keys(), presence, _counts(hub), now)

    async def tiles(self, hub: Hub | None) -> list[dict[str, Any]]:
        """Every active session's tile, in board order; those whose seq moved are read again."""
        now = self.clock.now()
        async with self.sessionmaker() as db:
            await db.connection(execution_options=DEFERRED_BEGIN)
            active = list(
                await db.execute(
                    select(DesensitizationSession.id, DesensitizationSession.last_event_seq).where(
                        DesensitizationSession.status.in_(P.ACTIVE)
                    )
                )
            )
            read = {
                session_id: (seq, await self._tile(db, session_id, now))
                for session_id, seq in active
                if not self.board.fresh(session_id, seq)
            }
            await db.rollback()
        for session_id, (seq, tile) in read.items():
            self.board.put(session_id, seq if tile is None else tile.pop("seq", seq), tile)
        self.board.keep_only({session_id for session_id, _ in active})
        return self.board.shown(_counts(hub), now)

    async def _tile(self, db: AsyncSession, session_id: int, now: datetime) -> dict | None:
        """One session's tile (with the seq it shows), None when it is not on the board. A
        session that cannot be shown (a defect, or data no rule foresaw) gets a tile that says
        so, and the rest of the board renders: one bad session must never blank the wall for
        every patient. Database errors are not this: they propagate (503, reconnect)."""
        try:
            page = await load_session_page(db, session_id, now, "")
            if page is None or page.view.status not in P.ACTIVE:
                return None
            return {**tile_of(page), "seq": page.view.last_event_seq}
        except SQLAlchemyError:
            raise
        except Exception:
            logger.exception("session %s cannot be shown on the board", session_id)
            # Who and where, read plainly, so the wall still says which patient to go and see.
            found = (
                await db.execute(
                    select(Patient.family_name, Patient.given_name, DesensitizationSession.location)
                    .join(Patient, Patient.id == DesensitizationSession.patient_id)
                    .where(DesensitizationSession.id == session_id)
                )
            ).first()
            return unshowable_tile(session_id, *(found or (None, None, None)))


def _counts(hub: Hub | None) -> Callable[[int], int]:
    return (lambda _id: 0) if hub is None else hub.count


def _percent(given: Decimal) -> str:
    # The first steps give a sliver of the dose: "< 1 %", not a "0 %" that reads as nothing.
    return "< 1" if 0 < given < 1 else P.amount(given, 0)


def _active_alarms(view: SessionView) -> list[Alarm]:
    """The alarms still in force, most urgent first, then oldest first."""
    return sorted(
        (a for a in view.alarms.items if a.active),
        key=lambda a: (-P.RANK[a.priority], a.raised_at),
    )


def unshowable_tile(
    session_id: int,
    family_name: str | None = None,
    given_name: str | None = None,
    location: str | None = None,
) -> dict[str, Any]:
    named = f"{family_name}, {given_name}" if family_name else f"Session {session_id}"
    return {
        "id": session_id,
        "unshowable": True,
        "patient": named,
        "location": location,
        "status": "unshowable",
        "priority": None,
        "deadline": None,
        "alarms": [],
    }


def tile_of(page: SessionPage) -> dict[str, Any]:
    view = page.view
    rows = P.vitals_rows(view)
    latest = P.latest_of(rows)
    deadline, until = P.countdown_target(view)
    step = P.step_info(view)
    vitals = []
    if latest is not None:
        for name in ("systolic_bp", "heart_rate", "spo2", "respiratory_rate"):
            label, _unit = P.VITAL_LABELS[name]
            if label in latest.values:
                vitals.append((label, latest.values[label], P.trend(rows, name)))
        if latest.news2 is not None:
            vitals.append(("NEWS2", latest.news2_short, ""))
    return {
        "id": view.id,
        "patient": f"{page.patient.family_name}, {page.patient.given_name}",
        "mrn": page.patient.mrn,
        "location": view.location,
        "nurse": view.assigned_nurse.name if view.assigned_nurse else None,
        "drug": view.drug,
        "status": view.status,
        "status_title": P.STATUS_TITLES[view.status],
        "step": step,
        "deadline": deadline,
        "until": until,
        "delivered_percent": _percent(view.delivered_percent),
        "vitals": vitals,
        "vitals_at": latest.at if latest else None,
        "alarms": _active_alarms(view),
        "priority": P.top_priority(view),
    }
