"""Reference solutions for notebook 01's exercises (and wrong answers the checks must reject)."""

import torch


def softmax_with_temperature(scores, temperature):
    scaled = scores / temperature
    exp = torch.exp(scaled - scaled.amax(dim=-1, keepdim=True))
    return exp / exp.sum(dim=-1, keepdim=True)


def softmax_with_temperature_unstable(scores, temperature):
    exp = torch.exp(scores / temperature)
    return exp / exp.sum(dim=-1, keepdim=True)


def softmax_with_temperature_multiplied(scores, temperature):
    return torch.softmax(scores * temperature, dim=-1)


def kernel_attention_pool(queries, keys, values, bandwidth):
    scores = -((queries[:, None] - keys[None, :]) * bandwidth) ** 2 / 2   # (queries, keys)
    return torch.softmax(scores, dim=1) @ values


def kernel_attention_pool_wrong_axis(queries, keys, values, bandwidth):
    scores = -((queries[:, None] - keys[None, :]) * bandwidth) ** 2 / 2
    return torch.softmax(scores, dim=0) @ values


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
    "kernel_attention_pool": {
        "right": (kernel_attention_pool,),
        "wrong": [(kernel_attention_pool_wrong_axis,)],
    },
    "window_mask": {
        "right": (window_mask,),
        "wrong": [(window_mask_inverted,), (window_mask_strict,)],
    },
}
