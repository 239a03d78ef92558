"""Self-checks for notebook 13 · Sharing keys and values."""

import torch

from helpers import seeds
from helpers.exercises import exercise, expect, expect_close


@exercise("Exercise 1: the bytes a key/value cache holds")
def kv_cache_bytes(fn):
    # (layers, kv heads, head_dim, bytes per number, tokens): Llama 2 70B, Mistral 7B, Falcon-7B, a tiny model
    for layers, kv_heads, head_dim, size, tokens in ((80, 8, 128, 2, 4096), (32, 8, 128, 2, 1), (32, 1, 64, 2, 2048),
                                                     (2, 4, 8, 4, 7)):
        out = fn(layers, kv_heads, head_dim, size, tokens)
        expected = 2 * layers * kv_heads * head_dim * size * tokens
        expect(out != expected // 2,
               f"{layers} layers, {kv_heads} kv heads: {out} counts the keys only; the cache holds a value for "
               "every key as well (the factor 2)")
        expect(out == expected,
               f"{layers} layers, {kv_heads} kv heads, head_dim {head_dim}, {size} bytes, {tokens} tokens: every "
               "token stores one key and one value of head_dim numbers per kv head, in every layer")


@exercise("Exercise 2: which key/value head a query head reads")
def kv_head_for(fn):
    for num_heads, num_kv_heads in ((8, 8), (8, 2), (8, 1), (6, 3), (64, 8), (4, 4)):
        got = [fn(h, num_heads, num_kv_heads) for h in range(num_heads)]
        expected = [h // (num_heads // num_kv_heads) for h in range(num_heads)]
        expect(got != [h % num_kv_heads for h in range(num_heads)] or got == expected,
               f"H = {num_heads}, G = {num_kv_heads}: {got} deals the query heads out in turn (round robin); the "
               "groups are contiguous, as repeat_interleave makes them: heads 0 .. H/G - 1 share kv head 0")
        expect(got == expected,
               f"H = {num_heads}, G = {num_kv_heads}: expected {expected}, got {got}. Each kv head serves H // G "
               "neighbouring query heads")


@exercise("Exercise 3: mean-pool a key projection into grouped heads")
def mean_pool_kv(fn):
    generator = seeds.generator(13)
    for num_heads, num_kv_heads, head_dim, width in ((4, 2, 3, 5), (8, 2, 2, 6), (6, 1, 2, 4), (4, 4, 2, 3)):
        weight = torch.randn(num_heads * head_dim, width, generator=generator)  # (H * hd, E): k_proj.weight
        out = fn(weight.clone(), num_heads, num_kv_heads)
        expected = weight.view(num_kv_heads, num_heads // num_kv_heads, head_dim, width).mean(1)
        expected = expected.reshape(num_kv_heads * head_dim, width)
        expect(isinstance(out, torch.Tensor) and tuple(out.shape) == tuple(expected.shape),
               f"return the pooled weight of shape (num_kv_heads * head_dim, in_features) = {tuple(expected.shape)}")
        first = weight.view(num_kv_heads, num_heads // num_kv_heads, head_dim, width)[:, 0].reshape_as(expected)
        expect(num_kv_heads == num_heads or not torch.allclose(out, first),
               "that keeps the first head of each group; average all the heads of the group instead")
        expect_close(out, expected, "rows h * head_dim .. (h + 1) * head_dim - 1 belong to head h; the heads of a "
                     "group are neighbours (view as (G, H // G, head_dim, in_features) and average over dim 1)")
