"""Reference solutions for notebook 13's exercises (and wrong answers the checks must reject)."""


def kv_cache_bytes(num_layers, num_kv_heads, head_dim, bytes_per_number, tokens):
    return 2 * num_layers * num_kv_heads * head_dim * bytes_per_number * tokens


def kv_cache_bytes_keys_only(num_layers, num_kv_heads, head_dim, bytes_per_number, tokens):
    return num_layers * num_kv_heads * head_dim * bytes_per_number * tokens


def kv_cache_bytes_query_heads(num_layers, num_kv_heads, head_dim, bytes_per_number, tokens):
    return 2 * num_layers * 8 * head_dim * bytes_per_number * tokens  # a fixed head count: right for MHA-8 only


def kv_head_for(query_head, num_heads, num_kv_heads):
    return query_head // (num_heads // num_kv_heads)


def kv_head_for_round_robin(query_head, num_heads, num_kv_heads):
    return query_head % num_kv_heads


def mean_pool_kv(weight, num_heads, num_kv_heads):
    head_dim = weight.shape[0] // num_heads
    grouped = weight.view(num_kv_heads, num_heads // num_kv_heads, head_dim, weight.shape[1])  # (G, H/G, hd, E)
    return grouped.mean(1).reshape(num_kv_heads * head_dim, weight.shape[1])


def mean_pool_kv_first_head(weight, num_heads, num_kv_heads):
    head_dim = weight.shape[0] // num_heads
    grouped = weight.view(num_kv_heads, num_heads // num_kv_heads, head_dim, weight.shape[1])
    return grouped[:, 0].reshape(num_kv_heads * head_dim, weight.shape[1])


def mean_pool_kv_round_robin(weight, num_heads, num_kv_heads):
    head_dim = weight.shape[0] // num_heads
    grouped = weight.view(num_heads // num_kv_heads, num_kv_heads, head_dim, weight.shape[1])  # heads g, g + G, ...
    return grouped.mean(0).reshape(num_kv_heads * head_dim, weight.shape[1])


CASES = {
    "kv_cache_bytes": {"right": (kv_cache_bytes,),
                       "wrong": [(kv_cache_bytes_keys_only,), (kv_cache_bytes_query_heads,)]},
    "kv_head_for": {"right": (kv_head_for,), "wrong": [(kv_head_for_round_robin,)]},
    "mean_pool_kv": {"right": (mean_pool_kv,),
                     "wrong": [(mean_pool_kv_first_head,), (mean_pool_kv_round_robin,)]},
}
