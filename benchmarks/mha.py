"""``helpers.attention.MultiHeadAttention`` against ``torch.nn.MultiheadAttention``, forward + backward.

    python benchmarks/mha.py [--repeat 3] [--threads 1]

Causal self-attention, batch 4, length 1024, width 256, 8 heads (issue 2). Two paths of ours:
the fused one (``need_weights=False``: PyTorch's ``scaled_dot_product_attention`` does the
heads) and the explicit one the notebooks teach (``need_weights=True``: matmul, softmax, matmul).
PyTorch's module runs with ``need_weights=False`` and ``is_causal=True``, its fastest path.
Prints time ratios, ours / PyTorch's: below 1 means ours is faster.
"""

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
from torch import nn  # noqa: E402

from benchmarks import Row, devices, interleaved_medians, machine, print_report, set_threads  # noqa: E402
from helpers.attention import MultiHeadAttention, causal_mask  # noqa: E402

BATCH, LENGTH, WIDTH, HEADS = 4, 1024, 256, 8


def _step(forward, x):
    """One forward and backward pass; the input's gradient is cleared so runs do not accumulate."""
    def run():
        x.grad = None
        forward(x).sum().backward()
    return run


def _paths(device):
    """The three contenders, each ``x -> output``, holding the same parameters."""
    torch.manual_seed(0)
    reference = nn.MultiheadAttention(WIDTH, HEADS, batch_first=True).to(device)
    ours = MultiHeadAttention.from_torch(reference)
    # torch.nn: True = may NOT attend; is_causal tells it the mask is the causal one.
    blocked = ~causal_mask(LENGTH, device=device)
    return {
        "torch.nn": lambda t: reference(t, t, t, attn_mask=blocked, is_causal=True, need_weights=False)[0],
        "fused": lambda t: ours(t, causal=True, need_weights=False)[0],
        "explicit": lambda t: ours(t, causal=True, need_weights=True)[0],
    }


def run(repeat: int = 3) -> list[Row]:
    rows = []
    for device in devices():
        paths = _paths(device)
        x = torch.randn(BATCH, LENGTH, WIDTH, device=device, requires_grad=True)
        with torch.no_grad():  # the three compute the same function
            expected = paths["torch.nn"](x)
            for name in ("fused", "explicit"):
                torch.testing.assert_close(paths[name](x), expected, atol=1e-4, rtol=1e-4)
        steps = {name: _step(fn, x) for name, fn in paths.items()}
        explicit = steps.pop("explicit")
        seconds = interleaved_medians(steps, repeat=repeat, device=device)
        # The explicit path is 5-10 times slower and has no target: fewer runs, its first as warm-up.
        seconds.update(interleaved_medians({"explicit": explicit}, repeat=max(1, repeat - 1), device=device))
        detail = {f"{name} ms": round(1e3 * s, 1) for name, s in seconds.items()}
        case = f"B{BATCH} L{LENGTH} E{WIDTH} H{HEADS} causal, fwd+bwd"
        fused = seconds["fused"] / seconds["torch.nn"]
        rows.append(Row("MHA time: helpers fused / torch.nn", case, device.type, fused, "<= 1.0", fused <= 1.0,
                        detail))
        rows.append(Row("MHA time: helpers explicit / torch.nn", case, device.type,
                        seconds["explicit"] / seconds["torch.nn"], "", None, detail))
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default 1)")
    args = parser.parse_args(argv)
    set_threads(args.threads)
    print(", ".join(f"{k}: {v}" for k, v in machine().items()))
    rows = run(args.repeat)
    print_report(rows[::2])  # the two rows of a case share their medians
    return 0


if __name__ == "__main__":
    sys.exit(main())
