"""Timing that a notebook can print without breaking its tests.

Wall-clock numbers change from run to run and machine to machine, so every printed time or
speed ratio goes through ``show_time``/``show_ratio``, which mark it with a stopwatch sign:
``tests/sanitize.cfg`` replaces each marked value before nbval compares outputs. The prose
around such a number states only the trend, never the value.
"""

import statistics
import time

import torch

__all__ = ["median_time", "show_time", "show_ratio"]


def median_time(fn, *, repeat: int = 5, warmup: int = 1) -> float:
    """Median wall-clock seconds of ``fn()`` over ``repeat`` runs, after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def show_time(seconds: float) -> str:
    """``'12.3 ms (timed)'``: a duration, marked so the tests mask it."""
    unit, factor = next((u, f) for u, f in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)) if seconds >= f or u == "µs")
    return f"{seconds / factor:.3g} {unit} (timed)"


def show_ratio(ratio: float) -> str:
    """``'×3.1 (timed)'``: a speed ratio, marked so the tests mask it."""
    return f"×{ratio:.2g} (timed)"
