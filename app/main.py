"""Application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from app import __version__, health, home
from app.clock import clock_from_settings
from app.config import Settings, get_settings
from app.db import backend_name, create_engine, session_factory
from app.protocol import router as protocol_router
from app.schema import head_revision
from app.templating import STATIC_DIR


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the ASGI application; ``settings`` default to the environment's."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings.database_url)
        app.state.engine = engine
        app.state.sessionmaker = session_factory(engine)
        app.state.clock = clock_from_settings(settings)
        app.state.head_revision = head_revision()
        try:
            yield
        finally:
            await engine.dispose()

    app = FastAPI(title="Stepwise", version=__version__, lifespan=lifespan)
    app.state.settings = settings
    app.state.backend = backend_name(settings.database_url)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(health.router)
    app.include_router(home.router)
    app.include_router(protocol_router.router)
    return app
