"""Self-checks for notebook 04 · Attention beyond text."""

import math

import torch

from helpers import seeds
from helpers.exercises import exercise, expect, expect_close


@exercise("Exercise 1: dot-product attention pooling")
def dot_attention_pool(fn):
    generator = seeds.generator(0)
    features = torch.randn(3, 5, 4, generator=generator)
    query = torch.randn(4, generator=generator)
    weights = torch.softmax(features @ query / math.sqrt(4), dim=-1)
    pooled = (weights[:, :, None] * features).sum(1)
    out = fn(features, query)
    expect(isinstance(out, tuple) and len(out) == 2, "return two tensors: (pooled, weights)")
    got_pooled, got_weights = out
    expect(tuple(torch.as_tensor(got_weights).shape) == (3, 5), "the weights are (batch, N): one per position")
    expect_close(torch.as_tensor(got_weights).sum(-1), torch.ones(3),
                 "the weights of each example must sum to 1: softmax over the N positions (dim=1)")
    expect_close(got_weights, weights, "scores are features @ query / sqrt(F); did you scale by sqrt(F)?")
    expect_close(got_pooled, pooled, "the pooled vector is the weighted sum of the features: (batch, F)")


@exercise("Exercise 2: squeeze-and-excitation")
def squeeze_excite(fn):
    generator = seeds.generator(1)
    x = torch.randn(2, 6, 3, 4, generator=generator)
    W_down, W_up = torch.randn(3, 6, generator=generator), torch.randn(6, 3, generator=generator)
    gates = torch.sigmoid(torch.relu(x.mean(dim=(2, 3)) @ W_down.T) @ W_up.T)
    out = fn(x, W_down, W_up)
    expect(tuple(torch.as_tensor(out).shape) == (2, 6, 3, 4), "return x reweighted: the same shape as x")
    expect_close(out, x * gates[:, :, None, None],
                 "squeeze = mean over height and width; excite = sigmoid(W_up relu(W_down squeezed)); "
                 "then multiply each channel by its gate")
