"""A change's screens are rendered from what the command that made it handed over with the
ring, with no read: the bytes must be those a fresh read of the committed session renders,
for the bedside (every role) and the board tile, through a session's whole course (vitals,
a reaction, a pause, a resume). A ring that does not extend the timeline rendered last is
read instead."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.doorbell import Ring
from app.live.render import LiveRenderer
from app.session import machine as M
from app.session.committed import Committed
from tests.session import test_service_direct as direct
from tests.session.test_service_direct import OK_VITALS, Ward

ward = direct.ward  # the same fixture: a real database, a manual clock, no HTTP

ROLES = frozenset({"nurse", "physician", "pharmacist"})


def counting(sessionmaker: async_sessionmaker[AsyncSession], reads: list[int]) -> Any:
    def open_one() -> AsyncSession:
        reads.append(1)
        return sessionmaker()

    return open_one


async def vitals(ward: Ward, session_id: int, **values: Any) -> None:
    await ward.vitals(session_id, {**OK_VITALS, **values}, confirmed=True)


async def test_a_handed_over_change_renders_the_bytes_a_fresh_read_renders(ward: Ward) -> None:
    session_id = await ward.new_session()
    rings = ward.doorbell.listen()
    reads: list[int] = []
    handed = LiveRenderer(counting(ward.sessionmaker, reads), ward.clock)
    await handed.session(session_id, ROLES, None)  # a screen connects: read once
    assert len(reads) == 1

    steps: list[tuple[str, Callable[[], Any]]] = [
        ("approve", lambda: ward.command("physician", session_id, M.Approve())),
        ("verify", lambda: ward.command("pharmacist", session_id, M.VerifyBags())),
        ("consent", lambda: ward.command("nurse", session_id, M.ChecklistItem("consent"))),
        ("kit", lambda: ward.command("nurse", session_id, M.ChecklistItem("rescue_kit"))),
        (
            "premedications",
            lambda: ward.command(
                "nurse",
                session_id,
                M.ChecklistItem("premedications", True, (), "none needed"),
            ),
        ),
        ("baseline", lambda: vitals(ward, session_id)),
        ("start", lambda: ward.command("nurse", session_id, M.Start())),
        ("vitals", lambda: vitals(ward, session_id, heart_rate=88)),
        # Low pressure and oxygen: a reaction opens, the session pauses, alarms are raised.
        ("reaction", lambda: vitals(ward, session_id, systolic_bp=78, diastolic_bp=50, spo2=89)),
        (
            "treated",
            lambda: ward.command(
                "nurse", session_id, M.RecordTreatment("adrenaline", "0.5 mg", "IM")
            ),
        ),
        ("resolved", lambda: ward.command("physician", session_id, M.ResolveReaction(2))),
        ("recovered", lambda: vitals(ward, session_id)),
        ("resume", lambda: ward.command("physician", session_id, M.Resume(override_reason="ok"))),
        ("pause", lambda: ward.command("nurse", session_id, M.Pause("the patient asked"))),
    ]
    for name, step in steps:
        ward.clock.advance(timedelta(minutes=3))
        await step()
        ring: Ring = rings.get_nowait()
        assert isinstance(ring.known, Committed), name
        assert ring.known.view.last_event_seq == ring.seq, name
        before = len(reads)
        fanout = await handed.session(session_id, ROLES, None, ring.known)
        board = await handed.board_changes({session_id: ring.seq}, (), None)
        assert len(reads) == before, f"{name}: a handed-over change was read again"

        fresh = LiveRenderer(ward.sessionmaker, ward.clock)  # reads the committed session
        read_back = await fresh.session(session_id, ROLES, None)
        assert fanout is not None and read_back is not None
        assert fanout.shared == read_back.shared, name
        assert fanout.by_role == read_back.by_role, name
        assert board == await fresh.board_changes({session_id: ring.seq}, (), None), name


async def test_a_change_whose_timeline_was_not_rendered_here_is_read(ward: Ward) -> None:
    session_id = await ward.new_session()
    rings = ward.doorbell.listen()
    reads: list[int] = []
    handed = LiveRenderer(counting(ward.sessionmaker, reads), ward.clock)
    await handed.session(session_id, ROLES, None)
    await ward.command("physician", session_id, M.Approve())
    rings.get_nowait()  # this change's screens were never rendered here (say, a failed send)
    await ward.command("pharmacist", session_id, M.VerifyBags())
    ring = rings.get_nowait()
    before = len(reads)
    fanout = await handed.session(session_id, ROLES, None, ring.known)
    assert len(reads) == before + 1  # its timeline would lack the approval: read instead
    fresh = await LiveRenderer(ward.sessionmaker, ward.clock).session(session_id, ROLES, None)
    assert fanout == fresh
