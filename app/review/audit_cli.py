"""`stepwise audit …`: checking the audit log, or an export of it, from the command line."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from app.audit import service as audit_service
from app.config import get_settings
from app.db import backend_name
from app.review.exports import check_audit_jsonl

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
        report = asyncio.run(audit_service.verify_database(url))
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


@audit_cli.command("verify-export")
def verify_export_command(
    path: Annotated[
        Path,
        typer.Argument(
            help="An audit export in JSON Lines (/audit/export.jsonl); - reads standard input.",
            metavar="FILE",
            show_default=False,
        ),
    ],
) -> None:
    """Recompute the hashes of an exported audit log from the file alone, and check that every
    entry that follows another links to it. No database is needed."""
    try:
        if str(path) == "-":
            check = check_audit_jsonl(sys.stdin)
        else:
            with path.open(encoding="utf-8") as lines:
                check = check_audit_jsonl(lines)
    except (OSError, UnicodeDecodeError) as exc:
        raise _fail(f"cannot read {path}: {exc}") from None
    if not check.ok:
        raise _fail(f"audit export broken at line {check.line}: {check.problem}")
    if check.entries == 0:
        typer.echo("audit export intact: no entries")
        return
    span = f"{check.entries} entries, seq {check.first_seq} to {check.last_seq}"
    if check.whole_chain:
        scope = "the whole chain from its first entry"
    elif check.gaps == 0:
        scope = "without a gap (entries before it are not in the file)"
    else:
        scope = (
            f"{check.gaps} gap(s) where the export was filtered; "
            "links are checked between consecutive entries"
        )
    typer.echo(f"audit export intact: {span}, {scope}; last hash {check.last_hash}")
