"""HTTP middleware: request ids, security headers, the cross-site check on unsafe methods, the
limits a request must meet before its body is read (size; a sign-in for API writes), and the
measure of every request for the metrics.

Pure ASGI (no BaseHTTPMiddleware) so websockets and streaming responses pass untouched.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable

from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import cookie_parser
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.auth.csrf import cross_site_refusal
from app.auth.dependencies import SECURE_SESSION_COOKIE, SESSION_COOKIE
from app.logs import REQUEST_ID

logger = logging.getLogger(__name__)

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
    # The camera reads bag labels at the bedside (this origin only).
    "permissions-policy": "camera=(self), microphone=(), geolocation=()",
    # Pages and answers carry patient data: a shared tablet's cache keeps none of it. Static
    # files set their own (app.static_assets).
    "cache-control": "no-store",
}
HSTS = "max-age=31536000; includeSubDomains"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# The largest legitimate body is a patient with every field at its maximum (an 8,000-character
# allergy history, about 33 KB as JSON escapes at worst); 64 KiB leaves room and bounds what
# any request, signed in or not, can make the server hold.
MAX_BODY_BYTES = 64 * 1024


class BodyTooLarge(HTTPException):
    """Raised while a body is read past the cap. An HTTPException, so that the framework's body
    parsing passes it on (it answers 400 to other errors) and its handler answers 413."""

    def __init__(self) -> None:
        super().__init__(413, f"request body larger than {MAX_BODY_BYTES} bytes")


def _refusal(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


def _has_session_cookie(headers: Headers) -> bool:
    cookies = cookie_parser(headers.get("cookie", ""))
    return bool(cookies.get(SESSION_COOKIE) or cookies.get(SECURE_SESSION_COOKIE))


class SecurityMiddleware:
    """Gives every request an id, refuses cross-site unsafe requests before any route runs
    (so they change nothing), and adds the security headers to every answer."""

    def __init__(self, app: ASGIApp, allowed_origins: frozenset[str] = frozenset()) -> None:
        self.app = app
        self.allowed_origins = allowed_origins

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        REQUEST_ID.set(request_id)  # every line logged while answering names it (app.logs)
        https = scope.get("scheme") == "https"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
                if https:
                    headers.setdefault("strict-transport-security", HSTS)
                headers["x-request-id"] = request_id
            await send(message)

        headers = Headers(scope=scope)
        refusal = self._refusal_before_body(scope, headers)
        if refusal is not None:
            await refusal(scope, receive, send_with_headers)
            return
        received = 0
        started = False

        async def receive_within_limit() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > MAX_BODY_BYTES:
                    raise BodyTooLarge
            return message

        async def send_tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send_with_headers(message)

        try:
            await self.app(scope, receive_within_limit, send_tracked)
        except BodyTooLarge:
            # A body sent without a length that grew past the cap: the app stopped reading it.
            if started:
                raise
            too_large = _refusal(413, f"request body larger than {MAX_BODY_BYTES} bytes")
            await too_large(scope, receive, send_with_headers)
        except Exception:
            # A defect: answered here, so that the 500 carries the security headers too (the
            # server's own error handler, outside this middleware, would send it bare); then
            # raised on, to be logged with its traceback.
            if not started:
                failed = _refusal(500, "internal error; the request id is in the server log")
                await failed(scope, receive, send_with_headers)
            raise

    def _refusal_before_body(self, scope: Scope, headers: Headers) -> JSONResponse | None:
        """What is refused on the headers alone, so that nothing of the body is read."""
        length = headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                return _refusal(400, "Content-Length must be a whole number of bytes")
            if int(length) > MAX_BODY_BYTES:
                return _refusal(413, f"request body larger than {MAX_BODY_BYTES} bytes")
        if scope["method"] not in UNSAFE_METHODS:
            return None
        reason = cross_site_refusal(headers, scope, self.allowed_origins)
        if reason is not None:
            logger.warning("refused %s %s: %s", scope["method"], scope["path"], reason)
            return _refusal(403, reason)
        if scope["path"].startswith("/api/") and not _has_session_cookie(headers):
            # The API's writes all need a sign-in: without one, refused before the body is read
            # (the route's own check comes after FastAPI has parsed the body).
            return _refusal(401, "sign in required")
        return None


# Told of each HTTP request once answered: its method, its route's template (None: no route
# answered it), its status and how long it took, in seconds (app.monitoring).
RequestDone = Callable[[str, str | None, int, float], None]


def route_template(scope: Scope, root_path_before: str) -> str | None:
    """The path template of the route that answered (``/api/v1/sessions/{session_id}``), never
    the path itself: set in the scope by routing. A mounted app (the static files) is named by
    its mount, ``/static/{path}``; None when nothing matched."""
    path = getattr(scope.get("route"), "path", None)
    if isinstance(path, str):
        return path
    root_path = scope.get("root_path", "")
    if root_path != root_path_before and root_path.startswith(root_path_before):
        return root_path[len(root_path_before) :] + "/{path}"
    return None


class RequestMetrics:
    """Measures every HTTP request, from its arrival to the last part of its answer; refusals
    made before routing (a cross-site write, a body too large) have no route. Outermost, so
    it measures the other middleware too."""

    def __init__(self, app: ASGIApp, done: RequestDone) -> None:
        self.app = app
        self.done = done

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # a websocket is a screen, not a request
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        root_path = scope.get("root_path", "")
        status = 500  # what the server answers when the app raises before answering
        reported = False

        def report() -> None:
            nonlocal reported
            if not reported:
                reported = True
                took = time.perf_counter() - started
                self.done(scope["method"], route_template(scope, root_path), status, took)

        async def send_measured(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                # Counted before the last bytes leave: a client holding its answer finds it in
                # the next scrape.
                report()
            await send(message)

        try:
            await self.app(scope, receive, send_measured)
        finally:
            report()  # the app raised, or the client left before the end
