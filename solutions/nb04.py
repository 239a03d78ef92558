"""Reference solutions for notebook 04's exercises (and wrong answers the checks must reject)."""

import math

import torch


def dot_attention_pool(features, query):
    weights = torch.softmax(features @ query / math.sqrt(features.shape[-1]), dim=-1)  # (B, N)
    return (weights[:, None, :] @ features)[:, 0], weights


def dot_attention_pool_unscaled(features, query):
    weights = torch.softmax(features @ query, dim=-1)
    return (weights[:, None, :] @ features)[:, 0], weights


def dot_attention_pool_wrong_axis(features, query):
    weights = torch.softmax(features @ query / math.sqrt(features.shape[-1]), dim=0)
    return (weights[:, None, :] @ features)[:, 0], weights


def squeeze_excite(x, W_down, W_up):
    gates = torch.sigmoid(torch.relu(x.mean(dim=(2, 3)) @ W_down.T) @ W_up.T)  # (B, C)
    return x * gates[:, :, None, None]


def squeeze_excite_softmax(x, W_down, W_up):
    gates = torch.softmax(torch.relu(x.mean(dim=(2, 3)) @ W_down.T) @ W_up.T, dim=-1)
    return x * gates[:, :, None, None]


def squeeze_excite_max(x, W_down, W_up):
    gates = torch.sigmoid(torch.relu(x.amax(dim=(2, 3)) @ W_down.T) @ W_up.T)
    return x * gates[:, :, None, None]


CASES = {
    "dot_attention_pool": {"right": (dot_attention_pool,),
                           "wrong": [(dot_attention_pool_unscaled,), (dot_attention_pool_wrong_axis,)]},
    "squeeze_excite": {"right": (squeeze_excite,),
                       "wrong": [(squeeze_excite_softmax,), (squeeze_excite_max,)]},
}
