"""helpers.efficient: online softmax and tiled attention equal PyTorch's (values and gradients); the
recomputing backward stores nothing quadratic; peak memory is counted right."""

import pytest
import torch
import torch.nn.functional as F
from hypothesis import example, given, settings
from hypothesis import strategies as st

from helpers.attention import scaled_dot_product_attention
from helpers.efficient import (
    online_softmax,
    online_softmax_stats,
    peak_memory,
    tiled_attention,
    tiled_attention_recompute,
)


def _qkv(batch, lq, lk, d, dv, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(*batch, lq, d, generator=g, dtype=dtype),
            torch.randn(*batch, lk, d, generator=g, dtype=dtype),
            torch.randn(*batch, lk, dv, generator=g, dtype=dtype))


# ---------------------------------------------------------------- online softmax


@given(rows=st.integers(1, 4), n=st.integers(1, 40), block=st.integers(1, 50), spread=st.floats(0.1, 80.0),
       seed=st.integers(0, 2**16))
# The edge cases run every time; hypothesis adds random ones around them.
@example(rows=1, n=1, block=1, spread=1.0, seed=0)  # a single score
@example(rows=3, n=40, block=1, spread=80.0, seed=1)  # one score per block, large spread
@example(rows=2, n=7, block=50, spread=5.0, seed=2)  # one block longer than the row
@example(rows=2, n=12, block=4, spread=30.0, seed=3)  # the block divides the row
@settings(max_examples=20, deadline=None)
def test_online_softmax_equals_softmax(rows, n, block, spread, seed):
    scores = torch.randn(rows, n, generator=torch.Generator().manual_seed(seed)) * spread
    torch.testing.assert_close(online_softmax(scores, block), torch.softmax(scores, dim=-1))
    maximum, total = online_softmax_stats(scores, block)
    torch.testing.assert_close(maximum, scores.amax(dim=-1, keepdim=True))
    torch.testing.assert_close(total, torch.exp(scores - maximum).sum(dim=-1, keepdim=True))


def test_online_softmax_does_not_overflow():
    # exp(1000) overflows float32; the running maximum keeps every exponent <= 0.
    scores = torch.tensor([[1000.0, 999.0, -1000.0, 1001.0, 0.0]])
    weights = online_softmax(scores, block_size=2)
    assert torch.isfinite(weights).all()
    torch.testing.assert_close(weights, torch.softmax(scores, dim=-1))


def test_online_softmax_wrong_block_changes_nothing_but_bad_block_raises():
    with pytest.raises(ValueError, match="block_size must be a positive int"):
        online_softmax(torch.randn(3, 4), block_size=0)
    with pytest.raises(TypeError, match="floating-point"):
        online_softmax(torch.arange(4), block_size=2)


# ---------------------------------------------------------------- tiled attention


@given(batch=st.lists(st.integers(1, 3), min_size=0, max_size=2), lq=st.integers(1, 70), lk=st.integers(1, 70),
       d=st.integers(1, 17), dv=st.integers(1, 9), block=st.integers(1, 40), causal=st.booleans(),
       seed=st.integers(0, 2**16))
@example(batch=[], lq=1, lk=1, d=1, dv=1, block=1, causal=True, seed=0)  # one query, one key
@example(batch=[3, 2], lq=70, lk=3, d=17, dv=9, block=2, causal=True, seed=1)  # more queries than keys
@example(batch=[2], lq=5, lk=70, d=4, dv=3, block=40, causal=True, seed=2)  # more keys than queries
@example(batch=[1], lq=33, lk=33, d=8, dv=8, block=40, causal=False, seed=3)  # one block holds everything
@example(batch=[2], lq=48, lk=48, d=8, dv=4, block=16, causal=True, seed=4)  # blocks divide the length
@settings(max_examples=30, deadline=None)
def test_tiled_equals_pytorch_sdpa(batch, lq, lk, d, dv, block, causal, seed):
    query, key, value = _qkv(batch, lq, lk, d, dv, seed)
    expected = F.scaled_dot_product_attention(query, key, value, is_causal=causal)
    actual = tiled_attention(query, key, value, causal=causal, block_size=block)
    assert actual.shape == expected.shape
    assert (actual - expected).abs().max() <= 1e-5


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("lq, lk, block", [(300, 300, 128), (257, 300, 64), (300, 129, 100), (1, 500, 128),
                                           (500, 1, 7)])
def test_tiled_blocks_that_do_not_divide_the_length(lq, lk, block, causal):
    query, key, value = _qkv((2,), lq, lk, 16, 8, seed=lq + lk)
    expected = F.scaled_dot_product_attention(query, key, value, is_causal=causal)
    actual = tiled_attention(query, key, value, causal=causal, block_size=block)
    assert (actual - expected).abs().max() <= 1e-5


def test_tiled_equals_the_explicit_helper_and_broadcasts():
    query, _, _ = _qkv((2, 4), 33, 20, 8, 8, seed=1)
    _, key, value = _qkv((1, 4), 33, 20, 8, 5, seed=2)  # keys shared over the batch
    expected, _ = scaled_dot_product_attention(query, key, value, causal=True)
    torch.testing.assert_close(tiled_attention(query, key, value, causal=True, block_size=6), expected)


def test_tiled_causal_skips_future_blocks():
    # Poison every key and value in the future of all queries: a skipped block cannot leak NaN.
    query, key, value = _qkv((1,), 64, 64, 8, 8, seed=3)
    key[:, 32:], value[:, 32:] = float("nan"), float("nan")
    out = tiled_attention(query[:, :32], key, value, causal=True, block_size=16)
    assert torch.isfinite(out).all()
    expected = F.scaled_dot_product_attention(query[:, :32], key[:, :32], value[:, :32], is_causal=True)
    torch.testing.assert_close(out, expected)


def test_tiled_gradients_match_sdpa():
    query, key, value = (t.double().requires_grad_() for t in _qkv((1,), 9, 11, 3, 2, seed=4))
    torch.autograd.gradcheck(lambda q, k, v: tiled_attention(q, k, v, causal=True, block_size=4),
                             (query, key, value))
    grads = torch.autograd.grad(tiled_attention(query, key, value, block_size=7).square().sum(), (query, key, value))
    expected = torch.autograd.grad(F.scaled_dot_product_attention(query, key, value).square().sum(),
                                   (query, key, value))
    for g, e in zip(grads, expected, strict=True):
        torch.testing.assert_close(g, e)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_tiled_half_precision_is_finite_and_close(dtype):
    query, key, value = _qkv((2,), 100, 90, 16, 16, seed=5)
    out = tiled_attention(query.to(dtype), key.to(dtype), value.to(dtype), causal=True, block_size=32)
    assert out.dtype == dtype and torch.isfinite(out).all()
    expected = F.scaled_dot_product_attention(query, key, value, is_causal=True)
    torch.testing.assert_close(out.float(), expected, atol=2e-2, rtol=2e-2)


def test_tiled_errors_name_the_shapes():
    q, k, v = _qkv((2,), 5, 6, 4, 3)
    with pytest.raises(ValueError, match=r"query \(2, 5, 4\), key \(2, 6, 3\)"):
        tiled_attention(q, k[..., :3], v)
    with pytest.raises(ValueError, match="same length"):
        tiled_attention(q, k, v[:, :5])
    with pytest.raises(ValueError, match="do not broadcast"):
        tiled_attention(q, torch.randn(3, 6, 4), torch.randn(3, 6, 3))
    with pytest.raises(ValueError, match="at least one key"):
        tiled_attention(q, k[:, :0], v[:, :0])
    with pytest.raises(ValueError, match="block_size"):
        tiled_attention(q, k, v, block_size=0)
    with pytest.raises(TypeError, match="floating-point"):
        tiled_attention(q.long(), k, v)
    with pytest.raises(TypeError, match="share a dtype"):
        tiled_attention(q.double(), k, v)


# ---------------------------------------------------------------- tiled attention with a recomputing backward


@given(batch=st.lists(st.integers(1, 3), min_size=0, max_size=2), lq=st.integers(1, 40), lk=st.integers(1, 40),
       d=st.integers(1, 9), dv=st.integers(1, 6), block=st.integers(1, 25), causal=st.booleans(),
       seed=st.integers(0, 2**16))
@example(batch=[], lq=1, lk=1, d=1, dv=1, block=1, causal=True, seed=0)  # one query, one key
@example(batch=[2], lq=40, lk=3, d=5, dv=4, block=2, causal=True, seed=1)  # more queries than keys
@example(batch=[2], lq=5, lk=40, d=4, dv=3, block=25, causal=True, seed=2)  # more keys than queries
@example(batch=[1, 2], lq=32, lk=32, d=8, dv=4, block=8, causal=True, seed=3)  # blocks divide the length
@settings(max_examples=20, deadline=None)
def test_recompute_values_and_gradients_equal_sdpa(batch, lq, lk, d, dv, block, causal, seed):
    query, key, value = (t.double().requires_grad_() for t in _qkv(batch, lq, lk, d, dv, seed))
    grad_output = torch.randn(*batch, lq, dv, generator=torch.Generator().manual_seed(seed + 1), dtype=torch.double)
    actual = tiled_attention_recompute(query, key, value, causal=causal, block_size=block)
    expected = F.scaled_dot_product_attention(query, key, value, is_causal=causal)
    torch.testing.assert_close(actual, expected)
    grads = torch.autograd.grad(actual, (query, key, value), grad_output)
    reference = torch.autograd.grad(expected, (query, key, value), grad_output)
    for g, e in zip(grads, reference, strict=True):
        torch.testing.assert_close(g, e)


def test_recompute_gradcheck_with_broadcast_keys():
    query, _, _ = _qkv((2, 3), 9, 11, 3, 2, seed=6)
    _, key, value = _qkv((1, 3), 9, 11, 3, 2, seed=7)  # keys and values shared over the batch
    inputs = tuple(t.double().requires_grad_() for t in (query, key, value))
    torch.autograd.gradcheck(lambda q, k, v: tiled_attention_recompute(q, k, v, causal=True, block_size=4), inputs)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_recompute_half_precision_gradients(dtype):
    query, key, value = _qkv((2,), 50, 40, 8, 8, seed=8)
    half = [t.to(dtype).requires_grad_() for t in (query, key, value)]
    out = tiled_attention_recompute(*half, causal=True, block_size=16)
    assert out.dtype == dtype
    grads = torch.autograd.grad(out.float().sum(), half)
    full = [t.clone().requires_grad_() for t in (query, key, value)]
    expected = torch.autograd.grad(F.scaled_dot_product_attention(*full, is_causal=True).sum(), full)
    for g, e in zip(grads, expected, strict=True):
        assert g.dtype == dtype and torch.isfinite(g).all()
        torch.testing.assert_close(g.float(), e, atol=5e-2, rtol=5e-2)


def test_recompute_skips_future_blocks_in_both_passes():
    query, key, value = (t.requires_grad_() for t in _qkv((1,), 64, 64, 8, 8, seed=9))
    with torch.no_grad():
        key[:, 32:], value[:, 32:] = float("nan"), float("nan")
    out = tiled_attention_recompute(query[:, :32], key, value, causal=True, block_size=16)
    grads = torch.autograd.grad(out.sum(), (query, key, value))
    assert torch.isfinite(out).all() and all(torch.isfinite(g[:, :32]).all() for g in grads)


def test_training_memory_explicit_and_plain_tiled_are_quadratic_recompute_is_not():
    def training_peak(attend, length):
        query, key, value = (t.requires_grad_() for t in _qkv((1,), length, length, 16, 16))
        grad_output = torch.randn(1, length, 16)
        return peak_memory(lambda: torch.autograd.grad(attend(query, key, value), (query, key, value), grad_output))

    explicit = {n: training_peak(lambda q, k, v: scaled_dot_product_attention(q, k, v)[0], n) for n in (128, 256)}
    plain = {n: training_peak(lambda q, k, v: tiled_attention(q, k, v, block_size=16), n) for n in (128, 256)}
    recompute = {n: training_peak(lambda q, k, v: tiled_attention_recompute(q, k, v, block_size=16), n)
                 for n in (128, 256)}
    assert explicit[256] / explicit[128] > 3.5
    assert plain[256] / plain[128] > 3.0  # autograd saves every tile: quadratic again
    assert recompute[256] / recompute[128] < 2.5  # output, log-sum-exp, gradients: linear
    assert recompute[256] < explicit[256] / 10


def test_recompute_errors_like_tiled():
    q, k, v = _qkv((2,), 5, 6, 4, 3)
    with pytest.raises(ValueError, match="same length"):
        tiled_attention_recompute(q, k, v[:, :5])
    with pytest.raises(ValueError, match="block_size"):
        tiled_attention_recompute(q, k, v, block_size=0)


# ---------------------------------------------------------------- peak memory


def test_peak_memory_counts_new_tensors_only():
    x = torch.randn(256, 256)  # created before: not counted
    with torch.no_grad():
        assert peak_memory(lambda: x[:10]) == 0  # a view allocates nothing
        assert peak_memory(lambda: x * 2) == 256 * 256 * 4
        assert peak_memory(lambda: (x * 2).sum()) == 256 * 256 * 4 + 4  # the temporary, then the scalar
        assert peak_memory(lambda: x.mul_(1.0)) == 0  # in place


def test_explicit_attention_memory_is_quadratic_and_tiled_is_not():
    sizes = {}
    with torch.no_grad():
        for length in (128, 256):
            q, k, v = _qkv((1,), length, length, 16, 16)
            sizes[length] = (peak_memory(lambda: scaled_dot_product_attention(q, k, v)[0]),  # noqa: B023
                             peak_memory(lambda: tiled_attention(q, k, v, block_size=16)))  # noqa: B023
    assert sizes[256][0] / sizes[128][0] > 3.5  # doubling the length quadruples the scores
    assert sizes[256][1] / sizes[128][1] < 2.5  # the output doubles; the tiles stay the same
    assert sizes[256][1] < sizes[256][0] / 20


def test_the_private_apis_peak_memory_uses_still_exist():
    # peak_memory is the one function behind private PyTorch APIs; when a release moves them,
    # this test names what moved and the release, instead of a notebook failing obscurely.
    from torch.utils import _python_dispatch, _pytree

    assert hasattr(_python_dispatch, "TorchDispatchMode"), f"TorchDispatchMode moved in torch {torch.__version__}"
    assert hasattr(_pytree, "tree_leaves"), f"_pytree.tree_leaves moved in torch {torch.__version__}"
    assert peak_memory(lambda: torch.empty(1000)) == 4000


# ---------------------------------------------------------------- the delta rule (notebook 12)


def _delta_inputs(batch, n, d, dv, seed=0, dtype=torch.float64, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    keys = F.normalize(torch.randn(*batch, n, d, generator=g, dtype=dtype), dim=-1)
    values = torch.randn(*batch, n, dv, generator=g, dtype=dtype)
    beta = torch.rand(*batch, n, generator=g, dtype=dtype)
    return keys.to(device), values.to(device), beta.to(device)


@given(n=st.integers(1, 20), d=st.integers(1, 9), dv=st.integers(1, 5), seed=st.integers(0, 2**16))
@settings(max_examples=25, deadline=None)
def test_the_triangular_solve_equals_the_recurrence(n, d, dv, seed):
    from helpers.efficient import delta_rule, delta_rule_recurrent

    keys, values, beta = _delta_inputs((2,), n, d, dv, seed)
    torch.testing.assert_close(delta_rule(keys, values, beta), delta_rule_recurrent(keys, values, beta))


def test_the_delta_rule_broadcasts_leading_dimensions_and_overwrites():
    from helpers.efficient import delta_rule, delta_rule_recurrent

    keys, values, beta = _delta_inputs((2, 3), 7, 4, 5)
    state = delta_rule(keys, values, beta)
    assert state.shape == (2, 3, 4, 5)
    torch.testing.assert_close(state, delta_rule_recurrent(keys, values, beta))
    # With β = 1 the last key retrieves exactly the last value, whatever was written before.
    state = delta_rule(keys, values, torch.ones_like(beta))
    torch.testing.assert_close((keys[..., -1, :, None] * state).sum(-2), values[..., -1, :])
    # Orthogonal keys and β = 1: nothing to correct, the delta rule is the additive rule.
    eye = torch.eye(4, dtype=torch.float64).expand(2, 4, 4)
    vals = values[:, 0, :4]
    ones = torch.ones(2, 4, dtype=torch.float64)
    torch.testing.assert_close(delta_rule(eye, vals, ones), eye.transpose(-2, -1) @ vals)


def test_the_delta_rule_creates_its_tensors_on_the_inputs_device():
    # On the meta device a tensor created without device= lands on the CPU and the call fails:
    # this is what catches torch.eye(n, dtype=...) without device= (a crash on CUDA).
    from helpers.efficient import delta_rule, delta_rule_recurrent

    keys, values, beta = (t.to("meta") for t in _delta_inputs((2,), 6, 4, 3))
    for fn in (delta_rule, delta_rule_recurrent):
        state = fn(keys, values, beta)
        assert state.device.type == "meta" and state.shape == (2, 4, 3)


def test_the_delta_rule_errors_name_the_shapes():
    from helpers.efficient import delta_rule

    keys, values, beta = _delta_inputs((2,), 6, 4, 3)
    with pytest.raises(ValueError, match=r"shapes keys \(2, 6, 4\), values \(2, 5, 3\)"):
        delta_rule(keys, values[:, :5], beta)
    with pytest.raises(ValueError, match="beta"):
        delta_rule(keys, values, beta[:, :, None])
    with pytest.raises(TypeError, match="beta must be a floating-point tensor"):
        delta_rule(keys, values, (beta > 0.5))


# ---------------------------------------------------------------- the rolling key/value cache (notebook 12)


@given(length=st.integers(1, 40), window=st.integers(1, 12), chunk=st.integers(1, 9), seed=st.integers(0, 2**16))
@example(length=30, window=4, chunk=1, seed=0)  # token by token, the ring wraps many times
@example(length=30, window=4, chunk=9, seed=1)  # chunks longer than the window
@example(length=5, window=12, chunk=2, seed=2)  # never full
@settings(max_examples=30, deadline=None)
def test_the_rolling_cache_equals_windowed_attention_over_the_full_sequence(length, window, chunk, seed):
    from helpers.attention import sliding_window_mask
    from helpers.efficient import RollingKVCache

    q, k, v = _qkv((2, 3), length, length, 8, 5, seed=seed, dtype=torch.float64)  # (B, heads, L, ·)
    expected, _ = scaled_dot_product_attention(q, k, v, sliding_window_mask(length, length, window))
    cache = RollingKVCache(window)
    outputs = []
    for start in range(0, length, chunk):
        keys, values, mask = cache.append(k[..., start:start + chunk, :], v[..., start:start + chunk, :])
        assert keys.shape[-2] <= window + chunk
        outputs.append(scaled_dot_product_attention(q[..., start:start + chunk, :], keys, values, mask)[0])
    torch.testing.assert_close(torch.cat(outputs, dim=-2), expected)
    assert cache.length == length
    assert cache.nbytes == 2 * 3 * window * (8 + 5) * 8  # window slots of float64 keys (8) and values (5)


def test_the_rolling_cache_memory_does_not_grow_with_the_length():
    from helpers.attention import KVCache
    from helpers.efficient import RollingKVCache

    rolling, full = RollingKVCache(16), KVCache()
    sizes = []
    for step in range(64):
        k = torch.full((1, 2, 1, 4), float(step))
        rolling.append(k, k)
        full.append(k, k)
        sizes.append((rolling.nbytes, full.nbytes))
    assert {r for r, _ in sizes} == {2 * 2 * 16 * 4 * 4}  # 16 slots from the first token on
    assert sizes[-1][1] == 2 * 2 * 64 * 4 * 4
    # Slot p mod 16 holds position p: the last 16 positions, each once.
    assert sorted(rolling.positions.tolist()) == list(range(48, 64))
    assert sorted(rolling.key[0, 0, :, 0].tolist()) == [float(p) for p in range(48, 64)]


def test_the_rolling_cache_creates_its_tensors_on_the_inputs_device_and_checks_shapes():
    from helpers.efficient import RollingKVCache

    cache = RollingKVCache(3)
    k = torch.zeros(1, 2, 4, 8, device="meta")
    keys, values, mask = cache.append(k, k)
    assert keys.device.type == values.device.type == mask.device.type == cache.positions.device.type == "meta"
    assert keys.shape == (1, 2, 7, 8) and mask.shape == (4, 7)
    with pytest.raises(ValueError, match="must match them but for T"):
        cache.append(torch.zeros(1, 3, 1, 8), torch.zeros(1, 3, 1, 8))
    with pytest.raises(ValueError, match="window"):
        RollingKVCache(0)
    with pytest.raises(TypeError, match="key must be a floating-point tensor"):
        RollingKVCache(2).append(torch.zeros(1, 1, dtype=torch.long), torch.zeros(1, 1))
