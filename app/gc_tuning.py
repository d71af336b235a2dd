"""The garbage collector, set for a server that keeps live screens waiting on it.

CPython's full collections walk every tracked object; with a few hundred open screens that is
a pause of tens of milliseconds in which no update reaches any screen (bench/fanout.py shows it
as the tail of the fan-out latency). What start-up builds (modules, templates, the app, its
engine) lives as long as the process, so it is moved out of the collector's sight once, and the
young generation is collected less often, in larger and rarer passes.
"""

from __future__ import annotations

import gc

# Young generation after this many new container objects (CPython's default: 700); the older
# generations after this many passes of the one below (defaults: 10 and 10).
THRESHOLDS = (20_000, 20, 50)

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
