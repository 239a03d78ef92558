"""Reference solutions for notebook 10's exercises (and wrong answers the checks must reject)."""

import torch
import torch.nn.functional as F


def merge_stats(max_a, sum_a, max_b, sum_b):
    maximum = torch.maximum(max_a, max_b)
    return maximum, sum_a * torch.exp(max_a - maximum) + sum_b * torch.exp(max_b - maximum)


def merge_stats_no_rescale(max_a, sum_a, max_b, sum_b):
    return torch.maximum(max_a, max_b), sum_a + sum_b


def merge_stats_rescale_one(max_a, sum_a, max_b, sum_b):
    maximum = torch.maximum(max_a, max_b)
    return maximum, sum_a * torch.exp(max_a - maximum) + sum_b


def count_causal_tiles(length, block_size):
    blocks = -(-length // block_size)  # the last block may be short
    return blocks * (blocks + 1) // 2


def count_causal_tiles_all(length, block_size):
    return (-(-length // block_size)) ** 2


def count_causal_tiles_floor(length, block_size):
    blocks = length // block_size
    return blocks * (blocks + 1) // 2


def attend_with_cache(query, past_key, past_value, new_key, new_value):
    key = torch.cat([past_key, new_key], dim=2)  # (B, H, past + 1, hd)
    value = torch.cat([past_value, new_value], dim=2)
    return F.scaled_dot_product_attention(query, key, value), key, value


def attend_with_cache_causal_mask(query, past_key, past_value, new_key, new_value):
    key = torch.cat([past_key, new_key], dim=2)
    value = torch.cat([past_value, new_value], dim=2)
    # is_causal is top-left aligned: the single new query would see only the first key.
    return F.scaled_dot_product_attention(query, key, value, is_causal=True), key, value


def attend_with_cache_forgets_past(query, past_key, past_value, new_key, new_value):
    return F.scaled_dot_product_attention(query, new_key, new_value), new_key, new_value


CASES = {
    "merge_stats": {
        "right": (merge_stats,),
        "wrong": [(merge_stats_no_rescale,), (merge_stats_rescale_one,)],
    },
    "count_causal_tiles": {
        "right": (count_causal_tiles,),
        "wrong": [(count_causal_tiles_all,), (count_causal_tiles_floor,)],
    },
    "attend_with_cache": {
        "right": (attend_with_cache,),
        "wrong": [(attend_with_cache_causal_mask,), (attend_with_cache_forgets_past,)],
    },
}
