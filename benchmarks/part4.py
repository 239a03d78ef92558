"""Part IV's costs (notebooks 12 and 13): linear against softmax attention, windows, the rolling and the GQA cache.

    python benchmarks/part4.py [--repeat 3] [--threads 1]

Three measurements, forward pass only (inference, no gradients), one sequence with one head of
width 64 unless said otherwise:

- **Linear against softmax attention.** ``helpers.efficient.linear_attention`` (``elu + 1``
  features; causal: chunks of 64 positions) against PyTorch's fused
  ``torch.nn.functional.scaled_dot_product_attention`` (``is_causal`` for the causal case), at
  lengths 256 to 8192. Reports the time ratio linear / fused at the shortest and the longest
  length, the **crossover**: the shortest length from which linear attention is faster at every
  longer length measured (0 when it is faster nowhere: "none up to L"), and the ratio of peak
  memory, linear / fused, at the longest length. Peak memory is ``helpers.efficient.peak_memory``,
  which counts the tensors a call creates (the same count on every machine) but not the scratch a
  fused kernel allocates internally (on the CPU, a few small per-thread tiles).
- **Windowed tiles.** ``helpers.efficient.tiled_attention(window=256, block_size=128)`` from 2,048
  to 16,384 tokens: the exponent ``p`` of time ``∝ L^p``, the least-squares slope on log-log axes.
  A window keeps the work per query fixed, so ``p`` should be close to 1 (target <= 1.2). Timed
  with ``helpers.timing.median_time`` (processor time on the CPU), the median of at least 5 runs.
  Beside it, causal tiling without a window: its time exponent (about 2, measured up to 8,192
  tokens) and the peak memory of both, whose exponents agree (tiling, not the window, keeps the
  memory linear; notebook 12 claims it), with the ratio windowed / causal at the longest length.
- **The rolling cache of sliding-window decoding.** ``helpers.efficient.RollingKVCache(1024)``
  against ``helpers.attention.KVCache`` (8 heads of 64 features, float32) after prompts of 1,024
  to 16,384 tokens: the cache bytes, the exponent of the peak memory of one decoding step (about 0
  for the rolling cache, 1 for the full cache with the window's mask) and the time of that step.
- **The cache with grouped key/value heads.** A ``helpers.attention.MultiHeadAttention`` (width
  256, 8 query heads) reads a 16-token prompt and decodes 8 tokens with a ``KVCache``, once with 8
  key/value heads and once with 2 (and 1). The ratio of ``KVCache.nbytes``, MHA / GQA, must be
  exactly ``H / G``.

Linear against fused: medians over repeats, the two taking turns (``benchmarks.interleaved_medians``).
"""

import argparse
import math
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from benchmarks import Row, devices, interleaved_medians, machine, print_report, set_threads  # noqa: E402
from helpers.attention import KVCache, MultiHeadAttention, scaled_dot_product_attention, sliding_window_mask  # noqa: E402
from helpers.efficient import RollingKVCache, linear_attention, peak_memory, tiled_attention  # noqa: E402
from helpers.timing import median_time  # noqa: E402

HEAD_DIM = 64
LINEAR_LENGTHS = (256, 512, 1024, 2048, 4096, 8192)
WINDOW, WINDOW_BLOCK = 256, 128
WINDOW_LENGTHS = (2048, 4096, 8192, 16384)
WINDOW_TARGET = 1.2
CAUSAL_LENGTHS = (2048, 4096, 8192)
ROLLING_WINDOW, ROLLING_HEADS, ROLLING_LENGTHS = 1024, 8, (1024, 2048, 4096, 8192, 16384)
CACHE_WIDTH, CACHE_HEADS, PROMPT, DECODED = 256, 8, 16, 8


def inputs(length: int, device, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(1, 1, length, HEAD_DIM, generator=generator).to(device) for _ in range(3)]  # (B, H, L, d)


def _slope(xs, ys) -> float:
    """Least-squares slope of log(y) against log(x): 1 means linear growth, 2 quadratic."""
    lx, ly = [math.log(x) for x in xs], [math.log(y) for y in ys]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    return sum((x - mx) * (y - my) for x, y in zip(lx, ly, strict=True)) / sum((x - mx) ** 2 for x in lx)


def crossover(lengths, ratios) -> int:
    """The shortest length from which ``ratios`` (linear / fused) stay below 1; 0 when none does."""
    found = 0
    for length, ratio in zip(reversed(lengths), reversed(ratios), strict=True):
        if ratio >= 1.0:
            break
        found = length
    return found


# --------------------------------------------------------------------------------------------
# (a) Linear attention against PyTorch's fused softmax attention
# --------------------------------------------------------------------------------------------


def _linear_rows(device, repeat: int, lengths=LINEAR_LENGTHS) -> list[Row]:
    rows = []
    for causal in (False, True):
        mode = "causal" if causal else "non-causal"
        fns = {
            "linear": lambda q, k, v, causal=causal: linear_attention(q, k, v, causal=causal),
            "fused": lambda q, k, v, causal=causal: F.scaled_dot_product_attention(q, k, v, is_causal=causal),
        }
        seconds, peaks = {}, {}
        for length in lengths:
            q, k, v = inputs(length, device)
            bound = {name: (lambda fn=fn, q=q, k=k, v=v: fn(q, k, v)) for name, fn in fns.items()}
            with torch.no_grad():
                seconds[length] = interleaved_medians(bound, repeat=repeat, warmup=1, device=device)
                peaks[length] = {name: peak_memory(fn, device=device) for name, fn in bound.items()}
        ratios = [seconds[n]["linear"] / seconds[n]["fused"] for n in lengths]
        for length, ratio in ((lengths[0], ratios[0]), (lengths[-1], ratios[-1])):
            rows.append(Row("linear attention time: linear / fused", f"{mode}, L={length}", device.type, ratio,
                            detail={f"{name} ms": round(1e3 * s, 2) for name, s in seconds[length].items()}))
        found = crossover(lengths, ratios)
        rows.append(Row("linear attention: crossover length (linear faster from here on)",
                        f"{mode}, L={lengths[0]}..{lengths[-1]}", device.type, float(found),
                        "reported" if found else f"none up to {lengths[-1]}", None,
                        {f"L={n} linear/fused": round(r, 2) for n, r in zip(lengths, ratios, strict=True)}))
        longest = lengths[-1]
        rows.append(Row("linear attention peak memory: linear / fused", f"{mode}, L={longest}", device.type,
                        peaks[longest]["linear"] / peaks[longest]["fused"],
                        detail={f"{name} MiB": round(b / 2**20, 3) for name, b in peaks[longest].items()}))
        for name in fns:
            slope = _slope(lengths, [peaks[n][name] for n in lengths])
            rows.append(Row(f"linear attention peak memory growth exponent: {name}", f"{mode}, L={lengths[0]}.."
                            f"{longest}", device.type, slope, "~1 (linear)", 0.8 < slope < 1.2,
                            {f"L={n} MiB": round(peaks[n][name] / 2**20, 3) for n in lengths}))
    return rows


# --------------------------------------------------------------------------------------------
# (b) Windowed tiled attention: growth of time with the length
# --------------------------------------------------------------------------------------------


def _tiled_seconds(lengths, device, repeat: int, **options) -> list[float]:
    """Median seconds of ``tiled_attention(q, k, v, block_size=WINDOW_BLOCK, **options)`` at each length."""
    seconds = []
    for length in lengths:
        q, k, v = inputs(length, device)
        with torch.no_grad():
            seconds.append(median_time(lambda q=q, k=k, v=v: tiled_attention(q, k, v, block_size=WINDOW_BLOCK,
                                                                             **options),
                                       repeat=repeat, device=device))
    return seconds


def _window_rows(device, repeat: int, lengths=WINDOW_LENGTHS) -> list[Row]:
    # A slope compares lengths timed one after another, so a shared machine's changing load bends
    # it: on the CPU, processor time (helpers.timing.median_time(device=)), which that load
    # inflates far less than the wall clock, and the median of at least 5 runs.
    seconds = _tiled_seconds(lengths, device, max(repeat, 5), window=WINDOW)
    slope = _slope(lengths, seconds)
    rows = [Row(f"windowed tiled attention: time growth exponent (window {WINDOW})",
                f"L={lengths[0]}..{lengths[-1]}", device.type, slope, f"<= {WINDOW_TARGET}",
                slope <= WINDOW_TARGET,
                {f"L={n} ms": round(1e3 * s, 1) for n, s in zip(lengths, seconds, strict=True)})]
    # Causal tiling without a window: the time grows as L^2, the memory as the window's does.
    causal_seconds = _tiled_seconds(CAUSAL_LENGTHS, device, max(repeat, 3), causal=True)
    slope = _slope(CAUSAL_LENGTHS, causal_seconds)
    rows.append(Row("causal tiled attention (no window): time growth exponent", f"L={CAUSAL_LENGTHS[0]}.."
                    f"{CAUSAL_LENGTHS[-1]}", device.type, slope, "~2 (quadratic)", slope > 1.6,
                    {f"L={n} ms": round(1e3 * s, 1) for n, s in zip(CAUSAL_LENGTHS, causal_seconds, strict=True)}))
    peaks = {"windowed": [], "causal": []}
    for length in lengths:
        q, k, v = inputs(length, device)
        with torch.no_grad():
            peaks["windowed"].append(peak_memory(lambda q=q, k=k, v=v: tiled_attention(
                q, k, v, window=WINDOW, block_size=WINDOW_BLOCK), device=device))
            peaks["causal"].append(peak_memory(lambda q=q, k=k, v=v: tiled_attention(
                q, k, v, causal=True, block_size=WINDOW_BLOCK), device=device))
    for name, values in peaks.items():
        slope = _slope(lengths, values)
        rows.append(Row(f"{name} tiled attention: peak memory growth exponent", f"L={lengths[0]}..{lengths[-1]}",
                        device.type, slope, "<= 1.2", slope <= 1.2,
                        {f"L={n} MiB": round(b / 2**20, 3) for n, b in zip(lengths, values, strict=True)}))
    rows.append(Row("tiled attention peak memory: windowed / causal", f"L={lengths[-1]}", device.type,
                    peaks["windowed"][-1] / peaks["causal"][-1], "~1 (tiling, not the window, bounds memory)"))
    return rows


# --------------------------------------------------------------------------------------------
# (b') The rolling key/value cache of sliding-window decoding
# --------------------------------------------------------------------------------------------


def _rolling_rows(device, repeat: int, lengths=ROLLING_LENGTHS) -> list[Row]:
    heads, window = ROLLING_HEADS, ROLLING_WINDOW
    new = torch.zeros(1, heads, 1, HEAD_DIM, device=device)  # (B, H, 1, hd): one decoding step

    def full_step(cache, past):
        keys, values = cache.append(new, new)
        band = sliding_window_mask(1, past + 1, window, offset=past, device=device)
        return scaled_dot_product_attention(new, keys, values, band)[0]

    def rolling_step(cache):
        keys, values, mask = cache.append(new, new)
        return scaled_dot_product_attention(new, keys, values, mask)[0]

    measured = {"full": {"bytes": [], "step": [], "seconds": []}, "rolling": {"bytes": [], "step": [], "seconds": []}}
    for length in lengths:
        prompt = torch.zeros(1, heads, length, HEAD_DIM, device=device)
        caches = {"full": KVCache(), "rolling": RollingKVCache(window)}
        for cache in caches.values():
            cache.append(prompt, prompt)
        steps = {"full": lambda cache=caches["full"]: full_step(cache, cache.length),
                 "rolling": lambda cache=caches["rolling"]: rolling_step(cache)}
        with torch.no_grad():
            for name, step in steps.items():
                measured[name]["bytes"].append(caches[name].nbytes)
                measured[name]["step"].append(peak_memory(step, device=device))
                measured[name]["seconds"].append(median_time(step, repeat=max(repeat, 5), device=device))
    rows = []
    for name, target, holds in (("rolling", "~0 (constant)", lambda p: p < 0.1), ("full", "~1", lambda p: p > 0.9)):
        slope = _slope(lengths, measured[name]["step"])
        rows.append(Row(f"sliding-window decoding, {name} cache: step peak memory growth exponent (window {window})",
                        f"L={lengths[0]}..{lengths[-1]}", device.type, slope, target, holds(slope),
                        {f"L={n} cache/step MiB": f"{b / 2**20:.3g}/{p / 2**20:.3g}"
                         for n, b, p in zip(lengths, measured[name]["bytes"], measured[name]["step"], strict=True)}))
    rows.append(Row("sliding-window decoding: step time, full / rolling cache", f"L={lengths[-1]}", device.type,
                    measured["full"]["seconds"][-1] / measured["rolling"]["seconds"][-1],
                    detail={f"{name} ms": round(1e3 * m["seconds"][-1], 3) for name, m in measured.items()}))
    return rows


# --------------------------------------------------------------------------------------------
# (c) The key/value cache with grouped heads
# --------------------------------------------------------------------------------------------


def cache_bytes(num_kv_heads: int, device) -> int:
    """Bytes a ``KVCache`` holds after a prompt of ``PROMPT`` tokens and ``DECODED`` single steps."""
    torch.manual_seed(0)
    layer = MultiHeadAttention(CACHE_WIDTH, CACHE_HEADS, num_kv_heads=num_kv_heads).to(device).eval()
    tokens = torch.randn(1, PROMPT + DECODED, CACHE_WIDTH, generator=torch.Generator().manual_seed(0)).to(device)
    cache = KVCache()
    with torch.no_grad():
        layer(tokens[:, :PROMPT], causal=True, cache=cache, need_weights=False)
        for t in range(PROMPT, PROMPT + DECODED):
            layer(tokens[:, t:t + 1], causal=True, cache=cache, need_weights=False)
    head_dim = CACHE_WIDTH // CACHE_HEADS
    expected = 2 * num_kv_heads * head_dim * (PROMPT + DECODED) * tokens.element_size()
    if cache.nbytes != expected:
        raise AssertionError(f"KVCache holds {cache.nbytes} bytes, the formula says {expected}")
    return cache.nbytes


def _cache_rows(device) -> list[Row]:
    mha = cache_bytes(CACHE_HEADS, device)
    rows = []
    for kv_heads in (2, 1):
        grouped = cache_bytes(kv_heads, device)
        ratio = mha / grouped
        exact = CACHE_HEADS // kv_heads
        rows.append(Row("KV cache bytes: MHA / GQA", f"H={CACHE_HEADS}, G={kv_heads}, {PROMPT}+{DECODED} tokens",
                        device.type, ratio, f"= H/G = {exact}", mha * kv_heads == grouped * CACHE_HEADS,
                        {"MHA bytes": mha, f"G={kv_heads} bytes": grouped}))
    return rows


def run(repeat: int = 3) -> list[Row]:
    rows = []
    for device in devices():
        rows += _linear_rows(device, repeat)
        rows += _window_rows(device, repeat)
        rows += _rolling_rows(device, repeat)
        rows += _cache_rows(device)
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default 1)")
    args = parser.parse_args(argv)
    set_threads(args.threads)
    print(", ".join(f"{k}: {v}" for k, v in machine().items()))
    rows = run(args.repeat)
    print_report(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
