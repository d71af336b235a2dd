"""Exports of the audit log and of vitals, streamed in batches (product-spec §5 "Review").

Nothing here holds a whole export in memory: rows are read with keyset pagination (``seq > last``
or ``id > last``, ``LIMIT`` a batch), each batch in its own short read transaction, and written
out batch by batch. Every export first fixes its upper bound (the chain head, the newest vitals
id) so that it is a stable snapshot even while rows are appended meanwhile; both tables are
append-only, so a row read once never changes.

The audit log comes in two forms. The CSV is for reading in a spreadsheet: like the vitals CSV,
a cell that a spreadsheet would run as a formula gets a leading apostrophe, because anyone can
put text into the log (a failed sign-in records the browser string it was sent with). The JSON
Lines file is the evidence: one entry per line, every stored column verbatim, so that the hash
chain can be recomputed from it alone (``check_audit_jsonl``, ``stepwise audit verify-export``).

Filters are checked before anything is streamed (``ExportError``, answered 422). Times in the
files are ISO 8601 UTC with microseconds and ``Z``, the audit log's canonical spelling. Time
filters accept ISO 8601 with an offset, a time without one (the facility's time zone) or a date
(midnight there), and select ``since <= time <= until``, as the audit search page does.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import Select, String, and_, cast, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import localtime
from app.audit.chain import GENESIS_HASH, HASHED_FIELDS, entry_hash, format_datetime
from app.audit.model import HEAD_ID, AuditChainHead, AuditEvent
from app.auth.models import User
from app.db import DEFERRED_BEGIN
from app.session.models import DesensitizationSession, VitalsSet
from app.text import text_problem
from app.vitals.validation import MEASURED_FIELDS

BATCH_SIZE: Final = 500
MAX_ID: Final = 2**31 - 1  # ids are 32-bit integers on PostgreSQL
TIME_TEXT_MAX: Final = 64

_audit = AuditEvent.__table__
_head = AuditChainHead.__table__
_vitals = VitalsSet.__table__
_session = DesensitizationSession.__table__
_user = User.__table__

# Every stored column: the hashed ones, then the hash.
AUDIT_COLUMNS: Final[tuple[str, ...]] = (*HASHED_FIELDS, "hash")

VITALS_BASE_COLUMNS: Final[tuple[str, ...]] = (
    "vitals_id",
    "session_id",
    "patient_id",
    "reading_id",
    "version",
    "supersedes_id",
    "amendment_reason",
    "recorded_at",
    "recorded_by",
    "recorded_by_username",
    "session_status",
    "step_position",  # index into the plan, as the API's "step" (0 = the first step)
    "step_number",  # as the screens show it (1 = the first step)
    "baseline",
    "within_limits",
)
VITALS_COLUMNS: Final[tuple[str, ...]] = (
    *VITALS_BASE_COLUMNS,
    *(f"{name}{suffix}" for name in MEASURED_FIELDS for suffix in ("", "_status", "_reason")),
    "symptoms",
    "note",
    "consciousness",  # ACVPU letter, empty when not recorded
    "supplemental_oxygen",  # true / false, empty when not recorded
    "recorded_at_local",  # as the facility reads it, with the zone named
)

# A spreadsheet runs a cell that starts with one of these as a formula. Free text typed at the
# bedside (notes, reasons) gets a leading apostrophe in the vitals CSV, and so does every cell of
# the audit CSV (its verbatim form is the JSON Lines export).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class ExportError(ValueError):
    """A refused export request: a one-line message naming the query parameter."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


# --- filters ---------------------------------------------------------------------------------


def parse_time(name: str, raw: str | None) -> datetime | None:
    """An ISO 8601 time (or date) as an aware UTC datetime; None when blank. A time without a
    zone is the facility's (what the search form's fields mean)."""
    if raw is None or not raw.strip():
        return None
    text = raw.strip()
    if len(text) > TIME_TEXT_MAX:
        raise ExportError(f"{name} must be an ISO 8601 time, not {len(text)} characters", name)
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ExportError(
            f"{name} must be an ISO 8601 time such as 2026-11-21T09:30:00Z, got {_shown(text)!r}",
            name,
        ) from None
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        value = value.replace(tzinfo=localtime.zone())
    try:
        return value.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00+01:00 is in the year 0 in UTC
        raise ExportError(
            f"{name} must be a time between the years 1 and 9999 in UTC, got {_shown(text)!r}",
            name,
        ) from None


def _shown(text: str) -> str:
    return text if len(text) <= 32 else text[:32] + "…"


def text_filter(name: str, raw: str | None, max_chars: int) -> str | None:
    if raw is None or not raw.strip():
        return None
    text = raw.strip()
    if len(text) > max_chars:
        raise ExportError(f"{name} must have at most {max_chars} characters", name)
    problem = text_problem(text)
    if problem:
        raise ExportError(f"{name} must be plain text on one line: it {problem}", name)
    return text


@dataclass(frozen=True)
class TimeRange:
    since: datetime | None = None
    until: datetime | None = None

    @classmethod
    def parse(cls, since: str | None, until: str | None) -> TimeRange:
        start, end = parse_time("since", since), parse_time("until", until)
        if start is not None and end is not None and start > end:
            raise ExportError(
                f"since ({_utc_text(start)}) is after until ({_utc_text(end)})", "since"
            )
        return cls(start, end)

    def as_dict(self) -> dict[str, str]:
        given = {"since": self.since, "until": self.until}
        return {k: _utc_text(v) for k, v in given.items() if v is not None}


def _utc_text(value: datetime) -> str:
    """A filter's UTC time as the audit log spells times, its year always in four digits (the
    platform's strftime drops the zeros of the year 1)."""
    return value.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def id_filter(name: str, raw: str | None) -> int | None:
    text = text_filter(name, raw, 12)
    if text is None:
        return None
    if not text.isdigit() or not 1 <= int(text) <= MAX_ID:
        raise ExportError(f"{name} must be a {name} id, a whole number from 1", name)
    return int(text)


@dataclass(frozen=True)
class AuditFilters:
    """The audit search page's filters (app.review.audit_pages), so that its "Export CSV" link gives
    the rows the page shows: ``user`` the actor's user name; ``action`` a prefix (``export.``
    matches every export; a trailing ``*`` is allowed); ``session``: entries about that
    session; ``patient``: entries about the patient or any of their sessions; ``entity_id``:
    exact; ``since``/``until``: the entry's time, both inclusive."""

    user: str | None = None
    action: str | None = None
    entity_id: str | None = None
    session: int | None = None
    patient: int | None = None
    times: TimeRange = TimeRange()

    @classmethod
    def parse(
        cls,
        *,
        user: str | None = None,
        action: str | None = None,
        entity_id: str | None = None,
        session: str | None = None,
        patient: str | None = None,
        since: str | None = None,
        until: str | None = None,
    ) -> AuditFilters:
        prefix = text_filter("action", action, 65)
        if prefix is not None:
            prefix = prefix.removesuffix("*") or None
            if prefix is not None and len(prefix) > 64:
                raise ExportError("action must have at most 64 characters", "action")
        return cls(
            user=text_filter("user", user, 150),
            action=prefix,
            entity_id=text_filter("entity_id", entity_id, 255),
            session=id_filter("session", session),
            patient=id_filter("patient", patient),
            times=TimeRange.parse(since, until),
        )

    def as_dict(self) -> dict[str, str | int]:
        given = {
            "user": self.user,
            "action": self.action,
            "entity_id": self.entity_id,
            "session": self.session,
            "patient": self.patient,
        }
        return {**{k: v for k, v in given.items() if v is not None}, **self.times.as_dict()}


# --- CSV text --------------------------------------------------------------------------------


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return format_datetime(value)
    return str(value)


def _free_text(value: str | None) -> str:
    if not value:
        return ""
    return "'" + value if value.startswith(_FORMULA_START) else value


def csv_text(rows: Iterable[Sequence[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerows(rows)
    return buffer.getvalue()


def audit_row(row: Mapping[str, Any]) -> list[str]:
    """One audit entry as CSV cells, each made safe to open in a spreadsheet: some columns hold
    text the client chose, even before signing in (the browser string of a failed sign-in)."""
    return [_free_text(_cell(row[name])) for name in AUDIT_COLUMNS]


def vitals_row(row: Mapping[str, Any]) -> list[str]:
    """One vitals set (one version of one reading) as CSV cells, in ``VITALS_COLUMNS`` order."""
    values = json.loads(row["values_json"])
    step = row["step_position"]
    cells = [
        _cell(row["id"]),
        _cell(row["session_id"]),
        _cell(row["patient_id"]),
        _cell(row["reading_id"] or row["id"]),
        _cell(row["version"]),
        _cell(row["supersedes_id"]),
        _free_text(row["amendment_reason"]),
        _cell(row["recorded_at"]),
        _cell(row["recorded_by"]),
        _cell(row["recorded_by_username"]),
        _cell(row["session_status"]),
        _cell(step),
        "" if step is None else str(step + 1),
        _cell(row["baseline"]),
        _cell(row["within_limits"]),
    ]
    for name in MEASURED_FIELDS:
        entry = values.get(name)
        if not isinstance(entry, Mapping):
            cells.extend(("", "", ""))  # not recorded
            continue
        cells.extend(
            (
                _cell(entry.get("value")),
                _cell(entry.get("status")),
                _free_text(entry.get("reason")),
            )
        )
    symptoms = values.get("symptoms") or []
    cells.append(";".join(str(s) for s in symptoms))
    cells.append(_free_text(values.get("note")))
    cells.append(_cell(values.get("consciousness")))
    oxygen = values.get("supplemental_oxygen")
    cells.append("" if oxygen is None else str(bool(oxygen)).lower())
    cells.append(localtime.local(row["recorded_at"], "%Y-%m-%d %H:%M:%S %Z"))
    return cells


# --- JSON Lines ----------------------------------------------------------------------------


def audit_json_line(row: Mapping[str, Any]) -> str:
    """One audit entry as one line of JSON: every stored column under its own name, verbatim
    (times in the canonical spelling the hash covers), ``\\uXXXX`` escapes for anything beyond
    ASCII so that no character of the text can end the line early."""
    entry = {name: row[name] for name in AUDIT_COLUMNS}
    entry["occurred_at"] = format_datetime(entry["occurred_at"])
    return json.dumps(entry, ensure_ascii=True, separators=(",", ":"), allow_nan=False) + "\n"


@dataclass(frozen=True)
class ExportCheck:
    """What ``check_audit_jsonl`` found. ``gaps`` counts the places where the file skips
    entries (a filtered export); ``problem`` names the first bad line, None when intact."""

    entries: int
    first_seq: int | None
    last_seq: int | None
    last_hash: str | None
    gaps: int
    line: int | None = None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None

    @property
    def whole_chain(self) -> bool:
        """Every entry from the first one on, without a gap (an unfiltered export)."""
        return self.ok and self.first_seq == 1 and self.gaps == 0


def check_audit_jsonl(lines: Iterable[str]) -> ExportCheck:
    """Recompute the hash of every entry of an audit JSON Lines export and check that each
    entry that directly follows another links to its hash (the first entry of the log to the
    genesis value). Blank lines are skipped."""
    entries = gaps = 0
    first: dict[str, Any] | None = None
    last: dict[str, Any] | None = None

    def found(line: int | None = None, problem: str | None = None) -> ExportCheck:
        return ExportCheck(
            entries=entries,
            first_seq=None if first is None else first["seq"],
            last_seq=None if last is None else last["seq"],
            last_hash=None if last is None else last["hash"],
            gaps=gaps,
            line=line,
            problem=problem,
        )

    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            entry = json.loads(text)
        except ValueError:
            return found(number, "not a line of JSON")
        if not isinstance(entry, dict) or sorted(entry) != sorted(AUDIT_COLUMNS):
            return found(number, f"not an audit entry with the fields {', '.join(AUDIT_COLUMNS)}")
        seq = entry["seq"]
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
            return found(number, f"seq {seq!r} is not a whole number from 1")
        try:
            recomputed = entry_hash(entry)
        except ValueError as exc:
            return found(number, f"seq {seq}: contents cannot be hashed: {exc}")
        if recomputed != entry["hash"]:
            return found(number, f"seq {seq}: hash does not match its contents")
        if last is None:
            if seq == 1 and entry["prev_hash"] != GENESIS_HASH:
                return found(number, "seq 1: prev_hash is not the genesis value")
        elif seq <= last["seq"]:
            return found(number, f"seq {seq}: duplicate or out of order (follows {last['seq']})")
        elif seq > last["seq"] + 1:
            gaps += 1
        elif entry["prev_hash"] != last["hash"]:
            return found(number, f"seq {seq}: prev_hash does not link to seq {last['seq']}")
        first = first or entry
        last = entry
        entries += 1
    return found()


# --- queries ---------------------------------------------------------------------------------


def audit_query(filters: AuditFilters) -> Select[Any]:
    query = select(*(_audit.c[name] for name in AUDIT_COLUMNS))
    if filters.user is not None:
        query = query.where(_audit.c.actor_username == filters.user)
    if filters.action is not None:
        query = query.where(_audit.c.action.startswith(filters.action, autoescape=True))
    if filters.entity_id is not None:
        query = query.where(_audit.c.entity_id == filters.entity_id)
    if filters.session is not None:
        query = query.where(
            _audit.c.entity == "session", _audit.c.entity_id == str(filters.session)
        )
    if filters.patient is not None:
        sessions = select(cast(_session.c.id, String)).where(
            _session.c.patient_id == filters.patient
        )
        query = query.where(
            or_(
                and_(_audit.c.entity == "patient", _audit.c.entity_id == str(filters.patient)),
                and_(_audit.c.entity == "session", _audit.c.entity_id.in_(sessions)),
            )
        )
    return _in_range(query, _audit.c.occurred_at, filters.times)


def _in_range(query: Select[Any], column: Any, times: TimeRange) -> Select[Any]:
    if times.since is not None:
        query = query.where(column >= times.since)
    if times.until is not None:
        query = query.where(column <= times.until)
    return query


def vitals_query(times: TimeRange, session_id: int | None = None) -> Select[Any]:
    query = (
        select(
            _vitals,
            _session.c.patient_id,
            _user.c.username.label("recorded_by_username"),
        )
        .join(_session, _session.c.id == _vitals.c.session_id)
        .outerjoin(_user, _user.c.id == _vitals.c.recorded_by)
    )
    if session_id is not None:
        query = query.where(_vitals.c.session_id == session_id)
    return _in_range(query, _vitals.c.recorded_at, times)


# --- streaming -------------------------------------------------------------------------------


async def _read(
    sessionmaker: async_sessionmaker[AsyncSession], work: Callable[[AsyncSession], Any]
) -> Any:
    """One short read transaction (deferred on SQLite: it never takes the write lock)."""
    async with sessionmaker() as db:
        await db.connection(execution_options=DEFERRED_BEGIN)
        try:
            return await work(db)
        finally:
            await db.rollback()


async def _batches(
    sessionmaker: async_sessionmaker[AsyncSession],
    query: Select[Any],
    key: Any,
    upper: Callable[[AsyncSession], Any],
    batch_size: int,
) -> AsyncIterator[list[Mapping[str, Any]]]:
    """The rows of ``query`` in ``key`` order, ``batch_size`` at a time, up to the bound read at
    the start; each batch in its own read transaction, so a slow reader holds no connection."""
    bound = await _read(sessionmaker, upper)
    if bound is None:
        return
    query = query.where(key <= bound).order_by(key).limit(batch_size)
    last: int | None = None
    while True:
        page = query if last is None else query.where(key > last)

        async def fetch(db: AsyncSession, page: Select[Any] = page) -> list[Mapping[str, Any]]:
            return list((await db.execute(page)).mappings().all())

        rows = await _read(sessionmaker, fetch)
        if not rows:
            return
        yield rows
        if len(rows) < batch_size:
            return
        last = rows[-1][key.name]


async def _chain_head(db: AsyncSession) -> int | None:
    return await db.scalar(select(_head.c.last_seq).where(_head.c.id == HEAD_ID))


async def stream_audit_csv(
    sessionmaker: async_sessionmaker[AsyncSession],
    filters: AuditFilters,
    *,
    batch_size: int = BATCH_SIZE,
) -> AsyncIterator[bytes]:
    """The header, then the matching audit entries in ``seq`` order up to the chain head."""
    yield csv_text([AUDIT_COLUMNS]).encode()
    batches = _batches(sessionmaker, audit_query(filters), _audit.c.seq, _chain_head, batch_size)
    async for rows in batches:
        yield csv_text(audit_row(row) for row in rows).encode()


async def stream_audit_jsonl(
    sessionmaker: async_sessionmaker[AsyncSession],
    filters: AuditFilters,
    *,
    batch_size: int = BATCH_SIZE,
) -> AsyncIterator[bytes]:
    """The matching audit entries in ``seq`` order up to the chain head, one JSON line each."""
    batches = _batches(sessionmaker, audit_query(filters), _audit.c.seq, _chain_head, batch_size)
    async for rows in batches:
        yield "".join(audit_json_line(row) for row in rows).encode()


async def stream_vitals_csv(
    sessionmaker: async_sessionmaker[AsyncSession],
    times: TimeRange,
    *,
    session_id: int | None = None,
    batch_size: int = BATCH_SIZE,
) -> AsyncIterator[bytes]:
    """The header, then every version of every matching vitals set in ``id`` order."""

    async def newest(db: AsyncSession) -> int | None:
        query = select(_vitals.c.id).order_by(_vitals.c.id.desc()).limit(1)
        if session_id is not None:
            query = query.where(_vitals.c.session_id == session_id)
        return await db.scalar(query)

    yield csv_text([VITALS_COLUMNS]).encode()
    batches = _batches(
        sessionmaker, vitals_query(times, session_id), _vitals.c.id, newest, batch_size
    )
    async for rows in batches:
        yield csv_text(vitals_row(row) for row in rows).encode()
