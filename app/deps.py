"""What a route uses of the running application, as typed dependencies.

app.main builds these objects once (the settings with the app, the rest at start-up) and keeps
them on `app.state`; a route declares what it uses (`db: DB`, `clock: Clock`) and only this
module reads `app.state`, with the two packages whose routes alone use something: the hub and
the live renderer (app.live.dependencies), a session's row (app.session.route_support). Each
reader takes an HTTPConnection, so websocket routes and the page templates can use them too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.requests import HTTPConnection

from app import clock as clocks
from app import config, doorbell
from app.clock_sync import SteadyClock
from app.monitoring import ServerMetrics


async def get_db(connection: HTTPConnection) -> AsyncIterator[AsyncSession]:
    """The request's database session; the sign-in check and the route share it."""
    async with connection.app.state.sessionmaker() as db:
        yield db


def sessionmaker_of(connection: HTTPConnection) -> async_sessionmaker[AsyncSession]:
    return connection.app.state.sessionmaker


def engine_of(connection: HTTPConnection) -> AsyncEngine:
    return connection.app.state.engine


def settings_of(connection: HTTPConnection) -> config.Settings:
    return connection.app.state.settings


def clock_of(connection: HTTPConnection) -> clocks.Clock:
    return connection.app.state.clock


def server_clock_if_started(connection: HTTPConnection) -> clocks.Clock | None:
    """The clock, or None before start-up has made it (a page rendered without a lifespan)."""
    return getattr(connection.app.state, "clock", None)


def person_clock_of(connection: HTTPConnection) -> clocks.Clock:
    return connection.app.state.person_clock


def wall_of(connection: HTTPConnection) -> SteadyClock | None:
    return getattr(connection.app.state, "wall", None)


def listening_of(connection: HTTPConnection) -> bool | None:
    """Whether this process hears the other processes' commits (PostgreSQL); None: there is
    nothing to hear (one process on SQLite)."""
    listener = getattr(connection.app.state, "pg_listener", None)
    return None if listener is None else listener.listening.is_set()


def head_revision_of(connection: HTTPConnection) -> str:
    return connection.app.state.head_revision


def doorbell_of(connection: HTTPConnection) -> doorbell.Doorbell:
    return connection.app.state.doorbell


def metrics_of(connection: HTTPConnection) -> ServerMetrics:
    return connection.app.state.metrics


DB = Annotated[AsyncSession, Depends(get_db)]
Sessionmaker = Annotated[async_sessionmaker[AsyncSession], Depends(sessionmaker_of)]
Engine = Annotated[AsyncEngine, Depends(engine_of)]
Settings = Annotated[config.Settings, Depends(settings_of)]
Clock = Annotated[clocks.Clock, Depends(clock_of)]
# Sign-in timeouts and other durations a person lives through: real minutes on a fast clock.
PersonClock = Annotated[clocks.Clock, Depends(person_clock_of)]
Wall = Annotated[SteadyClock | None, Depends(wall_of)]
HeadRevision = Annotated[str, Depends(head_revision_of)]
Listening = Annotated[bool | None, Depends(listening_of)]
Doorbell = Annotated[doorbell.Doorbell, Depends(doorbell_of)]
Metrics = Annotated[ServerMetrics, Depends(metrics_of)]
