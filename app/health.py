"""``GET /healthz``: is the process alive and its database reachable at the schema this code
expects? ``GET /readyz``: can it take work now (storage writable, clock aligned, the other
processes heard)? ``GET /metrics``: what monitoring scrapes of this process (app.monitoring)."""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from sqlalchemy import inspect, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from app import db_faults, gc_tuning
from app.clock import Clock, not_ready
from app.contract import Health, Readiness
from app.db import DEFERRED_BEGIN, backend_name
from app.deps import (
    Engine,
    HeadRevision,
    Listening,
    Metrics,
    Settings,
    Wall,
    server_clock_if_started,
)
from app.metrics import CONTENT_TYPE
from app.schema import current_revision

logger = logging.getLogger(__name__)

router = APIRouter()

HEALTH_TIMEOUT_S = 5.0
_FIX = "run: stepwise db upgrade"


class _Unhealthy(Exception):
    """The database answered, but not as expected; the message is safe to show."""


async def _check(engine: AsyncEngine, expected_revision: str) -> str:
    async with engine.connect() as conn:
        await conn.execution_options(**DEFERRED_BEGIN)
        await conn.execute(text("SELECT 1"))
        has_version_table = await conn.run_sync(
            lambda sync_conn: inspect(sync_conn).has_table("alembic_version")
        )
        if not has_version_table:
            raise _Unhealthy(f"schema not migrated (no alembic_version table); {_FIX}")
        revision = await conn.run_sync(current_revision)
    if revision is None:
        raise _Unhealthy(f"schema not migrated (alembic_version is empty); {_FIX}")
    if revision != expected_revision:
        raise _Unhealthy(
            f"schema at revision {revision}, this code expects {expected_revision}; {_FIX}"
        )
    return revision


def _error(reason: str) -> JSONResponse:
    return JSONResponse({"status": "error", "database": reason}, status_code=503)


@router.get(
    "/healthz",
    tags=["operations"],
    response_model=Health,
    responses={503: {"model": Health, "description": "The database is not usable."}},
)
async def healthz(
    engine: Engine, head_revision: HeadRevision, settings: Settings, wall: Wall
) -> JSONResponse:
    try:
        revision = await asyncio.wait_for(_check(engine, head_revision), timeout=HEALTH_TIMEOUT_S)
    except _Unhealthy as exc:
        return _error(str(exc))
    except TimeoutError:
        return _error(f"unreachable: no answer within {HEALTH_TIMEOUT_S:g} s")
    except (SQLAlchemyError, OSError) as exc:
        # The exception text may carry connection details; log it, show only its kind.
        logger.warning("health check failed: %s", exc)
        return _error(f"unreachable: {type(exc).__name__}")
    except Exception as exc:  # a health check answers, it never turns into a 500
        logger.exception("health check failed unexpectedly")
        return _error(f"error: {type(exc).__name__}")
    answer: dict[str, Any] = {
        "status": "ok",
        "database": "ok",
        "backend": backend_name(settings.database_url),
        "schema_revision": revision,
        "gc": gc_tuning.PAUSES.as_dict(),
    }
    if wall is not None:  # steady time; with PostgreSQL on the database's clock
        answer["clock_offset_ms"] = round(wall.offset.total_seconds() * 1000, 1)
        # What is still being slewed away (a step of the machine's clock, say), never jumped.
        answer["clock_slewing_ms"] = round(wall.error.total_seconds() * 1000, 1)
    return JSONResponse(answer)


# What was last said about readiness, so that a change of condition is logged once.
_last_readiness: dict[str, str] = {}


_REWRITE_INSTALLATION = text(
    "UPDATE installation SET created_at = created_at WHERE id = (SELECT min(id) FROM installation)"
)


def _storage_faults_of(request: Request) -> db_faults.StorageFaults | None:
    return getattr(request.app.state, "storage_faults", None)


async def _write_probe(engine: AsyncEngine) -> None:
    """A real write, committed (the installation row rewritten as it is): a full disk or a
    read-only volume fails it where a read would pass."""
    async with engine.begin() as conn:
        await conn.execute(_REWRITE_INSTALLATION)


def _said(error: BaseException) -> str:
    fault = db_faults.fault_of(error)
    return fault.reason if fault is not None else f"error: {type(error).__name__}"


@router.get(
    "/readyz",
    tags=["operations"],
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "Not ready: the failing checks say why."}},
)
async def readyz(
    engine: Engine,
    head_revision: HeadRevision,
    wall: Wall,
    listening: Listening,
    clock: Annotated[Clock | None, Depends(server_clock_if_started)],
    storage_faults: Annotated[db_faults.StorageFaults | None, Depends(_storage_faults_of)],
) -> JSONResponse:
    """Ready to take work: the database reachable at this code's schema, storage writable (a
    real write), the clock aligned to the database's and the other processes heard
    (PostgreSQL). Each check named; 503 when any fails."""
    checks: dict[str, str] = {}
    try:
        await asyncio.wait_for(_check(engine, head_revision), timeout=HEALTH_TIMEOUT_S)
        checks["database"] = "ok"
    except _Unhealthy as exc:
        checks["database"] = str(exc)
    except Exception as exc:  # an answer, never a 500
        checks["database"] = _said(exc)
    refused = storage_faults.recent() if storage_faults is not None else None
    if refused is not None:  # a real write was refused just now: the probe's would prove little
        checks["storage"] = refused.reason
    elif checks["database"] == "ok":
        try:
            await asyncio.wait_for(_write_probe(engine), timeout=HEALTH_TIMEOUT_S)
            checks["storage"] = "ok"
        except Exception as exc:
            checks["storage"] = _said(exc)
    waiting = not_ready(clock, wall) if clock is not None else "not started"
    checks["clock"] = "ok" if waiting is None else waiting
    if listening is not None:
        checks["listener"] = "ok" if listening else "not hearing the other processes' changes"
    ready = all(value == "ok" for value in checks.values())
    if checks != _last_readiness:
        _last_readiness.clear()
        _last_readiness.update(checks)
        problems = {k: v for k, v in checks.items() if v != "ok"}
        if problems:
            logger.warning("not ready: %s", problems)
        else:
            logger.info("ready")
    answer = {"status": "ready" if ready else "not ready", "checks": checks}
    return JSONResponse(answer, status_code=200 if ready else 503)


@router.get(
    "/metrics",
    tags=["operations"],
    response_class=PlainTextResponse,
    responses={200: {"description": "The metrics, Prometheus text format version 0.0.4."}},
)
async def metrics(server: Metrics) -> Response:
    """This process's metrics for monitoring to scrape, open like /healthz: counts, durations
    and route templates, no patient data and no user names. Needs no database, so it answers
    while the database is away (and counts the 503s)."""
    return Response(server.render(), media_type=CONTENT_TYPE)
