"""The board's tiles between changes, and what a change sends to the board screens.

A change of one session sends that session's tile (a stable id) and where it now goes, never
the whole board: what a change costs the wall does not grow with the number of sessions
running. A screen connecting or leaving sends only the one line of the tile that says how many
bedside screens are open. Tiles are the same for every role: who may acknowledge from the
board is decided by the page (data-needs, live.css). The whole board is sent only as the
snapshot when a board screen (re)connects.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jinja2 import Template
from markupsafe import Markup

from app.live import present as P
from app.templating import templates

Counts = Callable[[int], int]  # session id -> bedside screens open on it


def _template(name: str) -> Template:
    return templates.env.get_template(name)


@dataclass
class Entry:
    seq: int  # the session's event seq the tile shows
    tile: dict[str, Any] | None  # None: no longer on the board (ended)
    html: str = ""  # the tile rendered for `html_screens` screens ("" until rendered)
    html_screens: int = -1
    screens: int = -1  # the screen count the board screens were last told


def escalated(tiles: list[dict[str, Any]]) -> list[tuple[dict[str, Any], Any]]:
    return [(tile, alarm) for tile in tiles for alarm in tile["alarms"] if alarm.escalated_at]


class BoardTiles:
    """Each active session's tile, kept until that session's event seq moves."""

    def __init__(self) -> None:
        self.entries: dict[int, Entry] = {}
        # A tile's escalated alarms changed since the boards were last sent the escalations.
        self.escalations_due = False
        self.tiles_rendered = 0  # whole tiles rendered (a counter for the hub's stats)

    def put(self, session_id: int, seq: int, tile: dict[str, Any] | None) -> None:
        entry = self.entries.get(session_id)
        if entry is not None and entry.seq > seq:
            return  # an older read finishing late never undoes a newer one
        screens = entry.screens if entry is not None else -1
        before = None if entry is None else entry.tile
        if _escalations_of(before) != _escalations_of(tile):
            self.escalations_due = True
        self.entries[session_id] = Entry(seq, tile, screens=screens)

    def fresh(self, session_id: int, seq: int) -> bool:
        entry = self.entries.get(session_id)
        return entry is not None and entry.seq >= seq

    def keep_only(self, session_ids: Collection[int]) -> None:
        for stale in [k for k in self.entries if k not in session_ids]:
            del self.entries[stale]

    def shown(self, counts: Counts, now: datetime) -> list[dict[str, Any]]:
        """The tiles on the board, in board order, with their screen counts."""
        tiles = []
        for session_id, entry in self.entries.items():
            if entry.tile is not None:
                tiles.append({**entry.tile, "screens": counts(session_id)})
        return P.board_order(tiles, now)

    def _html(self, entry: Entry, screens: int) -> str:
        assert entry.tile is not None
        if entry.html_screens != screens or not entry.html:
            entry.html = _TILE.render(t={**entry.tile, "screens": screens})
            entry.html_screens = screens
            self.tiles_rendered += 1
        return entry.html

    def changes(
        self, changed: Collection[int], presence: Collection[int], counts: Counts, now: datetime
    ) -> str | None:
        """The message for the board screens after these sessions changed (their entries put
        already) and these had screens connect or leave; None when the boards show it all."""
        order = [t["id"] for t in self.shown(counts, now)]
        place = {session_id: i for i, session_id in enumerate(order)}
        tiles, moves, gone = [], [], []
        for session_id in sorted(changed, key=lambda s: place.get(s, -1)):
            entry = self.entries.get(session_id)
            if entry is None or entry.tile is None:
                gone.append(str(session_id))
                self.entries.pop(session_id, None)
                continue
            screens = counts(session_id)
            tiles.append(Markup(self._html(entry, screens)))
            entry.screens = screens
            i = place[session_id]
            after = str(order[i + 1]) if i + 1 < len(order) else ""
            moves.append(f"{session_id}:{after}")
        links = []
        for session_id in sorted(set(presence) - set(changed)):
            entry = self.entries.get(session_id)
            if entry is None or entry.tile is None or entry.tile.get("unshowable"):
                continue
            screens = counts(session_id)
            if screens != entry.screens:
                entry.screens = screens
                links.append((session_id, screens))
        escalations = None
        if self.escalations_due:
            shown = [self.entries[s].tile for s in order]
            region = _ESCALATIONS.render(escalated=escalated(shown), oob=True)  # type: ignore[arg-type]
            escalations = Markup(region)
            self.escalations_due = False
        if not (tiles or links or gone or escalations):
            return None
        return _CHANGES.render(
            tiles_html=tiles,
            links=links,
            escalations=escalations,
            moves=" ".join(moves),
            gone=" ".join(gone),
            count=len(order),
            oob=True,
        )

    def whole(self, counts: Counts, now: datetime) -> str:
        """The whole board: the snapshot a board screen gets on (re)connect."""
        tiles = self.shown(counts, now)
        html = [Markup(self._html(self.entries[t["id"]], t["screens"])) for t in tiles]
        return _template("board/_live.html").render(
            **board_context(tiles), tiles_html=html, oob=True
        )


def _escalations_of(tile: dict[str, Any] | None) -> tuple[tuple[Any, ...], ...]:
    if tile is None:
        return ()
    return tuple((a.id, a.priority, a.message) for a in tile["alarms"] if a.escalated_at)


def board_context(tiles: list[dict[str, Any]]) -> dict[str, Any]:
    """What the board templates read: the same for every role."""
    return {"tiles": tiles, "escalated": escalated(tiles)}


_TILE = _template("board/_tile.html")
_ESCALATIONS = _template("board/_escalations.html")
_CHANGES = _template("board/_changes.html")
