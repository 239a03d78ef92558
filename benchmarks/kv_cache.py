"""Greedy decoding with and without the key/value cache of ``helpers.transformer``.

    python benchmarks/kv_cache.py [--tokens 256] [--repeat 3]

An untrained (seeded) ``helpers.transformer.Transformer`` (width 256, 4 heads, feed-forward
width 1024, 2 encoder and 2 decoder layers) generates ``--tokens`` tokens for one 16-token
source, with no end token, so both runs do the same number of steps. Without the cache, step
``t`` runs the decoder over all ``t`` positions again; with it, over the one new position. The
two must give the same tokens. Prints the time ratio, without / with the cache. (At width 128
the per-step Python overhead, the same with and without the cache, hides much of the
difference on a CPU.)
"""

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from benchmarks import Row, devices, interleaved_medians, machine, print_report, set_threads  # noqa: E402
from helpers.transformer import Transformer, greedy_decode  # noqa: E402

# The cost model of notebook 10, section 6: a step running P positions costs (n0 + P) c, where n0 is its fixed
# part (Python, dispatch) in positions' work. 256 tokens cost (256 n0 + 32,896) c without the cache and
# 256 (n0 + 1) c with it, so the ratio is at least 3 whenever n0 <= 63; at width 256, n0 is far below that.
TARGET = 3.0
VOCAB, SOURCE_LENGTH, BOS = 32, 16, 1
EMBED_DIM, DIM_FEEDFORWARD = 256, 1024


def _decoders(tokens: int, device) -> dict:
    """``use_cache -> (lambda: generated tokens)`` for one seeded model and source."""
    torch.manual_seed(0)
    model = Transformer(VOCAB, VOCAB, embed_dim=EMBED_DIM, dim_feedforward=DIM_FEEDFORWARD,
                        max_len=max(tokens + 1, SOURCE_LENGTH))
    model = model.to(device).eval()
    src = torch.randint(2, VOCAB, (1, SOURCE_LENGTH), generator=torch.Generator().manual_seed(0)).to(device)
    return {use: (lambda use=use: greedy_decode(model, src, tokens, bos_id=BOS, use_cache=use))
            for use in (False, True)}


def run(tokens: int = 256, repeat: int = 3) -> list[Row]:
    rows = []
    for device in devices():
        decode = _decoders(tokens, device)
        if not torch.equal(decode[False](), decode[True]()):  # also the warm-up
            raise AssertionError("decoding with and without the cache gave different tokens")
        seconds = interleaved_medians({"no cache": decode[False], "cache": decode[True]}, repeat=repeat, warmup=0,
                                      device=device)
        ratio = seconds["no cache"] / seconds["cache"]
        rows.append(Row("decoding time: no cache / KV cache", f"{tokens} tokens", device.type, ratio,
                        f">= {TARGET}", ratio >= TARGET, {f"{k} ms": round(1e3 * s, 1) for k, s in seconds.items()}))
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default 1)")
    args = parser.parse_args(argv)
    set_threads(args.threads)
    print(", ".join(f"{k}: {v}" for k, v in machine().items()))
    rows = run(args.tokens, args.repeat)
    print_report(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
