"""Self-checks for notebook 01 · Attention as a soft dictionary lookup."""

import torch

from helpers.exercises import exercise, expect, expect_close


@exercise("Exercise 1: softmax with a temperature")
def softmax_with_temperature(fn):
    scores = torch.tensor([[2.0, 1.0, 0.5, 0.0], [0.0, 0.0, 0.0, 3.0]])
    for temperature in (0.5, 1.0, 4.0):
        expect_close(fn(scores, temperature), torch.softmax(scores / temperature, dim=-1),
                     f"at temperature {temperature} the weights differ from softmax(scores / temperature)")
    huge = torch.tensor([1000.0, 1001.0, 1002.0])
    out = fn(huge, 1.0)
    expect(torch.isfinite(torch.as_tensor(out)).all(),
           "scores in the thousands give inf/nan: subtract the maximum score before exp()")
    expect_close(out, torch.softmax(huge, dim=-1), "large scores give the wrong weights")


@exercise("Exercise 2: leave-one-out attention pooling")
def leave_one_out_pool(fn):
    keys = torch.tensor([0.0, 1.0, 2.0, 3.0, 4.5])
    values = torch.tensor([0.0, 1.0, 4.0, 9.0, 20.0])
    for bandwidth in (1.0, 0.4):
        scores = -((keys[:, None] - keys[None, :]) / bandwidth) ** 2 / 2
        scores = scores.masked_fill(torch.eye(len(keys), dtype=torch.bool), float("-inf"))
        expected = torch.softmax(scores, dim=1) @ values
        out = fn(keys, values, bandwidth)
        expect(tuple(torch.as_tensor(out).shape) == (len(keys),),
               f"return one prediction per training point, shape ({len(keys)},)")
        self_included = torch.softmax(-((keys[:, None] - keys[None, :]) / bandwidth) ** 2 / 2, dim=1) @ values
        expect(not torch.allclose(torch.as_tensor(out).float(), self_included, atol=1e-4),
               "each point still attends to itself: mask the diagonal (key i for query i)")
        expect_close(out, expected, f"with bandwidth {bandwidth}: score -((x_i - x_j) / h)**2 / 2, "
                     "softmax over the keys j != i (dim=1 of a (queries, keys) matrix)")


@exercise("Exercise 3: a local-attention window mask")
def window_mask(fn):
    for num_queries, num_keys, radius in ((5, 5, 1), (3, 6, 2), (4, 4, 0)):
        i = torch.arange(num_queries)[:, None]
        j = torch.arange(num_keys)[None, :]
        expected = (i - j).abs() <= radius
        out = fn(num_queries, num_keys, radius)
        expect(isinstance(out, torch.Tensor) and out.dtype == torch.bool,
               "return a torch.bool tensor (True = may attend)")
        expect(tuple(out.shape) == (num_queries, num_keys),
               f"the mask should have shape (num_queries, num_keys) = {(num_queries, num_keys)}")
        expect(not torch.equal(out, ~expected), "True must mean 'may attend': your mask is inverted")
        expect(torch.equal(out, expected), f"for radius {radius}, key j is allowed exactly when |i - j| <= radius")
