"""Self-checks for notebook 03 · Sequence to sequence with attention."""

import torch

from helpers import seeds
from helpers.attention import masked_softmax
from helpers.exercises import exercise, expect, expect_close
from helpers.scoring import AdditiveScore


@exercise("Exercise 1: one step's context vector")
def attention_context(fn):
    generator = seeds.generator(0)
    seeds.manual_seed(0)
    score = AdditiveScore(4, 6, 5)
    query = torch.randn(3, 4, generator=generator)
    memory = torch.randn(3, 5, 6, generator=generator)
    mask = torch.tensor([[True] * 5, [True, True, True, False, False], [True, False, False, False, False]])
    weights = masked_softmax(score(query[:, None, :], memory), mask[:, None, :])[:, 0]
    expected = (weights[:, :, None] * memory).sum(1)
    out = fn(query, memory, mask, score)
    expect(isinstance(out, tuple) and len(out) == 2, "return two tensors: (context, weights)")
    context, got_weights = out
    expect(tuple(torch.as_tensor(got_weights).shape) == (3, 5),
           "weights must be (batch, S): score(query[:, None, :], memory) is (batch, 1, S), drop the middle dimension")
    expect(bool((torch.as_tensor(got_weights)[~mask] == 0).all()),
           "padded positions must get weight 0: use attention.masked_softmax with the mask")
    expect_close(got_weights, weights, "the weights are the masked softmax of the scores over the S positions")
    expect_close(context, expected, "the context is the weighted sum of the memory rows: (batch, M)")


@exercise("Exercise 2: teacher forcing's decoder inputs")
def decoder_inputs(fn):
    bos, eos, pad = 1, 2, 0
    target_out = torch.tensor([[5, 6, 7, eos], [9, eos, pad, pad], [eos, pad, pad, pad]])
    expected = torch.tensor([[bos, 5, 6, 7], [bos, 9, pad, pad], [bos, pad, pad, pad]])
    out = fn(target_out.clone(), bos, eos, pad)
    expect(isinstance(out, torch.Tensor), "return a tensor of ids")
    expect(tuple(out.shape) == (3, 4), "the inputs have the same shape (batch, T) as target_out")
    expect(not (out == eos).any(), "the decoder never reads <eos> as an input: replace it")
    expect(torch.equal(out[:, 0], torch.full((3,), bos)), "every input sequence starts with <bos>")
    expect(torch.equal(out, expected),
           "shift the targets one step right behind <bos>; positions past the end are <pad>")


@exercise("Exercise 3: how diagonal is an alignment")
def diagonal_share(fn):
    diagonal = torch.eye(3)
    anti = torch.eye(3).flip(1)
    tall = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])  # the last row has no diagonal column
    expect(abs(float(fn([diagonal])) - 1.0) < 1e-6, "an identity matrix is entirely diagonal: expected 1.0")
    expect(abs(float(fn([anti])) - 1 / 3) < 1e-6, "a reversed identity (3x3) has one of three rows on the diagonal")
    expect(abs(float(fn([tall])) - 2 / 3) < 1e-6,
           "a 3x2 matrix: rows 0 and 1 peak on the diagonal, row 2 has no diagonal column: expected 2/3")
    expect(abs(float(fn([torch.eye(4), tall])) - 6 / 7) < 1e-6,
           "count rows over all matrices together (6 of 7 here), not the mean of each matrix's share")
