"""The bag and patient checks of a session's record in words: labels printed and reprinted,
wristband and bag label scans (how each was read, a code typed by hand said so), the wrong ones
refused, a physician's override of a scan, and the second clinician's double check of a
high-alert drug's pump rate (both clinicians by name). Shared by the timeline, the printed
report and the FHIR export. Pure."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final, Protocol

CHECK_EVENTS: Final = (
    "labels_printed",
    "label_reprinted",
    "scan_checked",
    "scan_refused",
    "scan_overridden",
    "double_checked",
)
METHOD_WORDS: Final[Mapping[str, str]] = {
    "scanner": "scanned",
    "camera": "read by the tablet's camera",
    "manual": "typed by hand, not scanned",
}
KIND_WORDS: Final[Mapping[str, str]] = {"wristband": "wristband", "bag": "bag label"}

Names = Callable[[int | None], str]  # a user id -> the person's name


class EventLike(Protocol):
    @property
    def at(self) -> datetime: ...

    @property
    def kind(self) -> str: ...

    @property
    def actor_id(self) -> int | None: ...

    @property
    def actor_role(self) -> str: ...


@dataclass(frozen=True)
class CheckRecord:
    at: datetime
    kind: str  # the event's kind
    what: str  # "Bag label checked", "Wrong bag refused", ...
    detail: str
    who: str  # who did it (the event's actor)
    role: str
    refused: bool = False  # a wrong bag or patient
    bag: int | None = None  # the bag a scan or a double check concerns
    step: int | None = None  # 0-based: the step a double check cleared

    @property
    def text(self) -> str:
        return f"{self.what}: {self.detail}" if self.detail else self.what


def method_words(method: Any) -> str:
    return METHOD_WORDS.get(str(method), str(method or "read"))


def _list(numbers: Iterable[Any]) -> str:
    items = [str(n) for n in numbers]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _trim(value: Any) -> str:
    """A stored number as people write it: "2.000" -> "2", "12.50" -> "12.5"."""
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return str(value)
    return f"{number.normalize():f}" if number.is_finite() else str(value)


def user_ids(kind: str, data: Mapping[str, Any]) -> set[int]:
    """The people an event's data names besides its actor (a double check's two clinicians)."""
    if kind != "double_checked":
        return set()
    return {int(data[key]) for key in ("by", "cosigner") if isinstance(data.get(key), int)}


def check_words(kind: str, data: Mapping[str, Any], names: Names) -> tuple[str, str] | None:
    """(what, detail) of one check event, or None for other kinds."""
    if kind == "labels_printed":
        bags = list(data.get("bags") or ())
        label = "label" if len(bags) == 1 else "labels"
        return "Labels printed", f"{label} of bag{'' if len(bags) == 1 else 's'} {_list(bags)}"
    if kind == "label_reprinted":
        return (
            "Label reprinted",
            f"bag {data.get('bag')}: copy {data.get('copy')} printed; copy "
            f"{data.get('voided_copy')} void (no longer scans)",
        )
    if kind in ("scan_checked", "scan_refused"):
        what = KIND_WORDS.get(str(data.get("kind")), str(data.get("kind")))
        how = method_words(data.get("method"))
        if kind == "scan_refused":
            wrong = "Wrong bag" if data.get("kind") == "bag" else "Wrong patient"
            return (
                f"{wrong} refused",
                f"{data.get('scanned')} ({how}); expected {data.get('expected')}",
            )
        return f"{what.capitalize()} checked", f"{data.get('scanned')} ({how})"
    if kind == "scan_overridden":
        what = KIND_WORDS.get(str(data.get("kind")), str(data.get("kind")))
        return (
            f"{what.capitalize()} scan overridden",
            f"went on without the scan. Reason: {data.get('reason') or 'none given'}",
        )
    if kind == "double_checked":
        step = data.get("step")
        where = [f"step {step + 1}" if isinstance(step, int) else "the pump start"]
        if data.get("solution") is not None:
            where.append(f"bag {data['solution']}")
        if data.get("rate_ml_h") is not None:
            where.append(f"{_trim(data['rate_ml_h'])} mL/h")
        by, cosigner = data.get("by"), data.get("cosigner")
        return (
            "Double check",
            f"{', '.join(where)}: set by {names(by)}, checked and co-signed by {names(cosigner)}",
        )
    return None


def check_records(
    events: Iterable[tuple[EventLike, Mapping[str, Any]]], names: Names
) -> tuple[CheckRecord, ...]:
    """The check events of a record, in its order, in words."""
    out = []
    for event, data in events:
        words = check_words(event.kind, data, names)
        if words is None:
            continue
        bag = data.get("bag") if event.kind != "double_checked" else data.get("solution")
        out.append(
            CheckRecord(
                at=event.at,
                kind=event.kind,
                what=words[0],
                detail=words[1],
                who=names(event.actor_id) if event.actor_id is not None else "Stepwise",
                role=event.actor_role,
                refused=event.kind == "scan_refused",
                bag=bag if isinstance(bag, int) else None,
                step=data.get("step") if event.kind == "double_checked" else None,
            )
        )
    return tuple(out)
