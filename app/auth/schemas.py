from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(max_length=64)
    role: str = Field(max_length=20)
    password: str = Field(max_length=256, repr=False)
    display_name: str | None = Field(default=None, max_length=120)


class AccountChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=500)


class UserUnlocked(BaseModel):
    username: str
    failures_cleared: int  # failed sign-ins forgotten, from every address
    throttles_ended: int


class UserOut(BaseModel):
    id: int
    username: str
    display_name: str
    role: str
    disabled: bool
    created_at: datetime


class Me(BaseModel):
    username: str
    display_name: str
    role: str
    session_expires_at: datetime
