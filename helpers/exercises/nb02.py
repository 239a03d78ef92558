"""Self-checks for notebook 02 · How a query scores a key."""

import math

import torch

from helpers import seeds
from helpers.exercises import exercise, expect, expect_close


@exercise("Exercise 1: cosine (content-based) scoring")
def cosine_score(fn):
    generator = seeds.generator(0)
    query = torch.randn(2, 3, 4, generator=generator)
    key = torch.randn(2, 5, 4, generator=generator)
    for strength in (1.0, 5.0):
        expected = strength * torch.nn.functional.cosine_similarity(query[:, :, None, :], key[:, None, :, :], dim=-1)
        out = fn(query, key, strength)
        expect_close(out, expected, f"with strength {strength}: normalise query and key to unit length along the "
                     "last dimension, take all dot products (query @ key.transpose(-2, -1)), multiply by strength")
    # Long keys must not score higher than short ones pointing the same way.
    out = fn(query, 10 * key, 1.0)
    expect_close(out, fn(query, key, 1.0), "the cosine must not change when a key is made longer")


@exercise("Exercise 2: additive (Bahdanau) scoring")
def additive_score(fn):
    generator = seeds.generator(1)
    query, key = torch.randn(2, 3, 4, generator=generator), torch.randn(2, 5, 6, generator=generator)
    W_q, W_k, v = torch.randn(7, 4, generator=generator), torch.randn(7, 6, generator=generator), torch.randn(7)
    expected = torch.tanh((query @ W_q.T)[:, :, None, :] + (key @ W_k.T)[:, None, :, :]) @ v
    out = fn(query, key, W_q, W_k, v)
    expect(tuple(torch.as_tensor(out).shape) == (2, 3, 5),
           "the scores must have shape (batch, Lq, Lk) = (2, 3, 5): add (batch, Lq, 1, h) and (batch, 1, Lk, h)")
    expect_close(out, expected, "project the queries with W_q and the keys with W_k, add every pair by "
                 "broadcasting, apply tanh, then take the dot product with v")


@exercise("Exercise 3: the spread of a dot product")
def dot_score_std(fn):
    for d in (1, 16, 100):
        value = float(fn(d))
        expect(not math.isclose(value, math.sqrt(d), rel_tol=1e-3) or d == 1,
               f"for d = {d} you answered sqrt(d): that is for entries of variance 1; each entry here has variance 4")
        expect(math.isclose(value, 4 * math.sqrt(d), rel_tol=1e-3),
               f"for d = {d}: each product q_i * k_i has variance 4 * 4; the variances of the d terms add up")
