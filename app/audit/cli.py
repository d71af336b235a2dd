"""`stepwise audit …`: checking the audit log from the command line."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from app.audit import service as audit_service
from app.audit.chain import ChainReport
from app.config import get_settings
from app.db import DEFERRED_BEGIN, backend_name, create_engine, session_factory

audit_cli = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)


def _fail(message: str) -> typer.Exit:
    """Print a one-line error on stderr; the caller raises the returned Exit."""
    typer.echo(f"error: {' '.join(message.split())}", err=True)
    return typer.Exit(code=1)


def _configured_url() -> str:
    try:
        return get_settings().database_url
    except ValidationError as exc:
        reasons = "; ".join(
            f"{'.'.join(str(part) for part in err['loc']) or 'settings'}: {err['msg']}"
            for err in exc.errors()
        )
        raise _fail(f"invalid configuration: {reasons}") from None


async def _verify(url: str) -> ChainReport:
    engine = create_engine(url, poolclass=NullPool)
    # A read-only walk: on SQLite a deferred BEGIN leaves writers alone while the WAL snapshot
    # keeps the walk consistent; on PostgreSQL REPEATABLE READ gives the same snapshot.
    if backend_name(url) == "sqlite":
        reader = engine.execution_options(**DEFERRED_BEGIN)
    else:
        reader = engine.execution_options(isolation_level="REPEATABLE READ")
    try:
        async with session_factory(reader)() as session:
            report = await audit_service.verify(session)
            await session.rollback()
            return report
    finally:
        await engine.dispose()


@audit_cli.command("verify")
def verify_command(
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="Database to check (default: STEPWISE_DATABASE_URL).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Recompute the hash chain of the audit log and name the first broken entry."""
    url = database_url or _configured_url()
    try:
        if backend_name(url) == "sqlite":
            # Opening a missing file would create an empty database; say what is wrong instead.
            database = make_url(url).database or ""
            is_file = database not in ("", ":memory:") and not database.startswith("file:")
            if is_file and not Path(database).is_file():
                raise _fail(f"database file {database} does not exist")
        report = asyncio.run(_verify(url))
    except ValueError as exc:
        raise _fail(str(exc)) from None
    except (SQLAlchemyError, OSError) as exc:
        # Driver messages can be long and may echo connection details; keep the first line.
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        if "audit_chain_head" in first_line:  # "no such table" / "relation … does not exist"
            raise _fail(
                "the database has no audit log; run `stepwise db upgrade` on it first"
            ) from None
        raise _fail(f"audit verify failed: {type(exc).__name__}: {first_line}") from None
    if not report.ok:
        if report.first_bad_seq is not None:
            raise _fail(f"audit chain broken at seq {report.first_bad_seq}: {report.problem}")
        raise _fail(f"audit chain broken: {report.reason}")
    typer.echo(f"audit chain intact: {report.entries} entries, last seq {report.last_seq}")
