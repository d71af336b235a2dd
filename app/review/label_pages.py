"""The bag labels' print page: one label per bag that scans now (voided copies left out), with
the patient, the bag's contents, who prepared it and when it expires, and its code as a QR
symbol and in grouped characters. Laid out for A4 sheets or for 62 mm label stock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

import segno
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.dependencies import require_permission
from app.auth.models import User
from app.auth.service import SignedIn
from app.db import DEFERRED_BEGIN
from app.deps import Sessionmaker
from app.labels import service as labels
from app.labels.code import parse
from app.live.present import amount, trimmed
from app.patients.models import Patient
from app.session import codec
from app.session.models import DesensitizationSession
from app.session.schemas import MAX_ID
from app.templating import no_such_session, templates

router = APIRouter(include_in_schema=False)

Size = Literal["a4", "62mm"]
SIZE_TITLES = {"a4": "A4 sheets", "62mm": "62 mm label roll"}
QR_ERROR = "m"  # segno raises it when the symbol has room: a smudged label still reads
QR_BORDER = 4  # the quiet zone a scanner needs, in modules


@dataclass(frozen=True)
class LabelCard:
    bag: int
    bags: int
    bag_label: str  # 1/100, 1/10, final
    copy: int
    code: str  # the QR payload
    printed: str  # the same code in groups, for people
    drug_amount: str  # "0.4 mg" (concentration x volume)
    volume: str  # "250 mL"
    concentration: str  # "0.0016 mg/mL"
    prepared_by: str
    prepared_at: datetime
    expires_at: datetime
    qr_svg: str  # segno's SVG markup, shown |safe by the template

    @property
    def copy_words(self) -> str:
        return f"copy {self.copy} (reprint)" if self.copy > 1 else "copy 1"


@dataclass(frozen=True)
class LabelSheet:
    session_id: int
    drug: str
    route: str
    unit: str
    diluent: str
    family_name: str
    given_name: str
    mrn: str
    birth_date: date
    cards: tuple[LabelCard, ...]


def qr_svg(text: str) -> str:
    """The code as an inline SVG drawn by segno (sized by the stylesheet: no width or height).
    The one piece of markup the print page shows unescaped; the code is 0-9, A-Z and *."""
    symbol = segno.make(text, error=QR_ERROR)
    return symbol.svg_inline(scale=1, border=QR_BORDER, omitsize=True, svgclass="qr")


async def _read(db: AsyncSession, session_id: int) -> LabelSheet | None:
    row = await db.get(DesensitizationSession, session_id)
    if row is None:
        return None
    patient = await db.get(Patient, row.patient_id)
    assert patient is not None
    plan = codec.loads(row.state_json).plan
    bags = {bag.number: bag for bag in plan.bags}
    current = await labels.current_labels(db, session_id)
    ids = {label.prepared_by for label in current} - {None}
    users = {u.id: u for u in await db.scalars(select(User).where(User.id.in_(ids or {0})))}
    cards = []
    for label in current:
        bag = bags.get(label.bag)
        if bag is None:  # a plan edited after the labels were printed names other bags
            continue
        preparer = users.get(label.prepared_by) if label.prepared_by is not None else None
        cards.append(
            LabelCard(
                bag=label.bag,
                bags=len(plan.bags),
                bag_label=bag.label,
                copy=label.copy,
                code=label.code,
                printed=parse(label.code).printed,
                drug_amount=f"{amount(bag.amount, 4)} {row.unit}",
                volume=f"{trimmed(bag.volume_ml)} mL",
                concentration=f"{amount(bag.concentration, 4)} {row.unit}/mL",
                prepared_by=preparer.display_name if preparer else "—",
                prepared_at=label.prepared_at,
                expires_at=label.expires_at,
                qr_svg=qr_svg(label.code),
            )
        )
    return LabelSheet(
        session_id=row.id,
        drug=row.drug,
        route=row.route,
        unit=row.unit,
        diluent=row.diluent,
        family_name=patient.family_name,
        given_name=patient.given_name,
        mrn=patient.mrn,
        birth_date=patient.birth_date,
        cards=tuple(cards),
    )


@router.get("/sessions/{session_id:int}/labels/print", response_class=HTMLResponse)
async def print_labels(
    request: Request,
    session_id: int,
    sessionmaker: Sessionmaker,
    size: Size = "a4",
    _: SignedIn = require_permission("session.read"),
) -> HTMLResponse:
    if not 1 <= session_id <= MAX_ID:  # beyond any id the databases can hold
        return no_such_session(request, session_id)
    async with sessionmaker() as db:
        await db.connection(execution_options=DEFERRED_BEGIN)  # a read: no write lock
        sheet = await _read(db, session_id)
        await db.rollback()
    if sheet is None:
        return no_such_session(request, session_id)
    return templates.TemplateResponse(
        request,
        "labels/print.html",
        {"sheet": sheet, "size": size, "sizes": SIZE_TITLES},
    )
