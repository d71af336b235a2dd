"""The board's updates: a change sends the changed tiles and where they now go, never the whole
board; screens coming and going send one line per tile; placing the changed tiles as the page
does (live.js) always gives the server's board order."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from app.live import present as P
from app.live.board import BoardTiles

NOW = datetime(2031, 1, 1, 12, tzinfo=UTC)


def tile(session_id: int, minutes: int | None = 10, priority: str | None = None) -> dict:
    alarms = []
    if priority:
        alarm = SimpleNamespace(
            id=1,
            priority=priority,
            message="SpO₂ 85 %",
            condition="spo2_low",
            flashing=True,
            acknowledged_at=None,
            escalated_at=None,
        )
        alarms.append(alarm)
    return {
        "id": session_id,
        "patient": f"Bench{session_id}, Pat",
        "mrn": f"M{session_id}",
        "location": "Chair 1",
        "nurse": "Nurse",
        "drug": "carboplatin",
        "status": "running",
        "status_title": "Running",
        "step": P.StepInfo(1, 12, "Bag 1", "2 mL/h", ""),
        "deadline": None if minutes is None else NOW + timedelta(minutes=minutes),
        "until": "next step",
        "delivered_percent": "< 1",
        "vitals": [("HR", "70", "")],
        "vitals_at": NOW,
        "alarms": alarms,
        "priority": priority,
    }


def page_order(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'<article id="tile-(\d+)"', html)]


def place(order: list[int], message: str) -> list[int]:
    """What live.js does with a board update: drop the gone, add the new, place each moved tile
    just before its successor, from the last."""
    moves = re.search(r'data-moves="([^"]*)"', message)
    gone = re.search(r'data-gone="([^"]*)"', message)
    assert moves and gone
    page = [s for s in order if str(s) not in gone.group(1).split()]
    page += [s for s in page_order(message) if s not in page]
    for move in reversed(moves.group(1).split()):
        moved, after = move.split(":")
        page.remove(int(moved))
        page.insert(page.index(int(after)) if after else len(page), int(moved))
    return page


def board_of(count: int) -> tuple[BoardTiles, dict[int, int]]:
    board = BoardTiles()
    screens: dict[int, int] = {}
    for n in range(1, count + 1):
        board.put(n, 1, tile(n, minutes=n))
    return board, screens


def test_one_change_sends_that_tile_and_its_place_whatever_the_board_size() -> None:
    sizes = []
    for count in (10, 50, 200):
        board, _ = board_of(count)
        whole = board.whole(lambda s: 0, NOW)
        board.put(5, 2, tile(5, minutes=5, priority="HIGH"))
        message = board.changes([5], (), lambda s: 0, NOW)
        assert message is not None
        assert page_order(message) == [5]  # the one tile, not the board
        assert 'id="board-tiles"' not in message
        assert 'data-moves="5:1"' in message  # a HIGH alarm: first, before session 1
        assert 'id="escalations"' not in message  # nothing escalated: left as it is
        assert len(message) < len(whole) / (count / 2)
        sizes.append(len(message))
    assert max(sizes) <= min(sizes) * 1.25  # flat from 10 to 200 sessions


def test_placing_the_changed_tiles_gives_the_server_order() -> None:
    rng = random.Random(18)
    board, _ = board_of(30)
    shown = page_order(board.whole(lambda s: 0, NOW))
    next_id, seq = 31, 2
    for _ in range(200):
        changed = set()
        for _ in range(rng.randint(1, 5)):
            pick = rng.random()
            live = [t["id"] for t in board.shown(lambda s: 0, NOW)]
            if pick < 0.15:  # a new session on the board
                session_id, next_id = next_id, next_id + 1
                board.put(session_id, seq, tile(session_id, rng.randint(0, 60)))
            elif pick < 0.3 and live:  # a session ends
                session_id = rng.choice(live)
                board.put(session_id, seq, None)
            elif live:
                session_id = rng.choice(live)
                priority = rng.choice([None, None, "LOW", "MEDIUM", "HIGH"])
                board.put(session_id, seq, tile(session_id, rng.choice([None, 3, 30]), priority))
            else:
                continue
            changed.add(session_id)
            seq += 1
        message = board.changes(changed, (), lambda s: 0, NOW)
        assert message is not None
        shown = place(shown, message)
        assert shown == [t["id"] for t in board.shown(lambda s: 0, NOW)]


def test_screens_coming_and_going_send_only_the_lines_that_changed() -> None:
    board, screens = board_of(10)
    board.changes(range(1, 11), (), lambda s: screens.get(s, 0), NOW)  # the boards know all
    screens.update({3: 2, 4: 1})
    message = board.changes((), {3, 4, 5}, lambda s: screens.get(s, 0), NOW)
    assert message is not None
    assert "<article" not in message  # no tile: their lines only
    assert 'id="tile-link-3"' in message and "2 bedside screens connected" in message
    assert 'id="tile-link-4"' in message and 'id="tile-link-5"' not in message  # 5 unchanged
    assert len(message) < 600
    assert board.changes((), {3, 4}, lambda s: screens.get(s, 0), NOW) is None  # told already


def test_the_escalations_go_with_a_change_only_when_they_change() -> None:
    board, _ = board_of(3)
    board.changes([1, 2, 3], (), lambda s: 0, NOW)
    escalated = tile(2, priority="HIGH")
    escalated["alarms"][0].escalated_at = NOW
    board.put(2, 2, escalated)
    message = board.changes([2], (), lambda s: 0, NOW)
    assert message is not None and 'id="escalations"' in message
    assert "Escalated: Bench2, Pat" in message
    board.put(1, 2, tile(1, minutes=20))  # another tile changes; the escalations do not
    message = board.changes([1], (), lambda s: 0, NOW)
    assert message is not None and 'id="escalations"' not in message
