"""The numbers behind the claims of notebooks 07 and 10: timing and memory ratios, measured in one run.

    python -m benchmarks                  # every benchmark, the whole table (about 2-3 minutes on 2 cores)
    python -m benchmarks --markdown FILE  # also write the table and the machine to FILE
    python benchmarks/mha.py              # one benchmark alone

Every benchmark reports *ratios* (ours / PyTorch's, or slow / fast), the medians over repeats,
on the CPU and, when one is present, on a CUDA GPU. Absolute times depend on the machine; the
ratios are what the notebooks' prose relies on. Benchmarks are not part of the test suite.

Threads: by default PyTorch runs on one CPU thread, as in the notebooks (``helpers.setup``), so
that a busy shared machine disturbs the ratios less; ``--threads N`` changes it.
"""

import os
import platform
import statistics
import time
from dataclasses import dataclass, field

import torch

__all__ = ["Row", "devices", "machine", "format_table", "set_threads", "interleaved_medians"]


@dataclass
class Row:
    """One line of the table: ``value`` is a ratio (or an exponent) on ``device``."""

    benchmark: str
    case: str
    device: str
    value: float
    target: str = ""  # e.g. "<= 1.0"
    met: bool | None = None  # None: no target for this line
    detail: dict = field(default_factory=dict)  # absolute medians, for the record


def devices() -> list[torch.device]:
    """The CPU, and the GPU when one is present."""
    found = [torch.device("cpu")]
    if torch.cuda.is_available():
        found.append(torch.device("cuda"))
    return found


def set_threads(threads: int | None) -> int:
    torch.set_num_threads(threads or 1)
    return torch.get_num_threads()


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict:
    """What the numbers came from."""
    facts = {
        "cpu": _cpu_model(),
        "cores (nproc)": os.cpu_count(),
        "torch threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    if hasattr(os, "getloadavg"):
        facts["load average (1, 5, 15 min) at start"] = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    if torch.cuda.is_available():
        facts["gpu"] = torch.cuda.get_device_name()
    return facts


def format_table(rows: list[Row], *, markdown: bool = False) -> str:
    """Rows grouped by (benchmark, case), one column per device."""
    columns = [d.type for d in devices()]
    keyed: dict[tuple, dict] = {}
    for row in rows:
        entry = keyed.setdefault((row.benchmark, row.case), {"target": row.target})
        verdict = "" if row.met is None else (" ok" if row.met else " MISSED")
        entry[row.device] = f"{row.value:.2f}{verdict}"
    header = ["benchmark", "case", *columns, "target"]
    lines = [header] + [[b, c, *(e.get(col, "-") for col in columns), e["target"]] for (b, c), e in keyed.items()]
    if markdown:
        out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        out += ["| " + " | ".join(str(x) for x in line) + " |" for line in lines[1:]]
        return "\n".join(out)
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(str(x).ljust(w) for x, w in zip(line, widths, strict=True)).rstrip() for line in lines)


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def interleaved_medians(functions: dict, *, repeat: int = 3, warmup: int = 1, device=None) -> dict:
    """Median seconds of each ``functions[name]()``, the runs taken in turn (A, B, C, A, B, C, ...).

    Taking turns spreads a shared machine's changing load over all contenders alike, which keeps
    their ratio steadier than timing one after the other.
    """
    device = torch.device("cpu") if device is None else torch.device(device)
    for fn in functions.values():
        for _ in range(warmup):
            fn()
    times = {name: [] for name in functions}
    for _ in range(repeat):
        for name, fn in functions.items():
            _sync(device)
            start = time.perf_counter()
            fn()
            _sync(device)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def print_report(rows: list[Row], header: str = "medians") -> None:
    """What a benchmark module prints when run on its own: the table, then each row's medians."""
    print(format_table(rows))
    for row in rows:
        print(f"[{row.device}] {header}: " + ", ".join(f"{k} {v}" for k, v in row.detail.items()))
