"""Reference solutions for notebook 01's exercises (and wrong answers the checks must reject)."""

import torch

from helpers.attention import masked_softmax


def softmax_with_temperature(scores, temperature):
    scaled = scores / temperature
    exp = torch.exp(scaled - scaled.amax(dim=-1, keepdim=True))
    return exp / exp.sum(dim=-1, keepdim=True)


def softmax_with_temperature_unstable(scores, temperature):
    exp = torch.exp(scores / temperature)
    return exp / exp.sum(dim=-1, keepdim=True)


def softmax_with_temperature_multiplied(scores, temperature):
    return torch.softmax(scores * temperature, dim=-1)


def leave_one_out_pool(keys, values, bandwidth):
    scores = -((keys[:, None] - keys[None, :]) / bandwidth) ** 2 / 2   # (queries, keys)
    others = ~torch.eye(len(keys), dtype=torch.bool)                   # True = may attend
    return masked_softmax(scores, others) @ values


def leave_one_out_pool_keeps_itself(keys, values, bandwidth):
    scores = -((keys[:, None] - keys[None, :]) / bandwidth) ** 2 / 2
    return torch.softmax(scores, dim=1) @ values


def leave_one_out_pool_multiplies(keys, values, bandwidth):
    scores = -((keys[:, None] - keys[None, :]) * bandwidth) ** 2 / 2
    others = ~torch.eye(len(keys), dtype=torch.bool)
    return masked_softmax(scores, others) @ values


def window_mask(num_queries, num_keys, radius):
    i = torch.arange(num_queries)[:, None]
    j = torch.arange(num_keys)[None, :]
    return (i - j).abs() <= radius


def window_mask_inverted(num_queries, num_keys, radius):
    return ~window_mask(num_queries, num_keys, radius)


def window_mask_strict(num_queries, num_keys, radius):
    i = torch.arange(num_queries)[:, None]
    j = torch.arange(num_keys)[None, :]
    return (i - j).abs() < radius


CASES = {
    "softmax_with_temperature": {
        "right": (softmax_with_temperature,),
        "wrong": [(softmax_with_temperature_unstable,), (softmax_with_temperature_multiplied,)],
    },
    "leave_one_out_pool": {
        "right": (leave_one_out_pool,),
        "wrong": [(leave_one_out_pool_keeps_itself,), (leave_one_out_pool_multiplies,)],
    },
    "window_mask": {
        "right": (window_mask,),
        "wrong": [(window_mask_inverted,), (window_mask_strict,)],
    },
}
