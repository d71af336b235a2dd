"""Application factory."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.gzip import GZipMiddleware

from app import __version__, clock_sync, db_faults, gc_tuning, health, home, localtime
from app.alarms.webhook import EscalationWebhook
from app.auth import router as auth_router
from app.auth import sign_in
from app.auth.csrf import parse_allowed_origins
from app.auth.dependencies import Forbidden, NotSignedIn, require_permission
from app.auth.service import SignedIn
from app.clock import (
    AcceleratedClock,
    SteadyClock,
    clock_from_settings,
    not_ready,
    person_clock,
)
from app.config import Settings, get_settings
from app.contract import contract_openapi, method_not_allowed
from app.db import DEFERRED_BEGIN, Installation, backend_name, request_engine, session_factory
from app.doorbell import doorbell_for
from app.live import pages as session_pages
from app.live import router as live_router
from app.live.heartbeat import heartbeat_fragment
from app.live.hub import Hub
from app.live.pg_listener import PgListener
from app.live.render import LiveRenderer
from app.middleware import RequestMetrics, SecurityMiddleware
from app.monitoring import ServerMetrics
from app.patients import pages as patient_pages
from app.patients import router as patients_router
from app.protocol import router as protocol_router
from app.review import audit_pages, label_pages, session_list
from app.review import export_router as review_exports
from app.review import report as review_report
from app.review import timeline as review_timeline
from app.review import vitals_page as review_vitals
from app.schema import head_revision
from app.session import checks_router, timers
from app.session import new_page as new_session_page
from app.session import router as session_router
from app.session.errors import STATUS_OF_KIND, Refusal
from app.session.presence import Presence
from app.static_assets import STATIC_DIR, VersionedStaticFiles
from app.templating import templates


async def _clock_anchor(engine: AsyncEngine) -> datetime | None:
    """The training clock counts from when this installation was created, so its time is the
    same in every process and after every restart. None when the schema is not there yet."""
    try:
        async with engine.connect() as conn:
            return await conn.scalar(select(Installation.created_at).order_by(Installation.id))
    except (SQLAlchemyError, OSError):  # unreachable or not migrated: healthz will say so
        return None


async def _anchor_when_readable(
    engine: AsyncEngine, clock: AcceleratedClock, stop: asyncio.Event
) -> None:
    """A training clock started while the database was away counts from the installation's
    start as soon as it can be read (until then the process is not ready, fires no timer)."""
    while not stop.is_set():
        anchor = await _clock_anchor(engine)
        if anchor is not None:
            clock.anchor_to(anchor)
            logger.warning("training clock anchored to the installation's start, late")
            return
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), ANCHOR_RETRY_SECONDS)


logger = logging.getLogger(__name__)

TIMER_STOP_SECONDS = 10.0
ANCHOR_RETRY_SECONDS = 5.0


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


async def _not_signed_in(request: Request, _: Exception) -> Response:
    if _is_api(request):
        return JSONResponse({"detail": "sign in required"}, status_code=401)
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    login = f"/login?{urlencode({'next': target})}"
    if request.headers.get("hx-request"):
        # htmx would swap a followed redirect into the page; ask it to navigate instead.
        return Response(status_code=401, headers={"HX-Redirect": login})
    return RedirectResponse(login, status_code=303)


async def _forbidden(request: Request, exc: Exception) -> Response:
    reason = exc.reason if isinstance(exc, Forbidden) else "not allowed"
    if _is_api(request):
        return JSONResponse({"detail": reason}, status_code=403)
    return templates.TemplateResponse(
        request, "errors/forbidden.html", {"reason": reason}, status_code=403
    )


async def _database_unavailable(request: Request, exc: Exception) -> Response:
    # The database could not do what the request needed (out of reach, restarting, too slow,
    # storage full or read-only, busy): the transaction did not complete. Say what happened
    # and when to resend, as a 503; anything else raised here is a bug and stays a 500.
    fault = db_faults.fault_of(exc)
    if fault is None:
        logger.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return PlainTextResponse("Internal Server Error", status_code=500)
    _log_fault_once(fault, request)
    request.app.state.storage_faults.failed(fault)  # readiness says so for a while
    request.app.state.metrics.database_fault(fault.kind)
    headers = {"Retry-After": "1"}
    if _is_api(request) or request.headers.get("hx-request"):
        return JSONResponse(
            {"detail": fault.detail, "fault": fault.kind}, status_code=503, headers=headers
        )
    return templates.TemplateResponse(
        request,
        "errors/unavailable.html",
        {"reason": f"{fault.reason[0].upper()}{fault.reason[1:]}: {db_faults.RESEND}."},
        status_code=503,
        headers=headers,
    )


# The fault last logged and when (monotonic seconds).
_last_fault: dict[str, Any] = {"kind": None, "at": float("-inf")}
FAULT_LOG_SECONDS = 60.0
# Readiness says "storage full" this long after a write was refused for it.
STORAGE_FAULT_SECONDS = 30.0


def _log_fault_once(fault: db_faults.DatabaseFault, request: Request) -> None:
    """A warning when the database's condition changes (or a minute on), not one per refused
    request: a restart under load would otherwise bury the log."""
    now = time.monotonic()
    if _last_fault["kind"] != fault.kind or now - _last_fault["at"] >= FAULT_LOG_SECONDS:
        _last_fault.update(kind=fault.kind, at=now)
        logger.warning(
            "database unavailable (%s): %s %s answered 503",
            fault.kind,
            request.method,
            request.url.path,
        )


async def _refused(request: Request, exc: Exception) -> Response:
    # The one place a session refusal's kind becomes an HTTP status.
    assert isinstance(exc, Refusal)
    return JSONResponse(exc.body(), status_code=STATUS_OF_KIND[exc.kind])


async def _invalid_request(request: Request, exc: Exception) -> Response:
    # FastAPI's default answer echoes each rejected value ("input"), which can be a password.
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    detail = [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")} for e in errors
    ]
    return JSONResponse({"detail": detail}, status_code=422)


async def _still_signed_in(app: FastAPI, login_ids: set[int]) -> set[int]:
    async with app.state.sessionmaker() as db:
        await db.connection(execution_options=DEFERRED_BEGIN)  # a read: no write lock
        valid = await sign_in.still_signed_in(
            db, app.state.person_clock, app.state.settings, login_ids
        )
        await db.rollback()
    return valid


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the ASGI application; ``settings`` default to the environment's."""
    settings = settings or get_settings()
    localtime.configure(settings.timezone)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = request_engine(settings.database_url, settings.database_timeout_seconds)
        app.state.engine = engine
        app.state.sessionmaker = session_factory(engine)
        training = settings.clock_mode == "accelerated" or (
            settings.clock_mode == "real" and settings.clock_speed > 1
        )
        anchor = await _clock_anchor(engine) if training else None
        backend = backend_name(settings.database_url)
        wall = None
        if settings.clock_mode != "manual":
            # Time that never jumps with the machine's clock; several processes run on the
            # database's clock (measured now and again), so they agree on what is due.
            wall = SteadyClock(aligned=backend == "postgresql")
            if backend == "postgresql":
                with suppress(SQLAlchemyError, OSError):  # unreachable: readyz says so
                    await clock_sync.align(engine, wall)
        app.state.clock = clock_from_settings(settings, anchor, wall)
        app.state.wall = wall
        # Durations that measure a person (sign-in timeouts, the audio pause, escalation) run
        # on the wall clock even when a training clock runs the protocol faster; a manual
        # clock (tests) drives both.
        app.state.person_clock = person_clock(app.state.clock, wall)
        app.state.head_revision = head_revision()
        app.state.doorbell = doorbell_for(backend)
        webhook = (
            EscalationWebhook(
                settings.escalation_webhook,
                settings.webhook_attempts,
                settings.webhook_backoff_seconds,
            )
            if settings.escalation_webhook
            else None
        )
        app.state.escalation_webhook = webhook
        app.state.live_renderer = LiveRenderer(app.state.sessionmaker, app.state.clock)
        app.state.hub = Hub(
            app.state.doorbell,
            app.state.clock,
            app.state.live_renderer,
            heartbeat_fragment(app.state.clock),
            heartbeat_seconds=settings.live_heartbeat_seconds,
            queue_size=settings.live_queue_size,
            presence=(bedside := Presence(app.state.sessionmaker, app.state.clock)),
            login_check=lambda ids: _still_signed_in(app, ids),
            login_check_seconds=settings.live_login_check_seconds,
        )
        app.state.hub.start()
        stop_timers = asyncio.Event()
        background: list[asyncio.Task] = [
            asyncio.create_task(bedside.run(stop_timers), name="stepwise-presence")
        ]
        if wall is not None and backend == "postgresql":
            background.append(
                asyncio.create_task(
                    clock_sync.keep_aligned(engine, wall, stop_timers), name="stepwise-clock"
                )
            )
        if isinstance(app.state.clock, AcceleratedClock) and not app.state.clock.anchored:
            background.append(
                asyncio.create_task(
                    _anchor_when_readable(engine, app.state.clock, stop_timers),
                    name="stepwise-training-anchor",
                )
            )
        if backend == "postgresql":
            # Commits of every process reach this one's screens (app.live.pg_listener).
            hub = app.state.hub
            app.state.pg_listener = PgListener(
                settings.database_url,
                app.state.doorbell,
                app.state.sessionmaker,
                lambda: [t for t in hub.screens if isinstance(t, int)],
            )
            background.append(
                asyncio.create_task(app.state.pg_listener.run(stop_timers), name="stepwise-listen")
            )
        timer_loop = asyncio.create_task(
            timers.run_forever(
                app.state.sessionmaker,
                app.state.clock,
                app.state.doorbell,
                webhook,
                stop=stop_timers,
                contact_seconds=settings.contact_check_seconds,
                not_ready=lambda: not_ready(app.state.clock, wall),
                on_fired=app.state.metrics.timer_fired,
            ),
            name="stepwise-timers",
        )
        gc_tuning.settle_after_start_up()
        try:
            yield
        finally:
            stop_timers.set()  # finish the pass under way, then stop
            try:
                await asyncio.wait_for(timer_loop, TIMER_STOP_SECONDS)
            except TimeoutError:
                timer_loop.cancel()
                with suppress(asyncio.CancelledError):
                    await timer_loop
            for task in background:
                try:
                    await asyncio.wait_for(task, TIMER_STOP_SECONDS)
                except TimeoutError:
                    task.cancel()
                    with suppress(asyncio.CancelledError):
                        await task
            await app.state.hub.stop()
            if webhook is not None:
                await webhook.close()
            await engine.dispose()

    # Built-in docs routes would be public; the OpenAPI document is served behind sign-in.
    app = FastAPI(
        title="Stepwise",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.settings = settings
    app.state.storage_faults = db_faults.StorageFaults(time.monotonic, STORAGE_FAULT_SECONDS)
    # Read at GET /metrics; the hub only exists once started.
    app.state.metrics = ServerMetrics(lambda: getattr(app.state, "hub", None))
    # Text answers compressed (the bedside page and its scripts are mostly text). BREACH needs
    # an attacker's page to make signed-in requests here, which the SameSite=Lax session cookie
    # refuses; level 6 is most of level 9's saving at a third of its time.
    app.add_middleware(GZipMiddleware, minimum_size=1024, compresslevel=6)
    app.add_middleware(
        SecurityMiddleware, allowed_origins=parse_allowed_origins(settings.allowed_origins)
    )
    # Added last, so outermost: every request is measured, refusals of the others included.
    app.add_middleware(RequestMetrics, done=app.state.metrics.request_done)
    app.add_exception_handler(NotSignedIn, _not_signed_in)
    app.add_exception_handler(Forbidden, _forbidden)
    app.add_exception_handler(Refusal, _refused)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(StarletteHTTPException, method_not_allowed)
    app.openapi = lambda: contract_openapi(app)  # type: ignore[method-assign]
    for failure in (DBAPIError, PoolTimeout, TimeoutError, ConnectionError):
        app.add_exception_handler(failure, _database_unavailable)
    app.mount("/static", VersionedStaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(health.router)
    app.include_router(auth_router.router)
    app.include_router(auth_router.api)
    app.include_router(home.router)
    app.include_router(protocol_router.router)
    app.include_router(new_session_page.router)  # before any /sessions/{id} page route
    app.include_router(session_router.router)
    app.include_router(checks_router.router)
    app.include_router(patients_router.api)
    app.include_router(patient_pages.router)
    app.include_router(session_pages.router)
    app.include_router(live_router.router)
    app.include_router(review_timeline.router)
    app.include_router(review_vitals.router)
    app.include_router(session_list.router)
    app.include_router(audit_pages.router)
    app.include_router(review_exports.router)
    app.include_router(review_report.router)
    app.include_router(label_pages.router)

    @app.get("/docs", include_in_schema=False, response_class=HTMLResponse)
    async def api_docs(
        request: Request, _: SignedIn = require_permission("account.use")
    ) -> HTMLResponse:
        return templates.TemplateResponse(request, "api_docs.html")

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi_document(
        _: SignedIn = require_permission("account.use"),
    ) -> JSONResponse:
        return JSONResponse(app.openapi())

    return app
