"""Self-checks for notebook 12 · Local and linear attention."""

import torch

from helpers import seeds
from helpers.exercises import exercise, expect, expect_close


@exercise("Exercise 1: the receptive field of stacked windows")
def receptive_field(fn):
    for window, layers in ((4, 1), (4, 3), (2, 5), (128, 2), (1, 7)):
        out = fn(window, layers)
        expect(out != window * layers or layers == 1 or window == 1,
               f"window {window}, {layers} layers: {out} counts the token's own position once per layer; "
               "each extra layer adds window - 1 new positions")
        expect(out == layers * (window - 1) + 1,
               f"window {window}, {layers} layers: one layer sees {window} positions; each further layer "
               "reaches window - 1 positions further back")


@exercise("Exercise 2: one step of causal linear attention")
def linear_step(fn):
    generator = seeds.generator(12)
    batch, r, dv = 3, 4, 5
    state = torch.rand(batch, r, dv, generator=generator)
    norm = torch.rand(batch, r, generator=generator) + 0.5
    query, key = torch.rand(batch, r, generator=generator), torch.rand(batch, r, generator=generator)
    value = torch.randn(batch, dv, generator=generator)
    out = fn(state.clone(), norm.clone(), query, key, value)
    expect(isinstance(out, tuple) and len(out) == 3, "return (output, state, norm)")
    output, new_state, new_norm = out
    expected_state = state + key[:, :, None] * value[:, None, :]
    expected_norm = norm + key
    expect_close(new_state, expected_state, "add the outer product key ⊗ value to the state: "
                 "state + key[:, :, None] * value[:, None, :]")
    expect_close(new_norm, expected_norm, "add the key's features to the normaliser")
    numerator = (query[:, :, None] * expected_state).sum(1)
    expect_close(output, numerator / (query * expected_norm).sum(1, keepdim=True),
                 "update first, then read: the token sees its own key (causal includes the diagonal), and the "
                 "read is divided by query · norm")


@exercise("Exercise 3: one step of the delta rule")
def delta_step(fn):
    generator = seeds.generator(13)
    batch, d, dv = 3, 6, 4
    state = torch.randn(batch, d, dv, generator=generator)
    key = torch.nn.functional.normalize(torch.randn(batch, d, generator=generator), dim=-1)
    value = torch.randn(batch, dv, generator=generator)
    beta = torch.tensor([1.0, 0.5, 0.2])
    stored = torch.einsum("bd,bdv->bv", key, state)
    expected = state + beta[:, None, None] * key[:, :, None] * (value - stored)[:, None, :]
    out = fn(state.clone(), key, value, beta)
    expect(tuple(out.shape) == (batch, d, dv), f"return the new state, shape {(batch, d, dv)}")
    expect(not torch.allclose(out, state + beta[:, None, None] * key[:, :, None] * value[:, None, :], atol=1e-5),
           "that adds the value without removing what the state already held under the key: subtract "
           "stateᵀ·key from the value first")
    expect_close(out, expected, "S + β k (v - Sᵀk)ᵀ: read what the state holds under the key, then write the "
                 "difference, scaled by β")
    retrieved = torch.einsum("bd,bdv->bv", key[:1], out[:1])
    expect_close(retrieved, value[:1], "with β = 1 the key must retrieve exactly the value just written")
