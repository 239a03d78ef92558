"""Self-checks for notebook 06 (positional encoding)."""

import torch

from helpers import seeds
from helpers.exercises import exercise, expect, expect_close
from helpers.positional import alibi_slopes, apply_rotary, sinusoidal_encoding

__all__ = ["sinusoidal", "rope", "causal_alibi"]


@exercise("Exercise 1: the sinusoidal encoding")
def sinusoidal(fn):
    for num_positions, dim in ((5, 4), (50, 16)):
        expect_close(fn(num_positions, dim), sinusoidal_encoding(num_positions, dim),
                     f"for ({num_positions}, {dim}): column 2i is sin(p / 10000**(2i/dim)) and column 2i+1 the "
                     "cosine of the same angle; i counts pairs, so the exponent uses 2i, not the column index",
                     atol=1e-4)


@exercise("Exercise 2: rotary embeddings")
def rope(fn):
    g = seeds.generator(7)
    x = torch.randn(6, 8, generator=g)
    positions = torch.tensor([0, 1, 2, 5, 9, 30])
    expect_close(fn(x, positions), apply_rotary(x, positions),
                 "rotate pair (x[2i], x[2i+1]) by angle p * 10000**(-2i/dim): "
                 "(a cos - b sin, a sin + b cos)", atol=1e-4)
    query, key = torch.randn(1, 8, generator=g), torch.randn(1, 8, generator=g)
    near = fn(query, torch.tensor([4])) @ fn(key, torch.tensor([1])).T
    far = fn(query, torch.tensor([104])) @ fn(key, torch.tensor([101])).T
    expect_close(far, near, "scores of rotated vectors should depend only on the offset m - n", atol=1e-3)


@exercise("Exercise 3: causal ALiBi")
def causal_alibi(fn):
    slopes = alibi_slopes(4)
    length = 5
    distance = torch.arange(length)[:, None] - torch.arange(length)  # i - j
    expected = -slopes[:, None, None] * distance.float()
    expected = expected.masked_fill(distance < 0, float("-inf"))
    got = fn(slopes, length)
    expect(isinstance(got, torch.Tensor) and tuple(got.shape) == (4, length, length),
           f"return a tensor of shape (heads, length, length) = (4, {length}, {length})")
    expect(torch.equal(torch.isinf(got), torch.isinf(expected)) and bool((got[torch.isinf(got)] < 0).all()),
           "keys after the query (j > i) must get -inf, all others a finite bias")
    finite = ~torch.isinf(expected)
    expect_close(got[finite], expected[finite], "the bias for key j <= i is -slope * (i - j): zero on the "
                 "diagonal, more negative the further back the key")
