"""A refused session request, in the domain's words: what kind of refusal, why, which field,
and what the session is now. Nothing here knows about HTTP; the application's exception
handler turns a kind into a status code."""

from __future__ import annotations

from typing import Any, Literal

Kind = Literal["not_found", "forbidden", "state", "stale", "invalid", "conflict"]
"""not_found: no such session (or patient, vitals set, alarm); forbidden: not this role's to do;
state: not possible in the session's present state; stale: the caller saw an older version;
invalid: the request itself is wrong; conflict: an Idempotency-Key reused for another request."""

# The status each kind is answered with. Kept beside the kinds because an idempotent answer is
# remembered as the status and body it was sent with (app.main answers refusals with it).
STATUS_OF_KIND: dict[Kind, int] = {
    "not_found": 404,
    "forbidden": 403,
    "state": 409,
    "stale": 409,
    "invalid": 422,
    "conflict": 409,
}


class Refusal(Exception):
    """A refused request: its kind, one-line reason, the field at fault and the current state
    when useful."""

    def __init__(
        self,
        kind: Kind,
        detail: str,
        current: dict[str, Any] | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(detail)
        self.kind: Kind = kind
        self.detail = detail
        self.current = current
        self.field = field

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"detail": self.detail}
        if self.field:
            body["field"] = self.field
        if self.current is not None:
            body["current"] = self.current
        return body


class ConfirmationNeeded(Refusal):
    """Values that meet an alarm condition, or lie far from the baseline (a typing error?), are
    saved only when the client confirms them."""

    def __init__(self, findings: list[dict[str, Any]], doubts: list[dict[str, Any]]) -> None:
        messages = "; ".join([*(f["message"] for f in findings), *(d["message"] for d in doubts)])
        super().__init__("invalid", f"confirm these values before they are saved: {messages}")
        self.findings = findings
        self.doubts = doubts

    def body(self) -> dict[str, Any]:
        return {
            **super().body(),
            "needs_confirmation": self.findings,
            "far_from_baseline": self.doubts,
            "confirm_with": {"confirm": True},
        }
