"""Reference solutions for notebook 14's exercises (and wrong answers the checks must reject)."""

import math

import torch.nn.functional as F


def bits_per_character(logits, targets):
    nats = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-100)  # mean over real targets
    return nats.item() / math.log(2)


def bits_per_character_in_nats(logits, targets):
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-100).item()


def bits_per_character_with_padding(logits, targets):
    log_probs = logits.log_softmax(-1).gather(-1, targets.clamp(min=0)[..., None])[..., 0]
    return -log_probs.mean().item() / math.log(2)


def next_token_probs(logits, temperature, top_k):
    scaled = logits / temperature
    if top_k is not None:
        kth = scaled.topk(top_k, dim=-1).values[..., -1:]  # the k-th largest logit of each row
        scaled = scaled.masked_fill(scaled < kth, float("-inf"))
    return scaled.softmax(-1)


def next_token_probs_no_renormalising(logits, temperature, top_k):
    probs = (logits / temperature).softmax(-1)
    if top_k is not None:
        kth = probs.topk(top_k, dim=-1).values[..., -1:]
        probs = probs.masked_fill(probs < kth, 0.0)
    return probs


def next_token_probs_times_temperature(logits, temperature, top_k):
    return next_token_probs(logits * temperature * temperature, temperature, top_k)


def cache_floats(batch, length, num_layers, num_kv_heads, head_dim):
    return 2 * batch * length * num_layers * num_kv_heads * head_dim


def cache_floats_keys_only(batch, length, num_layers, num_kv_heads, head_dim):
    return batch * length * num_layers * num_kv_heads * head_dim


CASES = {
    "bits_per_character": {"right": (bits_per_character,),
                           "wrong": [(bits_per_character_in_nats,), (bits_per_character_with_padding,)]},
    "next_token_probs": {"right": (next_token_probs,),
                         "wrong": [(next_token_probs_no_renormalising,), (next_token_probs_times_temperature,)]},
    "cache_floats": {"right": (cache_floats,), "wrong": [(cache_floats_keys_only,)]},
}
