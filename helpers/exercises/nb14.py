"""Self-checks for notebook 14 · A small language model."""

import math

import torch

from helpers import seeds
from helpers.exercises import exercise, expect, expect_close


@exercise("Exercise 1: bits per character")
def bits_per_character(fn):
    generator = seeds.generator(14)
    logits = torch.randn(3, 5, 7, generator=generator)  # (batch, positions, vocabulary)
    targets = torch.randint(0, 7, (3, 5), generator=generator)
    targets[1, 3:] = -100  # padding: a shorter item
    targets[2, 4] = -100
    kept = targets != -100
    log_probs = logits.log_softmax(-1).gather(-1, targets.clamp(min=0)[..., None])[..., 0]  # (3, 5)
    nats = -(log_probs[kept]).mean()
    out = fn(logits, targets)
    out = float(out) if isinstance(out, torch.Tensor) and out.numel() == 1 else out
    expect(isinstance(out, float), "return one number (a float or a 0-d tensor): the mean over every real target")
    expect(not math.isclose(out, float(nats), rel_tol=1e-4),
           "that is the loss in nats (natural log); divide by ln 2 for bits")
    expect(not math.isclose(out, float(-log_probs.mean()) / math.log(2), rel_tol=1e-4),
           "the padded positions (target -100) must not count: average over the real targets only")
    expect(math.isclose(out, float(nats) / math.log(2), rel_tol=1e-4),
           "the mean of -log2 p(target) over the positions whose target is not -100")
    uniform = fn(torch.zeros(1, 4, 32), torch.zeros(1, 4, dtype=torch.long))
    expect(math.isclose(float(uniform), 5.0, rel_tol=1e-5), "a uniform guess over 32 tokens costs exactly 5 bits")


@exercise("Exercise 2: temperature and top-k")
def next_token_probs(fn):
    logits = torch.tensor([[2.0, 1.0, 0.5, -1.0, 0.0], [0.0, 3.0, -2.0, 1.0, 1.5]])  # (batch, vocabulary)
    for temperature, top_k in ((1.0, None), (0.5, None), (2.0, 3), (1.0, 1), (0.7, 2)):
        out = fn(logits, temperature, top_k)
        scaled = logits / temperature
        if top_k is not None:
            threshold = scaled.topk(top_k, dim=-1).values[:, -1:]
            scaled = scaled.masked_fill(scaled < threshold, float("-inf"))
        expected = scaled.softmax(-1)
        expect(isinstance(out, torch.Tensor) and out.shape == logits.shape,
               f"return probabilities with the logits' shape {tuple(logits.shape)}")
        expect_close(out.sum(-1), torch.ones(2), "each row must sum to 1: renormalise after keeping the top k")
        if temperature != 1.0:
            expect(not torch.allclose(out, (logits * temperature).softmax(-1), atol=1e-5),
                   "divide the logits by the temperature (a low temperature sharpens), do not multiply")
        expect_close(out, expected, f"temperature {temperature}, top_k {top_k}: softmax(logits / temperature) "
                     "over the k largest logits only, zero elsewhere")


@exercise("Exercise 3: the size of a key/value cache")
def cache_floats(fn):
    cases = [  # (batch, length, num_layers, num_kv_heads, head_dim)
        (1, 14, 2, 2, 12),
        (8, 100, 2, 4, 12),
        (1, 4096, 32, 8, 128),
    ]
    for batch, length, num_layers, num_kv_heads, head_dim in cases:
        out = fn(batch, length, num_layers, num_kv_heads, head_dim)
        expected = 2 * batch * length * num_layers * num_kv_heads * head_dim
        expect(out != expected // 2, "a cache holds keys *and* values: two tensors per layer")
        expect(out == expected, f"batch {batch}, length {length}, {num_layers} layers, {num_kv_heads} key/value "
                                f"heads of {head_dim}: each layer keeps (batch, kv_heads, length, head_dim) for the "
                                "keys and the same for the values")
