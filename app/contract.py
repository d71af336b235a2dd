"""The API's contract, stated once: the shapes of its answers (success and refusal), the statuses
each operation can give, the Idempotency-Key header, the sign-in it needs, and a 405 that names
every method a path has. The routes declare their success models; what every `/api/` operation
shares is added here to the generated OpenAPI document, so it cannot drift route by route.

A test (tests/test_api_contract.py) runs Schemathesis against this document on both databases
with every check on."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
REFUSAL_REF = "#/components/schemas/Refusal"
VALIDATION_REF = "#/components/schemas/ValidationRefusal"
# Every /api/ operation may answer these; each with the Refusal shape (422: either shape).
COMMON_REFUSALS = {
    "400": "The body is not JSON of the declared shape (it could not be parsed).",
    "401": "Not signed in (or the sign-in ended): sign in at /login and send its cookie.",
    "403": "Signed in, but this role may not do this; or a cross-site or CSRF-less write.",
    "413": "The body is larger than 64 KiB.",
    "422": "Invalid: a schema violation (`detail` is a list of problems) or a rule the "
    "schema cannot state (`detail` is a sentence, `field` names the input).",
    "503": "The database could not do it (out of reach, restarting, too slow, storage full or "
    "read-only, busy): `detail` says which in words, `fault` as a code; it may not have been "
    "saved: resend with the same Idempotency-Key (`Retry-After: 1`).",
}
RESOURCE_REFUSALS = {
    "404": "No such session, patient, reaction, alarm, vitals set or user.",
    "409": "The session's state does not allow this now, or it changed meanwhile "
    "(`expected_version`): `current` is the session as it is.",
}
IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Any text of 1 to 200 characters, unique per request: a resend with the same "
    "key (by the same person) gets the first answer, and nothing is written again. The same "
    "key with a different request is refused with 422.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 200},
}


class Open(BaseModel):
    """An answer whose documented fields are guaranteed; more may be present."""

    model_config = ConfigDict(extra="allow")


class SessionSummary(Open):
    id: int
    status: str
    version: int
    current_step: int | None = None


class Refusal(Open):
    """Every refusal: a sentence, the input at fault when there is one, and for a session
    command the session as it is (so a client can redraw without another request)."""

    detail: str
    field: str | None = None
    current: SessionSummary | None = None


class ValidationProblem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ValidationRefusal(BaseModel):
    detail: list[ValidationProblem]


class SessionView(Open):
    """A session as every screen sees it (app.session.view_json): its state, plan, dose
    ledger, reactions, vitals and alarms."""

    id: int
    patient_id: int
    drug: str
    route: str
    template: str
    status: str
    version: int
    current_step: int | None
    target_dose: str
    unit: str
    delivered_dose: str
    plan: dict[str, Any]
    reactions: list[dict[str, Any]]
    # The newest vitals sets (every version) and the newest baseline, oldest first; all of
    # them are GET /api/v1/sessions/{id}/vitals.
    vitals: list[dict[str, Any]]
    vitals_total: int  # every stored vitals set, in `vitals` or not
    alarms: dict[str, Any]
    # What the coming pump start still needs: scans (right bag, right patient) and the double
    # check of a high-alert drug (app.session.view.BedsideChecks).
    checks: dict[str, Any]


class VitalsHistory(Open):
    """A page of a session's full vitals history, newest first: the sets as in SessionView's
    `vitals`. `next_before`: pass it as `before` for the next (older) page; null on the last."""

    session_id: int
    total: int
    items: list[dict[str, Any]]
    next_before: int | None


class PatientHistory(Open):
    patient_id: int
    planned_at: str
    drugs: list[dict[str, Any]]


class Health(Open):
    status: str
    database: str


class Readiness(Open):
    status: str  # "ready" or "not ready"
    checks: dict[str, str]  # each check: "ok", or what is wrong in words


class ClockAnswer(Open):
    now: str
    speed: float
    training: bool


def _has_path_id(path: str) -> bool:
    return "{" in path


def contract_openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, with what every /api/ operation shares."""
    if app.openapi_schema:
        return app.openapi_schema
    spec = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
    )
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    for model in (Refusal, ValidationRefusal):
        generated = model.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, definition in generated.pop("$defs", {}).items():
            schemas.setdefault(name, definition)
        schemas[model.__name__] = generated
    spec["components"]["securitySchemes"] = {
        "session": {"type": "apiKey", "in": "cookie", "name": "stepwise_session"},
        "csrf": {"type": "apiKey", "in": "header", "name": "X-CSRF-Token"},
    }
    for path, operations in spec["paths"].items():
        if not path.startswith("/api/"):
            continue
        for method, operation in operations.items():
            _state_operation(path, method, operation)
    app.openapi_schema = spec
    return spec


def _refusal(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _state_operation(path: str, method: str, operation: dict[str, Any]) -> None:
    responses = operation.setdefault("responses", {})
    refusals = dict(COMMON_REFUSALS)
    if _has_path_id(path) or method != "get":
        refusals |= RESOURCE_REFUSALS
    for status, description in refusals.items():
        schema: dict[str, Any] = {"$ref": REFUSAL_REF}
        if status == "422":
            schema = {"anyOf": [{"$ref": VALIDATION_REF}, {"$ref": REFUSAL_REF}]}
        responses[status] = _refusal(description, schema)
    unsafe = method in ("post", "put", "patch", "delete")
    operation["security"] = [{"session": [], "csrf": []}] if unsafe else [{"session": []}]
    if unsafe and path.startswith("/api/v1/sessions"):
        parameters = operation.setdefault("parameters", [])
        if not any(p.get("name") == "Idempotency-Key" for p in parameters):
            parameters.append(IDEMPOTENCY_KEY)


async def method_not_allowed(request: Request, exc: Exception) -> Response:
    """405 with an Allow header that lists every method the path has, not only those of the
    first route that matched it; other HTTP errors as the framework answers them."""
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        # Ask the router, method by method, which ones this path answers (included routers
        # do not list their routes' methods).
        methods = [
            method
            for method in HTTP_METHODS
            if any(
                route.matches({**request.scope, "method": method})[0] == Match.FULL
                for route in request.app.router.routes
            )
        ]
        headers["Allow"] = ", ".join(methods)
    if exc.status_code in (204, 304):
        return Response(status_code=exc.status_code, headers=headers)
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)
