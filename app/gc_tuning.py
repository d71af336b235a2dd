"""The garbage collector, set for a server that keeps live screens waiting on it.

CPython's full collections walk every tracked object; with a few hundred open screens that is
a pause of tens of milliseconds in which no update reaches any screen (bench/fanout.py shows it
as the tail of the fan-out latency). What start-up builds (modules, templates, the app, its
engine) lives as long as the process, so it is moved out of the collector's sight once, and the
young generation is collected less often, in larger and rarer passes.
"""

from __future__ import annotations

import atexit
import gc
import logging
import time
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)

# Young generation after this many new container objects (CPython's default: 700); the older
# generations after this many passes of the one below (defaults: 10 and 10). Measured with
# bench/fanout.py (500 screens): at 20,000 a young pass took 25-40 ms and 5-12 passes a run
# went over 20 ms; at 3,000 none did, and the collector's time in all fell by half.
THRESHOLDS = (3_000, 10, 50)

_settled = False


def settle_after_start_up() -> None:
    """Once per process: collect what start-up left behind, freeze the rest, raise the
    thresholds. Later start-ups (tests build many apps in one process) change nothing."""
    global _settled
    if _settled:
        return
    _settled = True
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
    gc.callbacks.append(PAUSES.on_collection)
    # The collections of the interpreter's shutdown hold no screen up: not worth a warning.
    atexit.register(gc.callbacks.remove, PAUSES.on_collection)


# A collection pausing the server longer than this is logged: every screen waits for it.
LONG_PAUSE_MS = 20.0


@dataclass
class Pauses:
    """The collector's pauses in this process since it settled: how many per generation, the
    longest, and how many went over LONG_PAUSE_MS (shown by /healthz, read by the benches)."""

    collections: list[int] = field(default_factory=lambda: [0, 0, 0])
    longest_ms: float = 0.0
    long_ones: int = 0
    total_ms: float = 0.0
    _started: float = 0.0

    def on_collection(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        took = (time.perf_counter() - self._started) * 1000
        generation = info.get("generation", 0)
        self.collections[generation] += 1
        self.total_ms += took
        self.longest_ms = max(self.longest_ms, took)
        if took > LONG_PAUSE_MS:
            self.long_ones += 1
            logger.warning(
                "garbage collection (generation %d) paused for %.1f ms", generation, took
            )

    def as_dict(self) -> dict[str, Any]:
        return {
            "collections": list(self.collections),
            "longest_pause_ms": round(self.longest_ms, 2),
            "pauses_over_20_ms": self.long_ones,
            "total_pause_ms": round(self.total_ms, 1),
        }


PAUSES = Pauses()
