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


def median_time(fn, *, repeat: int = 5, warmup: int = 1, device=None) -> float:
    """Median seconds of ``fn()`` over ``repeat`` runs, after ``warmup`` runs.

    With ``device=None`` (the default) the wall clock is used, after ``torch.cuda.synchronize()``
    whenever CUDA is present. With a ``device`` given, the clock follows it: on a CUDA device the
    wall clock, read once the GPU has finished (kernels run asynchronously: without the sync the
    clock measures only their launch); on the CPU the processor time of this process, which other
    programs running on the machine inflate far less than the wall clock.
    """
    on_gpu = torch.cuda.is_available() if device is None else torch.device(device).type == "cuda"
    clock = time.perf_counter if device is None or on_gpu else time.process_time
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        if on_gpu:
            torch.cuda.synchronize()
        start = clock()
        fn()
        if on_gpu:
            torch.cuda.synchronize()
        times.append(clock() - start)
    return statistics.median(times)


def show_time(seconds: float) -> str:
    """``'12.3 ms (timed)'``: a duration, marked so the tests mask it."""
    unit, factor = next((u, f) for u, f in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)) if seconds >= f or u == "µs")
    return f"{seconds / factor:.3g} {unit} (timed)"


def show_ratio(ratio: float) -> str:
    """``'×3.1 (timed)'``: a speed ratio, marked so the tests mask it."""
    return f"×{ratio:.2g} (timed)"
