"""Reference solutions for notebook 05's exercises, with plausible wrong answers."""

import torch

from helpers.attention import causal_mask, masked_softmax


def causal_average(x):
    return masked_softmax(torch.zeros(len(x), len(x)), causal_mask(len(x))) @ x


def causal_average_without_normalising(x):
    return torch.ones(len(x), len(x)).tril() @ x  # running sum, not mean


def causal_average_looking_ahead(x):
    return x.mean(dim=0, keepdim=True).expand_as(x)  # every token averages all tokens


def self_attention(x, w_query, w_key, w_value, causal):
    q, k, v = x @ w_query, x @ w_key, x @ w_value
    mask = causal_mask(len(x)) if causal else None
    return masked_softmax(q @ k.T / q.shape[-1] ** 0.5, mask) @ v


def self_attention_unscaled(x, w_query, w_key, w_value, causal):
    q, k, v = x @ w_query, x @ w_key, x @ w_value
    mask = causal_mask(len(x)) if causal else None
    return masked_softmax(q @ k.T, mask) @ v


def self_attention_ignoring_causal(x, w_query, w_key, w_value, causal):
    return self_attention(x, w_query, w_key, w_value, False)


def attention_multiply_adds(length, dim):
    return 2 * length * length * dim


def attention_multiply_adds_scores_only(length, dim):
    return length * length * dim


CASES = {
    "causal_average": {"right": (causal_average,),
                       "wrong": [(causal_average_without_normalising,), (causal_average_looking_ahead,)]},
    "self_attention": {"right": (self_attention,),
                       "wrong": [(self_attention_unscaled,), (self_attention_ignoring_causal,)]},
    "attention_multiply_adds": {"right": (attention_multiply_adds,),
                                "wrong": [(attention_multiply_adds_scores_only,)]},
}
