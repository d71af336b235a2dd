"""The ``stepwise`` command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from app.config import Settings, get_settings

app_cli = typer.Typer(
    name="stepwise",
    help="Stepwise: real-time bedside dashboard for rapid drug desensitization.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _database_url_option(what: str) -> Any:
    """--database-url of the `db` commands: the database to `what`."""
    return typer.Option(
        "--database-url",
        help=f"Database to {what} (default: STEPWISE_DATABASE_URL).",
        show_default=False,
    )


db_cli = typer.Typer(help="Database schema management.", no_args_is_help=True)
app_cli.add_typer(db_cli, name="db")


def _fail(message: str) -> typer.Exit:
    """Print a one-line error on stderr; the caller raises the returned Exit."""
    typer.echo(f"error: {' '.join(message.split())}", err=True)
    return typer.Exit(code=1)


def _settings() -> Settings:
    try:
        return get_settings()
    except ValidationError as exc:
        reasons = "; ".join(
            f"{'.'.join(str(part) for part in err['loc']) or 'settings'}: {err['msg']}"
            for err in exc.errors()
        )
        raise _fail(f"invalid configuration: {reasons}") from None


@db_cli.command("upgrade")
def db_upgrade(
    database_url: Annotated[str | None, _database_url_option("upgrade")] = None,
    revision: Annotated[str, typer.Option(help="Target revision.")] = "head",
) -> None:
    """Apply the schema migrations (creates the database file for SQLite)."""
    from app import schema

    url = database_url or _settings().database_url
    try:
        reached = schema.upgrade(url, revision)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    except (SQLAlchemyError, OSError) as exc:
        # Driver messages can be long and may echo connection details; keep the first line.
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise _fail(f"database upgrade failed: {type(exc).__name__}: {first_line}") from None
    typer.echo(f"database at revision {reached or '(base)'}")


@db_cli.command("backup")
def db_backup(
    path: Annotated[
        Path,
        typer.Argument(
            help="Backup file to create (never overwritten).", metavar="PATH", show_default=False
        ),
    ],
    database_url: Annotated[str | None, _database_url_option("back up")] = None,
) -> None:
    """Back the database up to PATH while the server runs, check the copy, and record what it
    is (backend, schema revision, time, SHA-256) in PATH.json. SQLite: a consistent online copy;
    PostgreSQL: pg_dump --format=custom."""
    from app import backup

    url = database_url or _settings().database_url
    try:
        made = backup.back_up(url, path)
    except (backup.BackupError, ValueError, OSError) as exc:
        raise _fail(str(exc)) from None
    typer.echo(
        f"backed up {made.backend} database to {path}: {made.size_bytes:,} bytes, "
        f"revision {made.revision}, record in {backup.record_path(path)}"
    )


@db_cli.command("restore")
def db_restore(
    path: Annotated[
        Path,
        typer.Argument(
            help="Backup file made by `stepwise db backup`.", metavar="PATH", show_default=False
        ),
    ],
    database_url: Annotated[str | None, _database_url_option("restore into")] = None,
    yes: Annotated[
        bool,
        typer.Option("--yes", help="Replace a database that holds users, patients or sessions."),
    ] = False,
) -> None:
    """Replace the database's contents with the backup at PATH, then check the audit chain.
    Stop every `stepwise serve` first (on SQLite the file is rewritten beneath it). Refused
    when the backup does not match PATH.json or is newer than this version, and, without
    --yes, when the database holds users, patients or sessions."""
    from app import backup, schema

    url = database_url or _settings().database_url
    try:
        restored = backup.restore(url, path, replace_data=yes)
    except (backup.BackupError, ValueError, OSError) as exc:
        raise _fail(str(exc)) from None
    made, audit = restored.record, restored.audit
    typer.echo(f"restored {path} (made {made.created_at}, revision {made.revision})")
    if not audit.ok:
        raise _fail(f"the restored audit chain is broken: {audit.reason}")
    typer.echo(f"audit chain intact: {audit.entries} entries, last seq {audit.last_seq}")
    if made.revision != schema.head_revision():
        typer.echo("the schema is behind this version's: run `stepwise db upgrade` before serving")


@app_cli.command()
def serve(
    host: Annotated[
        str | None, typer.Option(help="Interface to bind (default: STEPWISE_HOST).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: STEPWISE_PORT).")] = None,
    reload: Annotated[bool, typer.Option(help="Restart on code changes (development).")] = False,
) -> None:
    """Serve the web application with uvicorn."""
    import uvicorn

    from app.logs import log_config

    settings = _settings()  # a bad configuration stops here, with a readable message
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        reload=reload,
        log_level=settings.log_level,
        log_config=log_config(settings.log_level, settings.log_format),
        timeout_graceful_shutdown=settings.shutdown_grace_seconds,
        # Screens get the same fragment at once: compressing it per socket costs the server
        # more time than the bytes cost a ward network.
        ws_per_message_deflate=False,
    )


# ---------------------------------------------------------------------------------------------
# Protocol calculator: `stepwise protocol ...` lives in app/protocol/cli.py.
# ---------------------------------------------------------------------------------------------
from app.protocol.cli import protocol_cli  # noqa: E402

app_cli.add_typer(protocol_cli, name="protocol")
from app.review.audit_cli import audit_cli  # noqa: E402

app_cli.add_typer(audit_cli, name="audit")

from app.auth.cli import user_cli  # noqa: E402

app_cli.add_typer(user_cli, name="user")

demo_cli = typer.Typer(help="The training ward of `make demo`.", no_args_is_help=True)
app_cli.add_typer(demo_cli, name="demo")


@demo_cli.command("seed")
def demo_seed() -> None:
    """Seed an empty database (STEPWISE_DATABASE_URL, demo logins already made) with patients
    and sessions in four states, for a server on the training clock (STEPWISE_CLOCK_SPEED)."""
    import asyncio

    from app.demo import DemoRefused, seed_training_ward

    settings = _settings()
    try:
        seeded = asyncio.run(seed_training_ward(settings, settings.clock_speed))
    except DemoRefused as refused:
        raise _fail(str(refused)) from None
    base = f"http://{settings.host}:{settings.port}"
    typer.echo(f"Training ward seeded; the clock runs {settings.clock_speed:g}x (a 15-minute step")
    typer.echo(f"takes {15 * 60 / settings.clock_speed:.0f} s). Sessions:")
    for s in seeded:
        typer.echo(f"  {base}/sessions/{s.session_id:<4} {s.patient:<20} {s.state}")
    typer.echo(f"Open {base}/board first, signed in as physician (password physician-demo-pass).")


def main() -> None:
    """Entry point. Usage errors (unknown option, missing argument, bad choice) are reported as one
    line, like every other refusal, so scripts and people read the same short reason."""
    command = typer.main.get_command(app_cli)
    try:
        outcome = command.main(prog_name="stepwise", standalone_mode=False)
    except typer.TyperException as error:  # typer's (vendored) click usage errors
        message = error.format_message()
        if type(error).__name__ == "NoArgsIsHelpError":  # a bare group: show its help
            typer.echo(message)
            raise SystemExit(2) from None
        typer.echo(f"error: {' '.join(message.split())}", err=True)
        raise SystemExit(getattr(error, "exit_code", 2)) from None
    except typer.Abort:
        typer.echo("error: aborted", err=True)
        raise SystemExit(1) from None
    raise SystemExit(outcome if isinstance(outcome, int) else 0)


if __name__ == "__main__":
    main()
