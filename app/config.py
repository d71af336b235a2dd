"""Runtime configuration, read from ``STEPWISE_*`` environment variables."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app import localtime
from app.labels.checks import DEFAULT_WRISTBAND_PATTERN
from app.labels.policy import (
    DEFAULT_HIGH_ALERT,
    DEFAULT_STABILITY_HOURS,
    LabelPolicy,
    drug_names,
    parse_stability,
    wristband_pattern,
)
from app.tolerance import TolerancePolicy, ToleranceWindow, drug_key

# Good enough for a laptop, useless for anything else: production refuses to start with it.
DEV_SECRET_KEY = "dev-insecure-secret-key-change-me"
MIN_PRODUCTION_SECRET_LENGTH = 32

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///var/stepwise.db"

Environment = Literal["development", "production", "test"]
ClockMode = Literal["real", "accelerated", "manual"]
LogLevel = Literal["critical", "error", "warning", "info", "debug"]
LogFormat = Literal["text", "json"]


def parse_windows(text: str, default: ToleranceWindow | None = None) -> dict[str, ToleranceWindow]:
    """'penicillin=24/48, carboplatin=12' -> {drug: window}; a clear ValueError otherwise.
    One number sets when tolerance stops persisting (the uncertain band then ends at the
    default's end, or at that number when it is later); two set both."""
    base = default or ToleranceWindow()
    windows: dict[str, ToleranceWindow] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        drug, sep, hours = part.partition("=")
        if not sep or not drug.strip():
            raise ValueError(
                f"{part!r}: write drug=hours or drug=hours/hours, e.g. carboplatin=24/48"
            )
        first, slash, second = hours.partition("/")
        try:
            persist = Decimal(first.strip())
            uncertain = Decimal(second.strip()) if slash else None
        except InvalidOperation:
            raise ValueError(f"{part!r}: the hours must be numbers") from None
        if uncertain is None and persist.is_finite():
            uncertain = max(persist, base.uncertain_hours)
        try:
            windows[drug_key(drug)] = ToleranceWindow(persist, uncertain or persist)
        except ValueError as error:
            raise ValueError(f"{part!r}: {error}") from None
    return windows


class Settings(BaseSettings):
    """Every setting of the application; see the configuration table in README.md."""

    model_config = SettingsConfigDict(env_prefix="STEPWISE_", extra="forbid")

    env: Environment = "development"
    # A relative SQLite path is resolved against the working directory (the repository root
    # when started through make).
    database_url: str = DEFAULT_DATABASE_URL
    # PostgreSQL: no request waits for the database longer than this in all (each statement,
    # a lock wait included, each connect and each wait for a pooled connection at most half);
    # the request is answered 503 instead of hanging.
    database_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    secret_key: SecretStr = SecretStr(DEV_SECRET_KEY)
    clock_mode: ClockMode = "real"
    clock_speed: float = Field(default=1.0, ge=1.0)
    log_level: LogLevel = "info"
    log_format: LogFormat = "text"  # "json": one JSON object per line, for a log collector
    # SIGTERM: stop taking connections, finish the requests under way (for at most this long),
    # tell the live screens to reconnect (1012), finish the timer pass, then exit.
    shutdown_grace_seconds: int = Field(default=20, ge=1, le=600)
    # Login sessions: a tablet left alone is signed out after the idle timeout; nobody stays
    # signed in longer than the absolute timeout (about a shift).
    session_idle_minutes: int = Field(default=30, ge=1, le=24 * 60)
    session_absolute_hours: int = Field(default=12, ge=1, le=7 * 24)
    # Login throttling (app/auth/throttle.py): after this many failures of one user name from
    # one address within the window (from one address for any name: 4x the count), each further
    # attempt there waits 1 s, 2 s, 4 s … up to the window. Other addresses are never blocked.
    login_max_failures: int = Field(default=5, ge=1, le=100)
    login_failure_window_minutes: int = Field(default=15, ge=1, le=24 * 60)
    # Extra origins (scheme://host[:port]) allowed for unsafe requests and websocket
    # handshakes besides the request's own Host, e.g. behind a proxy. Comma-separated.
    allowed_origins: str = ""
    # Escalations are also POSTed as JSON to this URL (optional), retried with backoff, never
    # holding up the session.
    escalation_webhook: str = Field(default="", pattern=r"^(https?://\S+)?$")
    webhook_attempts: int = Field(default=5, ge=1, le=20)
    webhook_backoff_seconds: float = Field(default=1.0, gt=0, le=300)
    # Tolerance after the last full dose: it may persist for this many hours, is uncertain up
    # to the second figure and lost after it; per drug as "penicillin G=24/48,carboplatin=12".
    tolerance_hours: Decimal = Field(default=Decimal(24), gt=0, le=24 * 30)
    tolerance_uncertain_hours: Decimal = Field(default=Decimal(48), gt=0, le=24 * 30)
    tolerance_hours_by_drug: str = ""
    # Vitals are due at each step and again at most this often within a step (the long last
    # step and the observation included); a session may set its own.
    vitals_every_minutes: Decimal = Field(default=Decimal(30), ge=5, le=120)
    # How often (wall seconds) each process looks for lost contact: sessions whose vitals are
    # overdue and that no bedside screen has shown for minutes.
    contact_check_seconds: float = Field(default=5.0, gt=0, le=60)
    # The facility's time zone (IANA name): every page, report and CSV shows local time with
    # the zone named, and every time typed is read in it. Empty: the machine's zone.
    timezone: str = ""
    # Live screens: the heartbeat interval, and how many updates a screen may fall behind
    # before its socket is closed (it reconnects and resyncs from a snapshot).
    live_heartbeat_seconds: float = Field(default=5.0, gt=0, le=60)
    live_queue_size: int = Field(default=64, ge=1, le=10_000)
    # How often (wall seconds) each process closes the live screens whose sign-in has ended.
    live_login_check_seconds: float = Field(default=2.0, gt=0, le=60)
    # Right bag, right patient: bags are labelled when verified, and a pump start that hangs a
    # new bag needs its label scanned (the first also the wristband). Off only where no
    # scanner or camera is at the bedside.
    scan_to_verify: bool = True
    # A wristband's barcode: the MRN, or a pattern whose group "mrn" is the MRN's part.
    wristband_pattern: str = DEFAULT_WRISTBAND_PATTERN
    # High-alert drugs: a second clinician co-signs the pump rate at the start, at each bag
    # change and after a resume. Comma-separated names; empty: none.
    high_alert_drugs: str = DEFAULT_HIGH_ALERT
    # How long a prepared bag keeps (its label's expiry); per drug as "paclitaxel=27".
    label_stability_hours: Decimal = Field(default=DEFAULT_STABILITY_HOURS, gt=0, le=24 * 14)
    label_stability_hours_by_drug: str = ""

    @field_validator("env", "clock_mode", "log_level", "log_format", mode="before")
    @classmethod
    def _lowercase(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        localtime.resolve(value)  # a clear ValueError names the zone
        return value.strip()

    @model_validator(mode="after")
    def _tolerance_windows(self) -> Settings:
        _ = self.tolerance  # a clear ValueError names the bad entry
        _ = self.labels
        return self

    @property
    def labels(self) -> LabelPolicy:
        return LabelPolicy(
            high_alert=drug_names(self.high_alert_drugs),
            stability_hours=self.label_stability_hours,
            stability_by_drug=parse_stability(self.label_stability_hours_by_drug),
            wristband_pattern=wristband_pattern(self.wristband_pattern),
        )

    @property
    def tolerance(self) -> TolerancePolicy:
        default = ToleranceWindow(self.tolerance_hours, self.tolerance_uncertain_hours)
        return TolerancePolicy(default, parse_windows(self.tolerance_hours_by_drug, default))

    @model_validator(mode="after")
    def _refuse_weak_secret_in_production(self) -> Settings:
        if self.env != "production":
            return self
        secret = self.secret_key.get_secret_value()
        if secret == DEV_SECRET_KEY:
            raise ValueError(
                "STEPWISE_SECRET_KEY is still the development default; "
                "set a random value of at least "
                f"{MIN_PRODUCTION_SECRET_LENGTH} characters when STEPWISE_ENV=production"
            )
        if len(secret) < MIN_PRODUCTION_SECRET_LENGTH:
            raise ValueError(
                f"STEPWISE_SECRET_KEY must be at least {MIN_PRODUCTION_SECRET_LENGTH} "
                "characters long when STEPWISE_ENV=production"
            )
        return self


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment once."""
    return Settings()
