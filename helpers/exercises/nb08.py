"""Self-checks for notebook 08 · From attention to a Transformer."""

import torch
from torch import nn

from helpers import seeds
from helpers.exercises import exercise, expect, expect_close


@exercise("Exercise 1: a residual block, post-norm and pre-norm")
def residual_block(fn):
    seeds.manual_seed(0)
    x = torch.randn(2, 3, 4)
    sublayer = nn.Linear(4, 4)
    norm = nn.LayerNorm(4)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
        norm.bias.uniform_(-0.5, 0.5)
        post = norm(x + sublayer(x))
        pre = x + sublayer(norm(x))
        got_post, got_pre = fn(x, sublayer, norm, False), fn(x, sublayer, norm, True)
    expect(not torch.allclose(torch.as_tensor(got_post), pre),
           "with norm_first=False you computed pre-norm: post-norm normalises after the sum, norm(x + f(x))")
    expect_close(got_post, post, "post-norm (norm_first=False) is norm(x + sublayer(x))")
    expect_close(got_pre, pre, "pre-norm (norm_first=True) is x + sublayer(norm(x)): the residual path "
                 "skips the norm")


@exercise("Exercise 2: the causal mask for cached decoding")
def cached_causal_mask(fn):
    for num_new, num_cached in ((1, 0), (1, 4), (3, 2), (4, 0)):
        total = num_cached + num_new
        expected = torch.ones(num_new, total, dtype=torch.bool).tril(num_cached)
        out = fn(num_new, num_cached)
        expect(isinstance(out, torch.Tensor) and out.dtype == torch.bool, "return a torch.bool tensor")
        expect(tuple(out.shape) == (num_new, total),
               f"with {num_new} new and {num_cached} cached positions the shape is {(num_new, total)}")
        expect(not torch.equal(out, ~expected), "True must mean 'may attend': your mask is inverted")
        expect(torch.equal(out, expected),
               f"new query i sits at position {num_cached} + i and may see every key up to there "
               f"(num_new={num_new}, num_cached={num_cached})")


@exercise("Exercise 3: parameters of an encoder layer")
def encoder_layer_parameters(fn):
    from helpers.train import count_parameters
    from helpers.transformer import EncoderLayer

    for embed_dim, dim_feedforward in ((8, 16), (32, 64), (64, 256)):
        expected = count_parameters(EncoderLayer(embed_dim, 4, dim_feedforward))
        got = fn(embed_dim, dim_feedforward)
        expect(got == expected, f"for embed_dim={embed_dim}, dim_feedforward={dim_feedforward}: expected {expected}, "
               f"got {got}. Count the four attention projections (weights and biases), both linear layers "
               "of the feed-forward network, and a scale and a shift per feature in each LayerNorm")
