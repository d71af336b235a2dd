"""Request and answer bodies of the patients API.

The models check the shape (which fields, which JSON types); the values themselves are checked
by app.patients.rules inside the service, so forms and the API refuse the same things with the
same messages. Length limits here only bound the size of a request.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator

from app.patients.rules import SEXES

_TEXT_BOUND = 400  # well above every one-line limit; the service gives the exact one


def _date_text_only(value: Any) -> Any:
    # pydantic would read a bare number as a Unix timestamp: 20200101 would become a 1970 date.
    if value is not None and not isinstance(value, str):
        raise ValueError("birth_date must be a date written YYYY-MM-DD")
    return value


def _number_not_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("weight_kg must be a number of kilograms")
    return value


class PatientCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mrn: str = Field(max_length=_TEXT_BOUND, description="medical record number; spaces removed")
    family_name: str = Field(max_length=_TEXT_BOUND)
    given_name: str = Field(max_length=_TEXT_BOUND)
    birth_date: date = Field(description="YYYY-MM-DD, not in the future")
    sex: str | None = Field(default=None, max_length=_TEXT_BOUND, description=" | ".join(SEXES))
    weight_kg: Decimal = Field(description="0.3 to 400 kg, at most 2 decimal places")
    asthma: StrictBool = Field(description="asthma makes spirometry part of every vitals set")
    allergy_history: str | None = Field(default=None, max_length=8000, description="≤ 4000 chars")

    _birth_date_text = field_validator("birth_date", mode="before")(_date_text_only)
    _weight_number = field_validator("weight_kg", mode="before")(_number_not_bool)


class PatientUpdate(BaseModel):
    """Only the fields present in the body change; ``null`` clears sex or allergy_history."""

    model_config = ConfigDict(extra="forbid")

    mrn: str | None = Field(default=None, max_length=_TEXT_BOUND)
    family_name: str | None = Field(default=None, max_length=_TEXT_BOUND)
    given_name: str | None = Field(default=None, max_length=_TEXT_BOUND)
    birth_date: date | None = None
    sex: str | None = Field(default=None, max_length=_TEXT_BOUND)
    weight_kg: Decimal | None = None
    asthma: StrictBool | None = None
    allergy_history: str | None = Field(default=None, max_length=8000)

    _birth_date_text = field_validator("birth_date", mode="before")(_date_text_only)
    _weight_number = field_validator("weight_kg", mode="before")(_number_not_bool)

    def changes(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)


class PatientOut(BaseModel):
    id: int
    mrn: str
    family_name: str
    given_name: str
    birth_date: date
    age_years: int
    sex: str | None
    weight_kg: Decimal
    asthma: bool
    allergy_history: str | None
    created_at: datetime
    created_by: int
    updated_at: datetime
