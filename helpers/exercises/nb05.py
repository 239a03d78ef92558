"""Self-checks for notebook 05 (self-attention)."""

import torch

from helpers import seeds
from helpers.attention import causal_mask, masked_softmax
from helpers.exercises import exercise, expect, expect_close

__all__ = ["causal_average", "self_attention", "attention_multiply_adds"]


@exercise("Exercise 1: the running average as one matrix product")
def causal_average(fn):
    x = torch.randn(5, 3, generator=seeds.generator(5))
    expected = torch.cumsum(x, dim=0) / torch.arange(1, 6)[:, None]
    out = fn(x)
    expect(isinstance(out, torch.Tensor), f"return a tensor, got {type(out).__name__}")
    expect_close(out, expected, "row t must be the mean of rows 0..t (including t itself): "
                 "divide each row of the triangular matrix by its number of ones")


@exercise("Exercise 2: single-head self-attention from three projections")
def self_attention(fn):
    g = seeds.generator(6)
    x = torch.randn(5, 4, generator=g)
    w_query, w_key, w_value = (torch.randn(4, 3, generator=g) for _ in range(3))
    for causal in (False, True):
        q, k, v = x @ w_query, x @ w_key, x @ w_value
        mask = causal_mask(5) if causal else None
        expected = masked_softmax(q @ k.T / 3**0.5, mask) @ v
        expect_close(fn(x, w_query, w_key, w_value, causal), expected,
                     f"with causal={causal}: project x three times, score q @ k.T / sqrt(d_k), "
                     "softmax over keys (masking the future when causal), then weights @ v")


@exercise("Exercise 3: the work in one attention head")
def attention_multiply_adds(fn):
    for length, dim in ((4, 2), (10, 8), (1024, 64)):
        got = fn(length, dim)
        expect(got == 2 * length * length * dim,
               f"for length={length}, dim={dim} you gave {got}: (T, d) @ (d, T) costs T*T*d multiply-adds, "
               "and (T, T) @ (T, d) costs as many again")
