"""`stepwise user …`: accounts from the command line (first admin, scripted setups, demo seed)."""

from __future__ import annotations

import asyncio
import getpass
import sys
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import Actor
from app.auth import login_failures, service
from app.clock import clock_from_settings
from app.config import Settings, get_settings
from app.db import create_engine, session_factory
from app.permissions import ROLES

user_cli = typer.Typer(help="Manage user accounts.", no_args_is_help=True)
T = TypeVar("T")

DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url", help="Database (default: STEPWISE_DATABASE_URL).", show_default=False
    ),
]


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {' '.join(message.split())}", err=True)
    return typer.Exit(code=1)


def _cli_actor() -> Actor:
    try:
        who = getpass.getuser()
    except (KeyError, OSError):
        who = "unknown"
    return Actor(user_id=None, username=f"cli:{who}", role="system")


def _run(database_url: str | None, work: Callable[[AsyncSession, Settings], Awaitable[T]]) -> T:
    settings = get_settings()
    if database_url:
        settings = settings.model_copy(update={"database_url": database_url})

    async def main() -> T:
        engine = create_engine(settings.database_url)
        try:
            async with session_factory(engine)() as db:
                return await work(db, settings)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(main())
    except service.AccountError as error:
        raise _fail(error.message) from None
    except (SQLAlchemyError, OSError) as error:
        first_line = (str(error).strip().splitlines() or [""])[0]
        raise _fail(f"database error: {type(error).__name__}: {first_line}") from None


def _read_password() -> str:
    if sys.stdin.isatty():
        return typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    line = sys.stdin.readline()
    if not line:
        raise _fail("no password given on standard input")
    return line.rstrip("\r\n")


@user_cli.command("add")
def add(
    username: Annotated[str, typer.Argument(help="Lower-case user name.")],
    role: Annotated[str, typer.Option("--role", help=f"One of: {', '.join(ROLES)}.")],
    display_name: Annotated[str | None, typer.Option("--display-name", help="Full name.")] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Create an account. The password is asked for (twice) or read from standard input."""
    if role not in ROLES:
        raise _fail(f"unknown role {role!r}: use one of {', '.join(ROLES)}")
    password = _read_password()

    async def work(db: AsyncSession, settings: Settings) -> str:
        user = await service.create_user(
            db,
            clock_from_settings(settings),
            actor=_cli_actor(),
            username=username,
            role=role,
            password=password,
            display_name=display_name,
        )
        return f"created {user.username} ({user.role})"

    typer.echo(_run(database_url, work))


def _set_disabled(
    username: str, disabled: bool, reason: str | None, database_url: str | None
) -> str:
    async def work(db: AsyncSession, settings: Settings) -> str:
        user = await service.set_disabled(
            db,
            clock_from_settings(settings),
            actor=_cli_actor(),
            username=username,
            disabled=disabled,
            reason=reason,
        )
        if disabled:
            return f"disabled {user.username}; their sessions have ended"
        return f"enabled {user.username}"

    return _run(database_url, work)


@user_cli.command("disable")
def disable(
    username: Annotated[str, typer.Argument(help="User name.")],
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why (kept in the audit log).")
    ] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Disable an account; its open sessions end at once."""
    typer.echo(_set_disabled(username, True, reason, database_url))


@user_cli.command("enable")
def enable(
    username: Annotated[str, typer.Argument(help="User name.")],
    database_url: DatabaseUrl = None,
) -> None:
    """Enable a disabled account."""
    typer.echo(_set_disabled(username, False, None, database_url))


@user_cli.command("unlock")
def unlock(
    username: Annotated[str, typer.Argument(help="User name.")],
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why (required; kept in the audit log).")
    ] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Forget the failed sign-ins of a user name from every address: it may sign in at once."""
    if not reason or not reason.strip():
        raise _fail(f"give a reason to unlock {username} with --reason")

    async def work(db: AsyncSession, settings: Settings) -> str:
        unlocked = await login_failures.unlock(
            db,
            clock_from_settings(settings),
            settings,
            actor=_cli_actor(),
            username=username,
            reason=reason,
        )
        return (
            f"unlocked {unlocked.username}: {unlocked.failures_cleared} failed sign-in(s) "
            f"forgotten, {unlocked.throttles_ended} throttle(s) ended"
        )

    typer.echo(_run(database_url, work))


@user_cli.command("seed-demo")
def seed_demo(database_url: DatabaseUrl = None) -> None:
    """On an empty database, create one demo account per role and print the demo logins."""

    async def work(db: AsyncSession, settings: Settings) -> list[service.DemoLogin]:
        return await service.seed_demo_users(db, clock_from_settings(settings), settings)

    logins = _run(database_url, work)
    if not logins:
        typer.echo("no demo logins (this database has its own accounts)")
        return
    typer.echo("Demo logins (development only):")
    for login in logins:
        typer.echo(f"  {login.role:<11} {login.username:<11} password: {login.password}")
