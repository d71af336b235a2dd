"""SessionState <-> JSON through pydantic's TypeAdapter. Pure.

The adapters walk the dataclasses by their own type hints, so a new field needs no change here.
The stored form is fixed, because existing rows must keep loading and a state must keep its
bytes: keys sorted, no spaces, decimals as strings (exact), times as ISO 8601 with their offset
("+00:00", where pydantic's JSON mode would write "Z").
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import TypeAdapter

from app.session.machine import SessionState

STATE = TypeAdapter(SessionState)


def _scalar(value: object) -> str:
    """The stored form of what JSON has no type for."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime in session state")
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} has no stored form")


def to_json(data: Any) -> str:
    """Plain data (decimals and times included) as stored JSON text."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), default=_scalar)


_ADAPTERS: dict[type, TypeAdapter[Any]] = {}


def _adapter(kind: type) -> TypeAdapter[Any]:
    """One adapter per type, built on first use (building one walks the type's hints)."""
    adapter = _ADAPTERS.get(kind)
    if adapter is None:
        adapter = _ADAPTERS[kind] = TypeAdapter(kind)
    return adapter


def encode(value: Any) -> Any:
    """One value of the state (a premedication, a reaction) as JSON data in its stored form,
    fields in their declared order."""
    return json.loads(json.dumps(_adapter(type(value)).dump_python(value), default=_scalar))


def dumps(state: SessionState) -> str:
    return to_json(STATE.dump_python(state))


def loads(text: str) -> SessionState:
    return STATE.validate_json(text)
