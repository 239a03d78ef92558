"""Self-checks for notebook 10 · Efficient attention."""

import torch

from helpers import seeds
from helpers.exercises import exercise, expect, expect_close


@exercise("Exercise 1: merge two blocks' softmax statistics")
def merge_stats(fn):
    generator = seeds.generator(10)
    for spread in (1.0, 30.0):
        a = torch.randn(3, 5, generator=generator) * spread
        b = torch.randn(3, 4, generator=generator) * spread + 5.0  # b usually holds the larger maximum
        max_a, max_b = a.amax(-1, keepdim=True), b.amax(-1, keepdim=True)
        sum_a = torch.exp(a - max_a).sum(-1, keepdim=True)
        sum_b = torch.exp(b - max_b).sum(-1, keepdim=True)
        out = fn(max_a, sum_a, max_b, sum_b)
        expect(isinstance(out, tuple) and len(out) == 2, "return a pair (maximum, total)")
        both = torch.cat([a, b], dim=-1)
        expected_max = both.amax(-1, keepdim=True)
        expect_close(out[0], expected_max, "the merged maximum is the larger of the two maxima")
        expect_close(out[1], torch.exp(both - expected_max).sum(-1, keepdim=True),
                     "each block's total was taken relative to its own maximum: multiply it by "
                     "exp(its maximum - the merged maximum) before adding", rtol=1e-4, atol=1e-4)


@exercise("Exercise 2: count the tiles causal attention computes")
def count_causal_tiles(fn):
    for length, block_size in ((1024, 128), (1000, 128), (300, 100), (10, 3), (64, 64)):
        blocks = -(-length // block_size)
        out = fn(length, block_size)
        expect(out != blocks * blocks or blocks == 1,
               f"for L={length}, block {block_size}: {out} counts every tile; causal attention skips "
               "the tiles above the diagonal")
        expect(out != blocks * (blocks - 1) // 2 or blocks == 1,
               f"for L={length}, block {block_size}: the diagonal tiles are computed too (with a mask inside)")
        expect(out != (length // block_size) * (length // block_size + 1) // 2 or length % block_size == 0,
               f"for L={length}, block {block_size}: the last, shorter block counts as a block (round up)")
        expect(out == blocks * (blocks + 1) // 2,
               f"for L={length}, block {block_size}: query block i needs key blocks 0..i; add them up")


@exercise("Exercise 3: one decoding step with a key/value cache")
def attend_with_cache(fn):
    generator = seeds.generator(11)
    key = torch.randn(2, 3, 6, 4, generator=generator)  # (batch, heads, length, head_dim)
    value = torch.randn(2, 3, 6, 5, generator=generator)
    query = torch.randn(2, 3, 6, 4, generator=generator)
    full = torch.nn.functional.scaled_dot_product_attention(query, key, value, is_causal=True)
    past_key, past_value = key[:, :, :5], value[:, :, :5]
    out = fn(query[:, :, 5:], past_key, past_value, key[:, :, 5:], value[:, :, 5:])
    expect(isinstance(out, tuple) and len(out) == 3, "return (output, key, value): the output and the grown cache")
    output, new_key, new_value = out
    expect(tuple(new_key.shape) == (2, 3, 6, 4),
           f"the cache should grow along the length (dim 2) to (2, 3, 6, 4), got {tuple(new_key.shape)}")
    expect_close(new_key, key, "append the new key after the past ones (torch.cat along dim=2)")
    expect_close(new_value, value, "append the new value after the past ones (torch.cat along dim=2)")
    expect_close(output, full[:, :, 5:], "the new query attends to every cached key and to its own key; "
                 "it needs no mask", atol=1e-5, rtol=1e-4)
