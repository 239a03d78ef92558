"""Sliding windows, linear attention and grouped key/value heads (Part IV's additions to the core)."""

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers.attention import causal_mask, scaled_dot_product_attention, sliding_window_mask
from helpers.efficient import (
    elu_feature_map,
    linear_attention,
    linear_attention_recurrent,
    peak_memory,
    tiled_attention,
)


def randn(*shape, seed=0, dtype=torch.float64):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


# --- sliding windows ----------------------------------------------------------------------------

@given(st.integers(1, 9), st.integers(1, 9), st.integers(1, 11))
def test_sliding_window_mask_is_the_band(num_queries, num_keys, window):
    mask = sliding_window_mask(num_queries, num_keys, window)
    assert mask.dtype == torch.bool and mask.shape == (num_queries, num_keys)
    for i in range(num_queries):
        for j in range(num_keys):
            assert bool(mask[i, j]) == (0 <= i - j < window)


def test_a_window_as_long_as_the_keys_is_the_causal_mask():
    assert torch.equal(sliding_window_mask(6, 6, 6), causal_mask(6))
    assert torch.equal(sliding_window_mask(6, 6, 1), torch.eye(6, dtype=torch.bool))


@pytest.mark.parametrize("window", [0, -2, 1.5, True, None])
def test_sliding_window_mask_rejects_bad_windows(window):
    with pytest.raises(ValueError, match="window must be a positive int"):
        sliding_window_mask(4, 4, window)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 40), st.integers(1, 40), st.integers(1, 45), st.sampled_from([1, 3, 8, 16]),
       st.integers(0, 1000))
def test_windowed_tiled_attention_equals_pytorch_with_a_band_mask(lq, lk, window, block, seed):
    query, key, value = randn(2, lq, 4, seed=seed), randn(2, lk, 4, seed=seed + 1), randn(2, lk, 3, seed=seed + 2)
    band = sliding_window_mask(lq, lk, window)
    expected = F.scaled_dot_product_attention(query, key, value, attn_mask=band)
    # PyTorch's kernels disagree on queries with no key at all; the series' convention is zeros.
    expected = expected.masked_fill(~band.any(-1)[:, None], 0.0)
    got = tiled_attention(query, key, value, window=window, block_size=block)
    torch.testing.assert_close(got, expected)
    explicit, _ = scaled_dot_product_attention(query, key, value, band)
    torch.testing.assert_close(got, explicit)


def test_windowed_tiled_attention_skips_tiles_outside_the_band():
    # With L = 64, window 8 and 8x8 tiles, each query block reads at most 2 key blocks.
    query = key = value = randn(1, 64, 4)
    calls = []
    original = torch.bmm

    def counting_bmm(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    torch.bmm = counting_bmm
    try:
        tiled_attention(query, key, value, window=8, block_size=8)
    finally:
        torch.bmm = original
    assert len(calls) == 1 + 2 * 7  # the first query block reads one key block, each later one two


def test_windowed_tiled_gradients_match_the_explicit_band():
    query, key, value = (randn(1, 2, 12, 4, seed=s).requires_grad_() for s in range(3))
    band = sliding_window_mask(12, 12, 5)
    torch.autograd.gradcheck(lambda q, k, v: tiled_attention(q, k, v, window=5, block_size=4), (query, key, value))
    got = torch.autograd.grad(tiled_attention(query, key, value, window=5, block_size=4).sum(), (query, key, value))
    expected = torch.autograd.grad(scaled_dot_product_attention(query, key, value, band)[0].sum(),
                                   (query, key, value))
    for g, e in zip(got, expected, strict=True):
        torch.testing.assert_close(g, e)


def test_tiled_attention_rejects_bad_windows():
    query = randn(1, 4, 2)
    with pytest.raises(ValueError, match="window must be a positive int"):
        tiled_attention(query, query, query, window=0)


def _growth_exponent(lengths, peaks):
    xs, ys = [math.log(n) for n in lengths], [math.log(p) for p in peaks]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)


def test_windowed_tiled_and_linear_attention_memory_grow_linearly():
    lengths = [256, 512, 1024, 2048]
    peaks = {"explicit": [], "windowed": [], "linear": []}
    for n in lengths:
        x = randn(1, n, 16, dtype=torch.float32)
        band = sliding_window_mask(n, n, 32)
        with torch.no_grad():
            peaks["explicit"].append(peak_memory(lambda x=x, band=band: scaled_dot_product_attention(x, x, x, band)))
            peaks["windowed"].append(peak_memory(lambda x=x: tiled_attention(x, x, x, window=32, block_size=32)))
            peaks["linear"].append(peak_memory(lambda x=x: linear_attention(x, x, x, causal=True)))
    assert _growth_exponent(lengths, peaks["explicit"]) > 1.8
    assert _growth_exponent(lengths, peaks["windowed"]) < 1.2
    assert _growth_exponent(lengths, peaks["linear"]) < 1.2


# --- linear attention -----------------------------------------------------------------------------

def quadratic_form(query, key, value, causal, feature_map=elu_feature_map):
    """φ(Q) φ(K)ᵀ written out, rows normalised: the definition linear_attention must equal."""
    weights = feature_map(query) @ feature_map(key).transpose(-2, -1)  # (..., Lq, Lk)
    if causal:
        weights = weights * causal_mask(query.shape[-2], key.shape[-2])
    return (weights / weights.sum(-1, keepdim=True)) @ value


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 30), st.integers(1, 30), st.integers(1, 6), st.integers(1, 5), st.booleans(),
       st.sampled_from([1, 4, 64]), st.integers(0, 1000))
def test_linear_attention_equals_the_quadratic_form(lq, lk, d, dv, causal, chunk, seed):
    if causal:
        lk = lq
    query, key, value = randn(2, lq, d, seed=seed), randn(2, lk, d, seed=seed + 1), randn(2, lk, dv, seed=seed + 2)
    got = linear_attention(query, key, value, causal=causal, chunk_size=chunk)
    torch.testing.assert_close(got, quadratic_form(query, key, value, causal))


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 20), st.integers(1, 6), st.integers(0, 1000))
def test_the_recurrence_equals_causal_linear_attention(length, d, seed):
    query, key, value = randn(3, length, d, seed=seed), randn(3, length, d, seed=seed + 1), randn(3, length, 2,
                                                                                                    seed=seed + 2)
    torch.testing.assert_close(linear_attention_recurrent(query, key, value),
                               linear_attention(query, key, value, causal=True, chunk_size=4))


def test_linear_attention_weights_are_a_weighted_average():
    # Constant values come out unchanged (the weights sum to 1), for any positive feature map.
    query, key = randn(2, 7, 3), randn(2, 7, 3, seed=1)
    value = torch.full((2, 7, 4), 2.5, dtype=torch.float64)
    for feature_map in (None, torch.exp, lambda x: F.relu(x) + 0.1):
        for causal in (False, True):
            out = linear_attention(query, key, value, causal=causal, feature_map=feature_map)
            torch.testing.assert_close(out, torch.full_like(out, 2.5))


def test_linear_attention_broadcasts_leading_dimensions():
    query, key, value = randn(2, 3, 5, 4), randn(1, 3, 5, 4, seed=1), randn(2, 1, 5, 2, seed=2)
    for causal in (False, True):
        got = linear_attention(query, key, value, causal=causal)
        assert got.shape == (2, 3, 5, 2)
        torch.testing.assert_close(got, quadratic_form(query, key, value, causal))


def test_linear_attention_gradients():
    inputs = tuple(randn(1, 6, 3, seed=s).requires_grad_() for s in range(3))
    for causal in (False, True):
        torch.autograd.gradcheck(lambda q, k, v, c=causal: linear_attention(q, k, v, causal=c, chunk_size=4), inputs)
    torch.autograd.gradcheck(linear_attention_recurrent, inputs)


def test_linear_attention_errors_name_the_shapes():
    query = randn(1, 4, 3)
    with pytest.raises(ValueError, match=r"as many queries as keys: shapes query \(1, 4, 3\), key \(1, 5, 3\)"):
        linear_attention(query, randn(1, 5, 3), randn(1, 5, 2), causal=True)
    with pytest.raises(ValueError, match="one query per key"):
        linear_attention_recurrent(query, randn(1, 5, 3), randn(1, 5, 2))
    with pytest.raises(ValueError, match="same number of features"):
        linear_attention(query, randn(1, 4, 2), randn(1, 4, 2))
    key = randn(1, 4, 3, seed=1)
    with pytest.raises(ValueError, match="feature map gave query features of width 3 and key features of width 2"):
        linear_attention(query, key, key, feature_map=lambda x: x.exp() if x is query else x[..., :2].exp())
    with pytest.raises(TypeError, match="floating-point"):
        linear_attention(query, query, torch.ones(1, 4, 2, dtype=torch.long))


# --- grouped key/value heads ---------------------------------------------------------------------

@settings(max_examples=40, deadline=None)
@given(st.sampled_from([(1, 1), (2, 1), (4, 2), (6, 3), (8, 2), (4, 4)]), st.integers(1, 6), st.integers(1, 6),
       st.booleans(), st.integers(0, 1000))
def test_grouped_heads_equal_pytorch_enable_gqa(heads, lq, lk, causal, seed):
    num_heads, num_kv_heads = heads
    query = randn(2, num_heads, lq, 4, seed=seed)
    key, value = randn(2, num_kv_heads, lk, 4, seed=seed + 1), randn(2, num_kv_heads, lk, 3, seed=seed + 2)
    expected = F.scaled_dot_product_attention(query, key, value, is_causal=causal, enable_gqa=True)
    got, weights = scaled_dot_product_attention(query, key, value, causal=causal, enable_gqa=True)
    if causal and lq > lk:
        expected = expected.masked_fill(~causal_mask(lq, lk).any(-1)[:, None], 0.0)
    torch.testing.assert_close(got, expected)
    assert weights.shape == (2, num_heads, lq, lk)


def test_query_head_h_reads_kv_head_h_over_group_size():
    query = randn(1, 6, 3, 4)
    key, value = randn(1, 2, 5, 4, seed=1), randn(1, 2, 5, 3, seed=2)
    out, _ = scaled_dot_product_attention(query, key, value, enable_gqa=True)
    for h in range(6):
        alone, _ = scaled_dot_product_attention(query[:, h], key[:, h // 3], value[:, h // 3])
        torch.testing.assert_close(out[:, h], alone)


def test_grouped_heads_errors_name_both_numbers():
    with pytest.raises(ValueError, match="query has 6 heads and key/value have 4"):
        scaled_dot_product_attention(randn(1, 6, 3, 4), randn(1, 4, 3, 4), randn(1, 4, 3, 4), enable_gqa=True)
    with pytest.raises(ValueError, match="needs a heads dimension"):
        scaled_dot_product_attention(randn(3, 4), randn(3, 4), randn(3, 4), enable_gqa=True)
    with pytest.raises(ValueError, match="same number of heads"):
        scaled_dot_product_attention(randn(1, 4, 3, 4), randn(1, 2, 3, 4), randn(1, 1, 3, 4), enable_gqa=True)
    # Without enable_gqa, different head counts are a broadcasting error, as before.
    with pytest.raises(ValueError, match="do not broadcast"):
        scaled_dot_product_attention(randn(1, 4, 3, 4), randn(1, 2, 3, 4), randn(1, 2, 3, 4))


# --- multi-head attention with fewer key/value heads ---------------------------------------------

from helpers.attention import MultiHeadAttention  # noqa: E402


@pytest.mark.parametrize("num_kv_heads", [1, 2, 4])
@pytest.mark.parametrize("causal", [False, True])
def test_grouped_multi_head_attention_matches_pytorch_enable_gqa(num_kv_heads, causal):
    torch.manual_seed(0)
    module = MultiHeadAttention(16, 4, num_kv_heads=num_kv_heads).double()
    assert module.k_proj.out_features == module.v_proj.out_features == num_kv_heads * 4
    assert module.q_proj.out_features == module.out_proj.in_features == 16
    x = randn(2, 7, 16)
    q = module.q_proj(x).view(2, 7, 4, 4).transpose(1, 2)  # (B, H, L, hd)
    k = module.k_proj(x).view(2, 7, num_kv_heads, 4).transpose(1, 2)  # (B, G, L, hd)
    v = module.v_proj(x).view(2, 7, num_kv_heads, 4).transpose(1, 2)
    heads = F.scaled_dot_product_attention(q, k, v, is_causal=causal, enable_gqa=True)
    expected = module.out_proj(heads.transpose(1, 2).reshape(2, 7, 16))
    with_weights, weights = module(x, causal=causal)
    fused, none = module(x, causal=causal, need_weights=False)
    torch.testing.assert_close(with_weights, expected)
    torch.testing.assert_close(fused, expected)
    assert weights.shape == (2, 4, 7, 7) and none is None
    padding = torch.tensor([[True] * 7, [True] * 4 + [False] * 3])[:, None, None, :]
    torch.testing.assert_close(module(x, mask=padding)[0], module(x, mask=padding, need_weights=False)[0])


def test_all_key_value_heads_is_plain_multi_head_attention():
    torch.manual_seed(3)
    plain = MultiHeadAttention(12, 3)
    torch.manual_seed(3)
    same = MultiHeadAttention(12, 3, num_kv_heads=3)
    for a, b in zip(plain.parameters(), same.parameters(), strict=True):
        torch.testing.assert_close(a, b)


def test_grouped_multi_head_attention_rejects_a_bad_group():
    with pytest.raises(ValueError, match=r"num_kv_heads \(3\) must divide num_heads \(4\)"):
        MultiHeadAttention(16, 4, num_kv_heads=3)
    with pytest.raises(ValueError, match=r"num_kv_heads \(0\) must divide num_heads \(4\)"):
        MultiHeadAttention(16, 4, num_kv_heads=0)


def test_tiling_not_the_window_keeps_the_memory_linear():
    # Notebook 12 credits the linear memory to the tiling: causal tiling without a window holds the
    # same peak memory as windowed tiling (within one tile of scores), and the same exponent.
    lengths, block = [256, 512, 1024, 2048], 32
    peaks = {"causal": [], "windowed": []}
    for n in lengths:
        x = randn(1, n, 16, dtype=torch.float32)
        with torch.no_grad():
            peaks["causal"].append(peak_memory(lambda x=x: tiled_attention(x, x, x, causal=True, block_size=block)))
            peaks["windowed"].append(peak_memory(lambda x=x: tiled_attention(x, x, x, window=32, block_size=block)))
    tile = block * block * 4
    assert all(abs(c - w) <= tile for c, w in zip(peaks["causal"], peaks["windowed"], strict=True))
    assert _growth_exponent(lengths, peaks["causal"]) < 1.2
