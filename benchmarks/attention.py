"""Tiled attention (``helpers.efficient``) against PyTorch's fused kernel and the explicit version.

    python benchmarks/attention.py [--lengths 1024 2048 4096 8192] [--repeat 3]

Forward pass, inference (no gradients), one sequence with one head of width 64, non-causal at
every length plus a causal case (without the explicit version) at the longest. Three contenders
compute the same output:

- ``fused``: ``torch.nn.functional.scaled_dot_product_attention``;
- ``tiled``: ``helpers.efficient.tiled_attention`` (plain PyTorch, one tile of scores at a time),
  with its default ``block_size=128`` and, at the longest length, also with 256;
- ``explicit``: ``helpers.attention.scaled_dot_product_attention`` (every score at once).

Time: medians over repeats, the contenders taking turns. Peak memory: on the CPU each case runs in
a fresh process, and the memory is the growth of the process's peak resident size during the one
call (Linux: ``VmHWM`` after resetting it through ``/proc/self/clear_refs``), so it includes what
a fused kernel allocates internally; elsewhere ``helpers.efficient.peak_memory`` counts tensors.
On CUDA it is the allocator's peak counter.
"""

import argparse
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from benchmarks import Row, devices, format_table, interleaved_medians, machine, set_threads  # noqa: E402
from helpers.attention import scaled_dot_product_attention  # noqa: E402
from helpers.efficient import peak_memory, tiled_attention  # noqa: E402

HEAD_DIM = 64
LENGTHS = (1024, 2048, 4096, 8192)
# Tiled / fused at the longest length. Sources: the tiled loop does the fused kernel's arithmetic plus Python's
# overhead per tile, which at L = 8192 (4,096 tiles of 128 x 128) should cost less than twice the arithmetic
# again (time within 3x); both hold the output and a few tiles, not L x L scores (memory within 1.5x).
TIME_TARGET, MEMORY_TARGET = 3.0, 1.5


def contenders(causal: bool = False, *, longest: bool = False) -> dict:
    """name -> attention function ``(q, k, v) -> output``."""
    found = {
        "fused": lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=causal),
        "tiled": lambda q, k, v: tiled_attention(q, k, v, causal=causal),
        "explicit": lambda q, k, v: scaled_dot_product_attention(q, k, v, causal=causal)[0],
    }
    if longest:  # the block size trades Python overhead against tile memory (notebook 10's slider)
        found["tiled256"] = lambda q, k, v: tiled_attention(q, k, v, causal=causal, block_size=256)
    if causal:  # the explicit version computes every score and then masks: no faster, seconds more to wait
        del found["explicit"]
    return found


def _bound(functions: dict, *args) -> dict:
    return {name: (lambda fn=fn: fn(*args)) for name, fn in functions.items()}


def inputs(length: int, device, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(1, 1, length, HEAD_DIM, generator=generator).to(device) for _ in range(3)]  # (B, H, L, d)


# --------------------------------------------------------------------------------------------
# Peak memory
# --------------------------------------------------------------------------------------------


def _status_bytes(field: str) -> int:
    with open("/proc/self/status") as status:
        return 1024 * int(re.search(rf"^{field}:\s+(\d+) kB", status.read(), re.MULTILINE).group(1))


def _resident_peak(name: str, length: int) -> int:
    """In this (fresh) process: growth of the peak resident memory during one call."""
    fn = contenders(longest=True)[name]
    with torch.no_grad():
        fn(*inputs(256, "cpu"))  # load the kernels (and their libraries' buffers) first
        q, k, v = inputs(length, "cpu")
        before = _status_bytes("VmRSS")
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")  # reset VmHWM, the peak resident size, to the current size
        out = fn(q, k, v)
        peak = _status_bytes("VmHWM") - before
        del out
    return peak


def _resident_peak_supported() -> bool:
    try:
        _status_bytes("VmHWM")
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
        return True
    except (OSError, AttributeError):
        return False


def memory(name: str, length: int, device) -> int:
    """Peak bytes one call of contender ``name`` adds, at sequence length ``length``."""
    if device.type == "cpu" and _resident_peak_supported():
        result = subprocess.run([sys.executable, "-m", "benchmarks.attention", "--memory-case", name, str(length)],
                                cwd=ROOT, capture_output=True, text=True, check=True,
                                env={**os.environ, "PYTHONPATH": str(ROOT)})
        return int(result.stdout.split()[-1])
    q, k, v = inputs(length, device)
    with torch.no_grad():
        return peak_memory(lambda: contenders(longest=True)[name](q, k, v), device=device)


# --------------------------------------------------------------------------------------------
# The table
# --------------------------------------------------------------------------------------------


def _slope(lengths, values):
    """Least-squares slope of log(value) against log(length): 2 means quadratic growth."""
    return float(np.polyfit(np.log(lengths), np.log(values), 1)[0])


LABELS = {"tiled": "tiled", "tiled256": "tiled (block 256)", "explicit": "explicit"}


def _memory_table(lengths, device) -> dict:
    """``{length: {name: bytes}}``; on the CPU, two child processes at a time (memory does not
    depend on the load, and the timings run after, alone)."""
    longest = max(lengths)
    cases = [(name, length) for length in lengths for name in contenders(longest=length == longest)]
    with ThreadPoolExecutor(max_workers=2 if device.type == "cpu" else 1) as pool:
        sizes = list(pool.map(lambda case: memory(*case, device), cases))
    table: dict = {length: {} for length in lengths}
    for (name, length), size in zip(cases, sizes, strict=True):
        table[length][name] = size
    return table


def run(lengths=LENGTHS, repeat: int = 3) -> list[Row]:
    rows = []
    longest = max(lengths)
    for device in devices():
        peaks = _memory_table(lengths, device)
        for length in lengths:
            q, k, v = inputs(length, device)
            for causal in ([False, True] if length == longest else [False]):
                fns = _bound(contenders(causal, longest=length == longest), q, k, v)
                with torch.no_grad():
                    for name in fns:
                        if name != "explicit":  # also the warm-up of these contenders
                            torch.testing.assert_close(fns[name](), fns["fused"](), atol=1e-5, rtol=0)
                    seconds = interleaved_medians(fns, repeat=repeat, warmup=0, device=device)
                case = f"L={length}" + (" causal" if causal else "")
                detail = {f"{name} ms": round(1e3 * s, 1) for name, s in seconds.items()}
                for name in seconds.keys() - {"fused"}:
                    ratio = seconds[name] / seconds["fused"]
                    target = length == longest and name.startswith("tiled")
                    rows.append(Row(f"attention time: {LABELS[name]} / fused", case, device.type, ratio,
                                    f"<= {TIME_TARGET}" if target else "", ratio <= TIME_TARGET if target else None,
                                    detail))
            del q, k, v
            detail = {f"{name} MiB": round(b / 2**20, 2) for name, b in peaks[length].items()}
            for name in peaks[length].keys() - {"fused"}:
                ratio = peaks[length][name] / peaks[length]["fused"]
                target = length == longest and name.startswith("tiled")
                rows.append(Row(f"peak memory: {LABELS[name]} / fused", f"L={length}", device.type, ratio,
                                f"<= {MEMORY_TARGET}" if target else "", ratio <= MEMORY_TARGET if target else None,
                                detail))
        if len(lengths) > 1:
            for name, target in (("explicit", "~2 (quadratic)"), ("tiled", "< 1.3 (not quadratic)")):
                slope = _slope(lengths, [peaks[n][name] for n in lengths])
                met = slope > 1.8 if name == "explicit" else slope < 1.3
                rows.append(Row(f"peak memory growth exponent: {name}", f"L={min(lengths)}..{longest}",
                                device.type, slope, target, met,
                                {f"{n} MiB": round(peaks[n][name] / 2**20, 2) for n in lengths}))
    order = ["tiled", "tiled (block 256)", "explicit"]
    return sorted(rows, key=lambda r: (r.device, not r.benchmark.startswith("attention"),
                                       r.benchmark.startswith("peak memory growth"),
                                       int(r.case.split("=")[1].split()[0].split(".")[0]) if "=" in r.case else 0,
                                       next((i for i, o in enumerate(order) if f": {o} /" in r.benchmark), 9),
                                       r.case))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=list(LENGTHS))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default 1)")
    parser.add_argument("--memory-case", nargs=2, metavar=("NAME", "LENGTH"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    set_threads(args.threads)
    if args.memory_case:  # the child process of memory()
        print(_resident_peak(args.memory_case[0], int(args.memory_case[1])))
        return 0
    print(", ".join(f"{k}: {v}" for k, v in machine().items()))
    rows = run(args.lengths, args.repeat)
    print(format_table(rows))
    for row in rows:
        if row.detail:
            medians = ", ".join(f"{k} {v}" for k, v in row.detail.items())
            print(f"[{row.device}] {row.benchmark}, {row.case}: {medians}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
