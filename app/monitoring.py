"""What each process tells a hospital's monitoring at ``GET /metrics`` (app.metrics renders it):
its HTTP requests and their durations, its live screens and their fan-out, the timers it fired
and how late, the database faults it answered 503, the collector's pauses and when it started.

No label carries what a request sent: a route is named by its template
(``/api/v1/sessions/{session_id}/vitals``), a method outside the standard ones is "other", a
status by its class, and the other labels come from fixed lists (fault kinds, timer kinds,
screen kinds). So no id, name or other patient data reaches the output, and the number of
series stays bounded whatever clients send."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from app import db_faults, gc_tuning
from app.live.hub import BOARD, Hub, Topic
from app.metrics import Registry
from app.session.models import TIMER_KINDS

# When this process loaded the application: its start, for monitoring's purposes.
PROCESS_STARTED = time.time()

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"
# Seconds. A vitals POST takes 20-30 ms at the median (bench/post_cost.py); an export can take
# seconds.
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Seconds after the deadline; product-spec §10 asks for a step due within 0.2 s. A timer due
# while the server was down fires at start-up, minutes or hours late.
LATENESS_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 5.0, 30.0, 300.0)


def _by_screen_kind(values: Mapping[Topic, int]) -> dict[tuple[str, ...], float]:
    """Per-topic numbers of the hub summed into bedside (a session's view) and board."""
    bedside = sum(n for topic, n in values.items() if topic != BOARD)
    return {("bedside",): bedside, ("board",): values.get(BOARD, 0)}


class ServerMetrics:
    """The metrics of one application (one per process when served); the hub is read when
    scraped, as it is made at start-up."""

    def __init__(
        self, hub_of: Callable[[], Hub | None], started_at: float = PROCESS_STARTED
    ) -> None:
        self.hub_of = hub_of
        registry = self.registry = Registry()
        self.requests = registry.counter(
            "stepwise_http_requests_total",
            "HTTP requests answered, by method, route template and status class "
            '("unmatched": no route).',
            ("method", "route", "status"),
        )
        self.request_seconds = registry.histogram(
            "stepwise_http_request_duration_seconds",
            "Time from a request's arrival to the end of its answer, by route template.",
            REQUEST_BUCKETS,
            ("route",),
        )
        registry.sampled(
            "stepwise_live_screens",
            "Live screens open in this process, by kind (bedside: a session's view).",
            "gauge",
            lambda: self._per_kind(lambda hub: {t: len(s) for t, s in hub.screens.items()}),
            ("kind",),
        )
        registry.sampled(
            "stepwise_live_renders_total",
            "Live updates rendered once for every screen that shows them (snapshots "
            "excluded), by kind.",
            "counter",
            lambda: self._per_kind(lambda hub: hub.renders),
            ("kind",),
        )
        registry.sampled(
            "stepwise_live_role_renders_total",
            "Parts of bedside updates rendered once per role (sign-offs, actions).",
            "counter",
            self._role_renders,
        )
        registry.sampled(
            "stepwise_live_sent_bytes_total",
            "Text of live updates and heartbeats queued to screens (snapshots excluded), by "
            "kind; counted in characters, which are bytes for ASCII.",
            "counter",
            lambda: self._per_kind(lambda hub: hub.sent_bytes),
            ("kind",),
        )
        self.timers_fired = registry.counter(
            "stepwise_timers_fired_total", "Timers this process fired, by kind.", ("kind",)
        )
        self.timer_lateness = registry.histogram(
            "stepwise_timer_lateness_seconds",
            "How long after its deadline each timer fired, by kind (the timer's late_seconds; "
            "on a training clock, in its seconds).",
            LATENESS_BUCKETS,
            ("kind",),
        )
        self.database_faults = registry.counter(
            "stepwise_database_faults_total",
            "Requests answered 503 because the database could not do what they needed, by fault.",
            ("kind",),
        )
        for kind in TIMER_KINDS:
            self.timers_fired.inc(0, kind=kind)
        for fault in db_faults.FAULTS:
            self.database_faults.inc(0, kind=fault.kind)
        pauses = gc_tuning.PAUSES
        registry.sampled(
            "stepwise_gc_collections_total",
            "Garbage collections since start-up, by generation.",
            "counter",
            lambda: {(str(g),): n for g, n in enumerate(pauses.collections)},
            ("generation",),
        )
        registry.sampled(
            "stepwise_gc_pause_seconds_total",
            "Time the garbage collector held the process since start-up.",
            "counter",
            lambda: {(): pauses.total_ms / 1000},
        )
        registry.sampled(
            "stepwise_gc_long_pauses_total",
            f"Garbage collections that held the process over {gc_tuning.LONG_PAUSE_MS:g} ms.",
            "counter",
            lambda: {(): pauses.long_ones},
        )
        registry.sampled(
            "stepwise_gc_longest_pause_seconds",
            "The longest garbage collection pause since start-up.",
            "gauge",
            lambda: {(): pauses.longest_ms / 1000},
        )
        registry.sampled(
            "stepwise_process_start_time_seconds",
            "When this process started, as it loaded the application (Unix time, seconds).",
            "gauge",
            lambda: {(): started_at},
        )

    def _per_kind(self, read: Callable[[Hub], Mapping[Topic, int]]) -> dict[tuple[str, ...], float]:
        """A per-topic number of the hub, by screen kind; all zero before start-up."""
        hub = self.hub_of()
        return _by_screen_kind(read(hub) if hub is not None else {})

    def _role_renders(self) -> dict[tuple[str, ...], float]:
        hub = self.hub_of()
        return {(): sum(hub.role_renders.values()) if hub is not None else 0}

    def request_done(self, method: str, route: str | None, status: int, seconds: float) -> None:
        """One HTTP request answered: `route` is its template, None when no route matched."""
        template = route or UNMATCHED
        self.requests.inc(
            method=method if method in METHODS else "other",
            route=template,
            status=f"{status // 100}xx",
        )
        self.request_seconds.observe(seconds, route=template)

    def timer_fired(self, kind: str, late_seconds: float) -> None:
        self.timers_fired.inc(kind=kind)
        self.timer_lateness.observe(late_seconds, kind=kind)

    def database_fault(self, kind: str) -> None:
        self.database_faults.inc(kind=kind)

    def render(self) -> str:
        return self.registry.render()
