"""Reference solutions for notebook 02's exercises (and wrong answers the checks must reject)."""

import math

import torch


def cosine_score(query, key, strength):
    query = query / query.norm(dim=-1, keepdim=True)
    key = key / key.norm(dim=-1, keepdim=True)
    return strength * (query @ key.transpose(-2, -1))


def cosine_score_unnormalised(query, key, strength):
    return strength * (query @ key.transpose(-2, -1))


def cosine_score_without_strength(query, key, strength):
    return cosine_score(query, key, 1.0)


def additive_score(query, key, W_q, W_k, v):
    hidden = (query @ W_q.T)[:, :, None, :] + (key @ W_k.T)[:, None, :, :]  # (B, Lq, Lk, h)
    return torch.tanh(hidden) @ v


def additive_score_no_tanh(query, key, W_q, W_k, v):
    return ((query @ W_q.T)[:, :, None, :] + (key @ W_k.T)[:, None, :, :]) @ v


def additive_score_wrong_axes(query, key, W_q, W_k, v):
    # Broadcasts (B, Lq, h) against (B, Lk, h) the wrong way round: (B, Lk, Lq).
    hidden = (query @ W_q.T)[:, None, :, :] + (key @ W_k.T)[:, :, None, :]
    return torch.tanh(hidden) @ v


def dot_score_std(d):
    return 4 * math.sqrt(d)


CASES = {
    "cosine_score": {"right": (cosine_score,),
                     "wrong": [(cosine_score_unnormalised,), (cosine_score_without_strength,)]},
    "additive_score": {"right": (additive_score,),
                       "wrong": [(additive_score_no_tanh,), (additive_score_wrong_axes,)]},
    "dot_score_std": {"right": (dot_score_std,),
                      "wrong": [(lambda d: math.sqrt(d),), (lambda d: 2 * math.sqrt(d),), (lambda d: 4 * d,)]},
}
