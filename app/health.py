"""``GET /healthz``: is the database reachable and at the schema this code expects?"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import inspect, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from app import gc_tuning
from app.contract import Health
from app.db import DEFERRED_BEGIN, backend_name
from app.deps import Engine, HeadRevision, Settings, Wall
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
    if wall is not None:  # this process runs on the database's clock (app.clock_sync)
        answer["clock_offset_ms"] = round(wall.offset.total_seconds() * 1000, 1)
    return JSONResponse(answer)
