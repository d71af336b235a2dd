"""Backing a database up to one file and restoring it: ``stepwise db backup`` and ``db restore``.

SQLite is copied with sqlite3's online backup API, in one step: one read transaction, so the
copy is consistent while the server keeps writing (the file's bytes are never copied: the WAL
could be mid-write). PostgreSQL is dumped with ``pg_dump --format=custom`` and restored with
``pg_restore``. Beside each backup ``PATH.json`` records what it is (backend, schema revision,
time, size, SHA-256); a restore trusts nothing the record does not vouch for.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, inspect, select, table
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from app.audit import service as audit_service
from app.audit.chain import ChainReport
from app.db import DEFERRED_BEGIN, Backend, backend_name, create_engine
from app.schema import current_revision, head_revision, is_known_revision

RECORD_FORMAT = "stepwise-backup"
RECORD_VERSION = 1
SQLITE_BUSY_TIMEOUT_S = 5.0
TOOL_TIMEOUT_S = 3600
# What a restore would throw away: a database holding any of these rows is replaced only
# when the operator says so (--yes). Table -> (one, several).
GUARDED_TABLES = {
    "app_user": ("user", "users"),
    "patient": ("patient", "patients"),
    "desensitization_session": ("session", "sessions"),
}


class BackupError(Exception):
    """A backup or restore refused or failed; the message says why, in one line."""


@dataclass(frozen=True)
class BackupRecord:
    """The sidecar ``PATH.json``: what the backup file is, and its checksum."""

    backend: Backend
    revision: str
    created_at: str
    size_bytes: int
    sha256: str

    def to_json(self) -> str:
        fields = {"format": RECORD_FORMAT, "version": RECORD_VERSION, **asdict(self)}
        return json.dumps(fields, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str, where: Path) -> BackupRecord:
        def bad(why: str) -> BackupError:
            return BackupError(f"{where} is not a Stepwise backup record: {why}")

        try:
            fields = json.loads(text)
        except ValueError:
            raise bad("not JSON") from None
        if not isinstance(fields, dict) or fields.get("format") != RECORD_FORMAT:
            raise bad(f'no "format": "{RECORD_FORMAT}"')
        if fields.get("version") != RECORD_VERSION:
            raise bad(f"version {fields.get('version')!r}, this version reads {RECORD_VERSION}")
        expected = {"backend": str, "revision": str, "created_at": str, "sha256": str}
        for name, kind in expected.items():
            if not isinstance(fields.get(name), kind) or not fields[name]:
                raise bad(f'"{name}" is missing or empty')
        size = fields.get("size_bytes")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise bad('"size_bytes" is not a byte count')
        if fields["backend"] not in ("sqlite", "postgresql"):
            raise bad(f'unknown backend "{fields["backend"]}"')
        return cls(
            fields["backend"], fields["revision"], fields["created_at"], size, fields["sha256"]
        )


@dataclass(frozen=True)
class Restored:
    """What was restored, and the audit chain walked afterwards."""

    record: BackupRecord
    audit: ChainReport


def record_path(path: Path) -> Path:
    """The sidecar of the backup at ``path``: ``PATH.json``."""
    return path.with_name(path.name + ".json")


# --- backing up ------------------------------------------------------------------------------


def back_up(database_url: str, path: Path) -> BackupRecord:
    """Write a verified backup of the database to ``path`` and its record beside it.

    Neither may exist yet; on any failure both are removed again, so nothing is left behind.
    """
    backend = backend_name(database_url)
    source = _sqlite_file(database_url, must_exist=True) if backend == "sqlite" else None
    if backend == "postgresql":
        _require_tool("pg_dump")
        _require_tool("pg_restore")
    record = record_path(path)
    if not path.parent.is_dir():
        raise BackupError(f"directory {path.parent} does not exist")
    reserved: list[Path] = []
    try:
        # Created exclusively, readable by the owner only (a backup holds patient data): a file
        # already there is never overwritten, even by a second backup started at the same time.
        for target in (path, record):
            _create_exclusively(target)
            reserved.append(target)
        if source is not None:
            revision = _sqlite_backup(source, path)
        else:
            revision = _postgres_backup(database_url, path)
        size, digest = _size_and_sha256(path)
        made = BackupRecord(
            backend=backend,
            revision=revision,
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            size_bytes=size,
            sha256=digest,
        )
        record.write_text(made.to_json(), encoding="utf-8")
        return made
    except BaseException:
        for target in reserved:
            target.unlink(missing_ok=True)
        raise


def _create_exclusively(target: Path) -> None:
    try:
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        raise BackupError(f"{target} already exists; a backup never overwrites a file") from None


def _sqlite_file(database_url: str, *, must_exist: bool) -> Path:
    database = make_url(database_url).database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        raise BackupError("only a SQLite database in a file (sqlite+aiosqlite:///PATH) is handled")
    path = Path(database)
    if must_exist and not path.is_file():
        raise BackupError(f"database file {path} does not exist")
    return path


def _sqlite_backup(source: Path, path: Path) -> str:
    """Copy ``source`` into ``path`` in one backup step; check the copy; return its revision."""
    src = sqlite3.connect(source, timeout=SQLITE_BUSY_TIMEOUT_S)
    dst = sqlite3.connect(path)
    try:
        # pages=-1: the whole database in one step, under one read transaction of the source.
        src.backup(dst, pages=-1)
        # The copy stands alone: no -wal file beside it for a restore to miss.
        dst.execute("PRAGMA journal_mode=DELETE")
    except sqlite3.Error as exc:
        raise BackupError(f"SQLite backup failed: {exc}") from None
    finally:
        dst.close()
        src.close()
    return _checked_sqlite_copy(path)


def _checked_sqlite_copy(path: Path) -> str:
    """The revision of the SQLite file at ``path``, after ``PRAGMA integrity_check`` passes."""
    copy = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        problems = [row[0] for row in copy.execute("PRAGMA integrity_check")]
        if problems != ["ok"]:
            raise BackupError(f"the copy in {path} fails its integrity check: {problems[0]}")
        versions = sorted(row[0] for row in copy.execute("SELECT version_num FROM alembic_version"))
    except sqlite3.Error as exc:
        raise BackupError(f"the copy in {path} cannot be read back: {exc}") from None
    finally:
        copy.close()
    if not versions:
        raise BackupError("the database has no schema revision; run `stepwise db upgrade` first")
    return ",".join(versions)


def _postgres_backup(database_url: str, path: Path) -> str:
    """``pg_dump`` into ``path``, then ``pg_restore --list`` it; return the schema revision."""
    before = asyncio.run(_facts(database_url)).revision
    if before is None:
        raise BackupError("the database has no schema revision; run `stepwise db upgrade` first")
    conninfo, env = libpq_connection(database_url)
    _run_tool("pg_dump", "--format=custom", "--no-password", f"--file={path}", conninfo, env=env)
    after = asyncio.run(_facts(database_url)).revision
    if after != before:
        raise BackupError(f"the schema moved from {before} to {after} during the backup; try again")
    listing = _run_tool("pg_restore", "--list", str(path), env=env)
    if not any("TABLE DATA public alembic_version" in line for line in listing.splitlines()):
        raise BackupError(f"the dump in {path} has no alembic_version data")
    return before


def libpq_connection(database_url: str) -> tuple[str, dict[str, str]]:
    """``postgresql+asyncpg://user:pw@host:port/db`` as a libpq keyword/value string, and the
    environment to run a client tool in: the password travels in PGPASSWORD, never on a
    command line that any user of the machine may read."""
    url = make_url(database_url)
    options = dict(url.query)
    keywords: dict[str, object] = {
        "host": url.host,
        "port": url.port,
        "user": url.username,
        "dbname": url.database,
    }
    if "ssl" in options:
        keywords["sslmode"] = options.pop("ssl")
    if "host" in options and not url.host:  # a socket directory: ?host=/var/run/postgresql
        keywords["host"] = options.pop("host")
    if options:
        names = ", ".join(sorted(options))
        raise BackupError(f"the database URL's options ({names}) have no pg_dump equivalent")
    if any(isinstance(value, tuple) for value in keywords.values()):
        raise BackupError("the database URL repeats an option")
    if not keywords["dbname"]:
        raise BackupError("the database URL names no database")
    conninfo = " ".join(f"{key}='{_libpq_quote(v)}'" for key, v in keywords.items() if v)
    env = dict(os.environ)
    if url.password is not None:
        env["PGPASSWORD"] = url.password
    return conninfo, env


def _libpq_quote(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace("'", "\\'")


def _require_tool(tool: str) -> str:
    program = shutil.which(tool)
    if program is None:
        raise BackupError(
            f"{tool} not found on PATH; install the PostgreSQL client tools of the server's "
            "major version (Debian: postgresql-client)"
        )
    return program


def _run_tool(tool: str, *arguments: str, env: dict[str, str]) -> str:
    """Run a PostgreSQL client tool; its standard output, or its first error line as a refusal."""
    program = _require_tool(tool)
    try:
        done = subprocess.run(
            [program, *arguments],
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=TOOL_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BackupError(f"{tool} failed: {exc}") from None
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        reason = lines[0].removeprefix(f"{tool}: ").removeprefix("error: ") if lines else ""
        raise BackupError(f"{tool} failed (exit {done.returncode}): {reason}")
    return done.stdout


def _size_and_sha256(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as stream:
        while block := stream.read(1 << 20):
            digest.update(block)
            size += len(block)
    return size, digest.hexdigest()


# --- what a database holds -------------------------------------------------------------------


@dataclass(frozen=True)
class DatabaseFacts:
    revision: str | None
    counts: dict[str, int]  # guarded table -> rows, for the tables that exist

    def holdings(self) -> str:
        """e.g. "3 users, 1 patient and 2 sessions"; empty when it holds none of them."""
        parts = [
            f"{n} {one if n == 1 else several}"
            for name, (one, several) in GUARDED_TABLES.items()
            if (n := self.counts.get(name, 0))
        ]
        return ", ".join(parts[:-1]) + f" and {parts[-1]}" if len(parts) > 1 else "".join(parts)


async def _facts(database_url: str) -> DatabaseFacts:
    # A deferred BEGIN on SQLite: reading must not take the write lock from a running server.
    engine = create_engine(database_url, poolclass=NullPool).execution_options(**DEFERRED_BEGIN)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(_read_facts)
    except SQLAlchemyError as exc:
        # The driver's first line, without SQLAlchemy's "(module.Class)" prefix.
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        reason = re.sub(r"^\([\w.]+\)\s*", "", first_line)
        raise BackupError(f"cannot read the database: {reason}") from None
    finally:
        await engine.dispose()


def _read_facts(connection: Connection) -> DatabaseFacts:
    tables = set(inspect(connection).get_table_names())
    counts = {
        name: connection.execute(select(func.count()).select_from(table(name))).scalar_one()
        for name in GUARDED_TABLES
        if name in tables
    }
    revision = current_revision(connection) if "alembic_version" in tables else None
    return DatabaseFacts(revision, counts)


# --- restoring -------------------------------------------------------------------------------


def read_record(path: Path) -> BackupRecord:
    """The record of the backup at ``path``, once the file is checked against it."""
    record = record_path(path)
    if not path.is_file():
        raise BackupError(f"backup file {path} does not exist")
    try:
        text = record.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BackupError(f"{record} is missing; `stepwise db backup` writes it") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BackupError(f"cannot read {record}: {exc}") from None
    made = BackupRecord.from_json(text, record)
    size, digest = _size_and_sha256(path)
    if (size, digest) != (made.size_bytes, made.sha256):
        raise BackupError(
            f"{path} does not match its record {record} (SHA-256 {digest[:12]}…, recorded "
            f"{made.sha256[:12]}…): the file is damaged or not the backup recorded"
        )
    if not is_known_revision(made.revision):
        raise BackupError(
            f"the backup is at schema revision {made.revision}, newer than this version of "
            f"Stepwise (head {head_revision()}); restore it with the version that made it"
        )
    return made


def restore(database_url: str, path: Path, *, replace_data: bool) -> Restored:
    """Replace the database's contents with the backup at ``path``; check the audit chain.

    Refused, changing nothing, when the backup does not match its record, is newer than this
    code, is of another backend, or when the database holds data and ``replace_data`` is false.
    """
    backend = backend_name(database_url)
    made = read_record(path)
    if made.backend != backend:
        raise BackupError(f"{path} is a {made.backend} backup; the database is {backend}")
    if backend == "sqlite":
        target = _sqlite_file(database_url, must_exist=False)
        if not target.parent.is_dir():
            raise BackupError(f"directory {target.parent} does not exist")
        facts = asyncio.run(_facts(database_url)) if target.is_file() else DatabaseFacts(None, {})
    else:
        _require_tool("pg_restore")
        facts = asyncio.run(_facts(database_url))
        # pg_restore --clean drops only the objects in the dump: tables of another revision
        # would stay behind and break the next migration.
        if facts.revision not in (None, made.revision):
            raise BackupError(
                f"the database is at schema revision {facts.revision}, the backup at "
                f"{made.revision}; restore into a new empty database (createdb) instead"
            )
    held = facts.holdings()
    if held and not replace_data:
        raise BackupError(
            f"the database holds {held}; restoring replaces everything in it with the backup "
            f"made {made.created_at}: add --yes to go ahead"
        )
    if backend == "sqlite":
        _sqlite_restore(path, target)
    else:
        conninfo, env = libpq_connection(database_url)
        _run_tool(
            "pg_restore",
            "--clean",
            "--if-exists",
            "--no-owner",
            # All or nothing: a failure half-way leaves the database as it was.
            "--single-transaction",
            "--exit-on-error",
            "--no-password",
            f"--dbname={conninfo}",
            str(path),
            env=env,
        )
    return Restored(made, asyncio.run(audit_service.verify_database(database_url)))


def _sqlite_restore(path: Path, target: Path) -> None:
    src = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    dst = sqlite3.connect(target, timeout=SQLITE_BUSY_TIMEOUT_S)
    try:
        # One step, in one write transaction of the target: it is replaced whole or not at all.
        src.backup(dst, pages=-1)
        dst.execute("PRAGMA journal_mode=WAL")  # as the application runs it
    except sqlite3.Error as exc:
        raise BackupError(f"SQLite restore failed: {exc}") from None
    finally:
        dst.close()
        src.close()
