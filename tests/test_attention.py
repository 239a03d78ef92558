"""helpers.attention against PyTorch's own attention, plus the invariants attention must keep."""

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.testing import assert_close

from helpers.attention import (
    MultiHeadAttention,
    causal_mask,
    masked_softmax,
    padding_mask,
    scaled_dot_product_attention,
)

FAST = settings(max_examples=40, deadline=None)


def random_mask(shape, generator, keep=0.7):
    return torch.rand(shape, generator=generator) < keep


# --------------------------------------------------------------------------------------------
# masked_softmax
# --------------------------------------------------------------------------------------------


def test_masked_softmax_without_mask_is_softmax():
    scores = torch.randn(3, 4, 5)
    assert_close(masked_softmax(scores), torch.softmax(scores, dim=-1))
    assert_close(masked_softmax(scores, dim=1), torch.softmax(scores, dim=1))


def test_masked_softmax_is_stable_for_huge_scores():
    scores = torch.tensor([[1000.0, 1001.0, 1002.0], [-1e4, 0.0, 1e4]])
    weights = masked_softmax(scores)
    assert torch.isfinite(weights).all()
    assert_close(weights[0], torch.softmax(torch.tensor([0.0, 1.0, 2.0]), dim=-1))
    assert_close(weights[1], torch.tensor([0.0, 0.0, 1.0]))


def test_masked_positions_are_exactly_zero_and_rows_renormalise():
    scores = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    mask = torch.tensor([[True, False, True, False]])
    weights = masked_softmax(scores, mask)
    assert weights[0, 1] == 0 and weights[0, 3] == 0
    assert_close(weights[0, [0, 2]], torch.softmax(torch.tensor([1.0, 3.0]), dim=-1))


def test_fully_masked_row_is_zero_in_forward_and_backward():
    scores = torch.randn(2, 3, requires_grad=True)
    mask = torch.tensor([[True, True, False], [False, False, False]])
    weights = masked_softmax(scores, mask)
    assert torch.equal(weights[1], torch.zeros(3))
    (weights * torch.randn(2, 3)).sum().backward()
    assert torch.isfinite(scores.grad).all()
    assert torch.equal(scores.grad[1], torch.zeros(3))
    assert torch.equal(scores.grad[0, 2], torch.tensor(0.0))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_masked_softmax_finite_in_half_precision(dtype):
    scores = (torch.randn(4, 8) * 1e3).to(dtype)
    mask = random_mask((4, 8), torch.Generator().manual_seed(0))
    mask[0] = False
    weights = masked_softmax(scores, mask)
    assert weights.dtype == dtype and torch.isfinite(weights).all()


@given(
    rows=st.integers(1, 5),
    cols=st.integers(1, 7),
    seed=st.integers(0, 2**16),
    scale=st.floats(0.01, 100.0),
)
@FAST
def test_rows_sum_to_one_where_anything_is_kept(rows, cols, seed, scale):
    generator = torch.Generator().manual_seed(seed)
    scores = torch.randn(rows, cols, generator=generator) * scale
    mask = random_mask((rows, cols), generator, keep=0.5)
    weights = masked_softmax(scores, mask)
    kept = mask.any(dim=-1)
    assert_close(weights.sum(-1)[kept], torch.ones(int(kept.sum())))
    assert torch.equal(weights.sum(-1)[~kept], torch.zeros(int((~kept).sum())))
    assert torch.equal(weights[~mask], torch.zeros(int((~mask).sum())))


def test_masked_softmax_rejects_bad_masks():
    scores = torch.randn(2, 3)
    with pytest.raises(TypeError, match="bool.*True means"):
        masked_softmax(scores, torch.ones(2, 3))
    with pytest.raises(ValueError, match=r"\(2, 4\).*\(2, 3\)"):
        masked_softmax(scores, torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(TypeError, match="floating-point"):
        masked_softmax(torch.ones(2, 3, dtype=torch.long))


# --------------------------------------------------------------------------------------------
# scaled_dot_product_attention vs torch.nn.functional.scaled_dot_product_attention
# --------------------------------------------------------------------------------------------


@given(
    batch=st.integers(1, 3),
    heads=st.integers(1, 3),
    num_queries=st.integers(1, 9),
    num_keys=st.integers(1, 9),
    dim=st.integers(1, 16),
    value_dim=st.integers(1, 8),
    use_mask=st.booleans(),
    causal=st.booleans(),
    seed=st.integers(0, 2**16),
)
@FAST
def test_matches_pytorch_sdpa(batch, heads, num_queries, num_keys, dim, value_dim, use_mask, causal, seed):
    generator = torch.Generator().manual_seed(seed)
    query = torch.randn(batch, heads, num_queries, dim, generator=generator)
    key = torch.randn(batch, heads, num_keys, dim, generator=generator)
    value = torch.randn(batch, heads, num_keys, value_dim, generator=generator)
    mask = random_mask((batch, 1, num_queries, num_keys), generator) if use_mask else None
    ours, weights = scaled_dot_product_attention(query, key, value, mask, causal=causal)
    full = mask
    if causal:
        full = causal_mask(num_queries, num_keys) if mask is None else mask & causal_mask(num_queries, num_keys)
    reference = F.scaled_dot_product_attention(query, key, value, attn_mask=full)
    assert ours.shape == (batch, heads, num_queries, value_dim)
    assert weights.shape == (batch, heads, num_queries, num_keys)
    # PyTorch returns 0 for a query with nothing to attend to, as we do.
    assert_close(ours, reference, atol=1e-5, rtol=1e-4)


def test_is_causal_matches_pytorch_when_lengths_differ():
    query, key, value = torch.randn(2, 3, 4), torch.randn(2, 6, 4), torch.randn(2, 6, 5)
    ours, weights = scaled_dot_product_attention(query, key, value, causal=True)
    assert_close(ours, F.scaled_dot_product_attention(query, key, value, is_causal=True))
    assert torch.equal(weights[0] > 0, causal_mask(3, 6))


def test_default_scale_is_one_over_sqrt_d_and_custom_scale_matches():
    query, key, value = torch.randn(1, 2, 8), torch.randn(1, 3, 8), torch.randn(1, 3, 2)
    _, weights = scaled_dot_product_attention(query, key, value)
    assert_close(weights, torch.softmax(query @ key.transpose(-2, -1) / math.sqrt(8), dim=-1))
    ours, _ = scaled_dot_product_attention(query, key, value, scale=0.3)
    assert_close(ours, F.scaled_dot_product_attention(query, key, value, scale=0.3))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_finite_in_half_precision_with_large_inputs(dtype):
    generator = torch.Generator().manual_seed(0)
    # Raw dot products of these reach ~1e4, past float16's comfort; scaling the query first keeps
    # the scores finite. Near-ties make the winner rounding-dependent, so only finiteness is checked.
    query, key, value = (torch.randn(2, 16, 64, generator=generator) * 30 for _ in range(3))
    mask = random_mask((2, 16, 16), generator)
    mask[:, 3] = False
    out, weights = scaled_dot_product_attention(query.to(dtype), key.to(dtype), value.to(dtype), mask, causal=True)
    assert out.dtype == dtype and torch.isfinite(out).all() and torch.isfinite(weights).all()
    assert torch.equal(out[:, 3].float(), torch.zeros(2, 64))


@pytest.mark.parametrize("dtype, tolerance", [(torch.float16, 1e-2), (torch.bfloat16, 5e-2)])
def test_half_precision_agrees_with_float32(dtype, tolerance):
    generator = torch.Generator().manual_seed(1)
    query, key, value = (torch.randn(2, 16, 64, generator=generator) for _ in range(3))
    out, _ = scaled_dot_product_attention(query.to(dtype), key.to(dtype), value.to(dtype), causal=True)
    reference, _ = scaled_dot_product_attention(query, key, value, causal=True)
    assert_close(out.float(), reference, atol=tolerance, rtol=tolerance)


def test_gradcheck_in_float64():
    generator = torch.Generator().manual_seed(0)
    query = torch.randn(2, 3, 4, dtype=torch.float64, generator=generator, requires_grad=True)
    key = torch.randn(2, 5, 4, dtype=torch.float64, generator=generator, requires_grad=True)
    value = torch.randn(2, 5, 3, dtype=torch.float64, generator=generator, requires_grad=True)
    mask = random_mask((2, 3, 5), generator)
    mask[1, 0] = False  # a row with nothing to attend to must have a finite, zero gradient

    def attend(q, k, v):
        return scaled_dot_product_attention(q, k, v, mask, causal=True)[0]

    assert torch.autograd.gradcheck(attend, (query, key, value))


def test_gradients_match_pytorch_sdpa():
    inputs = [torch.randn(2, 2, 5, 8, requires_grad=True) for _ in range(3)]
    twins = [t.detach().clone().requires_grad_() for t in inputs]
    upstream = torch.randn(2, 2, 5, 8)
    (scaled_dot_product_attention(*inputs, causal=True)[0] * upstream).sum().backward()
    (F.scaled_dot_product_attention(*twins, is_causal=True) * upstream).sum().backward()
    for ours, theirs in zip(inputs, twins, strict=True):
        assert_close(ours.grad, theirs.grad, atol=1e-5, rtol=1e-4)


@given(seed=st.integers(0, 2**16), num_keys=st.integers(2, 8))
@FAST
def test_masked_keys_and_values_never_change_the_output(seed, num_keys):
    generator = torch.Generator().manual_seed(seed)
    query, key, value = (torch.randn(2, 3, 4, generator=generator), torch.randn(2, num_keys, 4, generator=generator),
                         torch.randn(2, num_keys, 5, generator=generator))
    mask = random_mask((2, 1, num_keys), generator)
    out, _ = scaled_dot_product_attention(query, key, value, mask)
    hidden = ~mask[:, 0, :, None]  # (batch, keys, 1)
    new_key = torch.where(hidden, torch.randn(key.shape, generator=generator) * 100, key)
    new_value = torch.where(hidden, torch.randn(value.shape, generator=generator) * 100, value)
    new_out, _ = scaled_dot_product_attention(query, new_key, new_value, mask)
    assert torch.equal(out, new_out)


@given(seed=st.integers(0, 2**16), length=st.integers(2, 8))
@FAST
def test_self_attention_is_permutation_equivariant(seed, length):
    generator = torch.Generator().manual_seed(seed)
    tokens = torch.randn(1, length, 6, generator=generator)
    module = MultiHeadAttention(6, 2)
    order = torch.randperm(length, generator=generator)
    out, _ = module(tokens)
    permuted_out, _ = module(tokens[:, order])
    assert_close(permuted_out, out[:, order], atol=1e-5, rtol=1e-4)


@given(seed=st.integers(0, 2**16), length=st.integers(2, 8), data=st.data())
@FAST
def test_causal_output_at_t_ignores_inputs_after_t(seed, length, data):
    t = data.draw(st.integers(0, length - 2))
    generator = torch.Generator().manual_seed(seed)
    tokens = torch.randn(1, length, 8, generator=generator)
    module = MultiHeadAttention(8, 2)
    out, _ = module(tokens, causal=True)
    changed = tokens.clone()
    changed[:, t + 1:] = torch.randn(1, length - t - 1, 8, generator=generator) * 10
    new_out, _ = module(changed, causal=True)
    assert_close(new_out[:, : t + 1], out[:, : t + 1])
    assert not torch.allclose(new_out[:, t + 1:], out[:, t + 1:])


def test_sdpa_shape_and_type_errors_name_the_shapes():
    q, k, v = torch.randn(2, 3, 4), torch.randn(2, 5, 4), torch.randn(2, 5, 6)
    with pytest.raises(ValueError, match=r"query \(2, 3, 4\), key \(2, 5, 7\)"):
        scaled_dot_product_attention(q, torch.randn(2, 5, 7), v)
    with pytest.raises(ValueError, match=r"key \(2, 5, 4\), value \(2, 6, 6\)"):
        scaled_dot_product_attention(q, k, torch.randn(2, 6, 6))
    with pytest.raises(ValueError, match="batch"):
        scaled_dot_product_attention(q, torch.randn(3, 5, 4), torch.randn(3, 5, 6))
    with pytest.raises(TypeError, match="True means 'may attend'"):
        scaled_dot_product_attention(q, k, v, torch.ones(2, 3, 5, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"\(3, 3\).*\(2, 3, 5\)"):
        scaled_dot_product_attention(q, k, v, torch.ones(3, 3, dtype=torch.bool))
    with pytest.raises(TypeError, match="share a dtype"):
        scaled_dot_product_attention(q, k.double(), v)


def test_padding_and_causal_masks():
    assert torch.equal(padding_mask(torch.tensor([2, 0, 3])),
                       torch.tensor([[True, True, False], [False, False, False], [True, True, True]]))
    assert padding_mask(torch.tensor([1]), max_len=4).shape == (1, 4)
    assert torch.equal(causal_mask(2, 3), torch.tensor([[True, False, False], [True, True, False]]))


# --------------------------------------------------------------------------------------------
# MultiHeadAttention vs torch.nn.MultiheadAttention
# --------------------------------------------------------------------------------------------


def twin_modules(embed_dim=16, num_heads=4, kdim=None, vdim=None, bias=True, seed=0):
    torch.manual_seed(seed)
    reference = nn.MultiheadAttention(embed_dim, num_heads, bias=bias, kdim=kdim, vdim=vdim, batch_first=True)
    with torch.no_grad():  # non-zero biases, so a bias copied to the wrong place shows
        for p in reference.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return MultiHeadAttention.from_torch(reference), reference


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("kdim, vdim", [(None, None), (12, 10)])
def test_parameter_count_matches_pytorch(bias, kdim, vdim):
    ours, reference = twin_modules(kdim=kdim, vdim=vdim, bias=bias)
    fresh = MultiHeadAttention(16, 4, bias=bias, kdim=kdim, vdim=vdim)
    count = sum(p.numel() for p in reference.parameters())
    assert sum(p.numel() for p in ours.parameters()) == count
    assert sum(p.numel() for p in fresh.parameters()) == count


@given(
    batch=st.integers(1, 3),
    num_queries=st.integers(1, 7),
    num_keys=st.integers(1, 7),
    cross=st.booleans(),
    separate=st.booleans(),
    padded=st.booleans(),
    causal=st.booleans(),
    seed=st.integers(0, 2**16),
)
@FAST
def test_matches_torch_multihead_attention(batch, num_queries, num_keys, cross, separate, padded, causal, seed):
    kdim, vdim = (12, 10) if separate else (None, None)
    ours, reference = twin_modules(kdim=kdim, vdim=vdim, seed=seed % 7)
    generator = torch.Generator().manual_seed(seed)
    if not (cross or separate):
        num_keys = num_queries
    query = torch.randn(batch, num_queries, 16, generator=generator)
    key = torch.randn(batch, num_keys, kdim or 16, generator=generator) if (cross or separate) else query
    value = torch.randn(batch, num_keys, vdim or 16, generator=generator) if (cross or separate) else query

    lengths = torch.randint(1, num_keys + 1, (batch,), generator=generator)
    keep = padding_mask(lengths, num_keys) if padded else torch.ones(batch, num_keys, dtype=torch.bool)
    allowed = keep[:, None, None, :]
    if causal:
        allowed = allowed & causal_mask(num_queries, num_keys)
    # Rows with nothing to attend to are NaN in PyTorch's module (zeros here): compare the rest.
    live = allowed.expand(batch, 1, num_queries, num_keys).any(-1)[:, 0]  # (batch, Lq)

    out, weights = ours(query, key, value, keep[:, None, None, :] if padded else None, causal=causal)
    ref_out, ref_weights = reference(
        query, key, value,
        key_padding_mask=~keep if padded else None,  # PyTorch: True = may NOT attend
        attn_mask=~causal_mask(num_queries, num_keys) if causal else None,
        average_attn_weights=False,
    )
    assert weights.shape == (batch, 4, num_queries, num_keys)
    assert_close(out[live], ref_out[live], atol=1e-5, rtol=1e-4)
    assert_close(weights.transpose(1, 2)[live], ref_weights.transpose(1, 2)[live], atol=1e-5, rtol=1e-4)
    assert torch.equal(out[~live], ours.out_proj.bias.expand_as(out)[~live])


def test_gradients_match_torch_multihead_attention():
    ours, reference = twin_modules()
    query = torch.randn(2, 5, 16, requires_grad=True)
    twin = query.detach().clone().requires_grad_()
    upstream = torch.randn(2, 5, 16)
    (ours(query, causal=True)[0] * upstream).sum().backward()
    (reference(twin, twin, twin, attn_mask=~causal_mask(5), need_weights=False)[0] * upstream).sum().backward()
    assert_close(query.grad, twin.grad, atol=1e-5, rtol=1e-4)
    q_grad, k_grad, v_grad = reference.in_proj_weight.grad.chunk(3)
    assert_close(ours.q_proj.weight.grad, q_grad, atol=1e-5, rtol=1e-4)
    assert_close(ours.k_proj.weight.grad, k_grad, atol=1e-5, rtol=1e-4)
    assert_close(ours.v_proj.weight.grad, v_grad, atol=1e-5, rtol=1e-4)
    assert_close(ours.out_proj.weight.grad, reference.out_proj.weight.grad, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("causal", [False, True])
def test_fused_path_equals_explicit_path(causal):
    module = MultiHeadAttention(16, 4)
    query, key = torch.randn(2, 5, 16), torch.randn(2, 7, 16)
    mask = padding_mask(torch.tensor([7, 3]))[:, None, None, :]
    explicit, weights = module(query, key, mask=mask, causal=causal)
    fused, none = module(query, key, mask=mask, causal=causal, need_weights=False)
    assert none is None and weights is not None
    assert_close(fused, explicit, atol=1e-5, rtol=1e-4)


def test_fully_masked_query_gives_zeros_not_nan():
    module = MultiHeadAttention(8, 2, bias=False)
    mask = torch.zeros(1, 1, 3, 3, dtype=torch.bool)
    out, weights = module(torch.randn(1, 3, 8), mask=mask)
    assert torch.equal(out, torch.zeros(1, 3, 8)) and torch.equal(weights, torch.zeros(1, 2, 3, 3))
    fused, _ = module(torch.randn(1, 3, 8), mask=mask, need_weights=False)
    assert torch.equal(fused, torch.zeros(1, 3, 8))


def test_from_torch_keeps_dropout_and_device_and_rejects_extras():
    reference = nn.MultiheadAttention(8, 2, dropout=0.25, batch_first=False)
    assert MultiHeadAttention.from_torch(reference).dropout == 0.25
    with pytest.raises(ValueError, match="add_bias_kv"):
        MultiHeadAttention.from_torch(nn.MultiheadAttention(8, 2, add_bias_kv=True))
    with pytest.raises(TypeError, match="MultiheadAttention"):
        MultiHeadAttention.from_torch(nn.Linear(2, 2))


def test_module_errors_name_numbers_and_shapes():
    with pytest.raises(ValueError, match=r"embed_dim \(10\).*num_heads \(4\)"):
        MultiHeadAttention(10, 4)
    module = MultiHeadAttention(16, 4)
    with pytest.raises(ValueError, match=r"12 features.*expects 16 \(embed_dim\).*query \(2, 5, 12\)"):
        module(torch.randn(2, 5, 12))
    with pytest.raises(ValueError, match=r"batch size.*key \(3, 5, 16\)"):
        module(torch.randn(2, 5, 16), torch.randn(3, 5, 16))
    with pytest.raises(ValueError, match=r"\(batch, length, features\).*\(5, 16\)"):
        module(torch.randn(5, 16))
    with pytest.raises(TypeError, match="bool"):
        module(torch.randn(2, 5, 16), mask=torch.ones(2, 1, 1, 5))
    with pytest.raises(ValueError, match=r"\(2, 1, 1, 4\).*\(2, 4, 5, 5\)"):
        module(torch.randn(2, 5, 16), mask=torch.ones(2, 1, 1, 4, dtype=torch.bool))


def test_dropout_is_off_in_eval_mode():
    module = MultiHeadAttention(8, 2, dropout=0.9).eval()
    tokens = torch.randn(1, 4, 8)
    assert torch.equal(module(tokens)[0], module(tokens)[0])
    module.train()
    assert not torch.equal(module(tokens)[0], module(tokens)[0])


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("kdim, vdim", [(None, None), (12, 10)])
@pytest.mark.parametrize("seed", [0, 7])
def test_initialisation_is_pytorchs_number_for_number(bias, kdim, vdim, seed):
    # PyTorch draws Xavier on the packed (3E, E) input weight (or on each separate weight when
    # kdim/vdim differ) and nn.Linear's default for out_proj; the same seed gives the same numbers.
    torch.manual_seed(seed)
    reference = nn.MultiheadAttention(16, 4, bias=bias, kdim=kdim, vdim=vdim, batch_first=True)
    after_reference = torch.rand(1)
    torch.manual_seed(seed)
    ours = MultiHeadAttention(16, 4, bias=bias, kdim=kdim, vdim=vdim)
    after_ours = torch.rand(1)
    twin = MultiHeadAttention.from_torch(reference)
    for name, p in twin.state_dict().items():
        assert torch.equal(ours.state_dict()[name], p), name
    assert torch.equal(after_ours, after_reference)  # the generator is left where PyTorch leaves it
    if kdim is None:  # the packed bound: sqrt(6 / (E + 3E)), not sqrt(6 / (E + E)) per block
        bound = math.sqrt(6 / (16 + 3 * 16))
        assert ours.q_proj.weight.abs().max() <= bound


def test_trains_like_pytorch_from_the_same_seed():
    torch.manual_seed(3)
    reference = nn.MultiheadAttention(16, 4, batch_first=True)
    torch.manual_seed(3)
    ours = MultiHeadAttention(16, 4)
    tokens = torch.randn(2, 5, 16, generator=torch.Generator().manual_seed(0))
    for module, forward in ((reference, lambda: reference(tokens, tokens, tokens)[0]), (ours, lambda: ours(tokens)[0])):
        optimizer = torch.optim.SGD(module.parameters(), lr=0.1)
        for _ in range(3):
            optimizer.zero_grad()
            forward().pow(2).mean().backward()
            optimizer.step()
    assert_close(ours(tokens)[0], reference(tokens, tokens, tokens)[0], atol=1e-5, rtol=1e-4)


def test_fused_path_never_nan_even_where_the_kernel_gives_nan(monkeypatch):
    # Older PyTorch releases return NaN from F.scaled_dot_product_attention for a query whose
    # every key is masked; the fused path must not rely on the release. Emulate such a kernel.
    real_sdpa = F.scaled_dot_product_attention

    def old_sdpa(q, k, v, attn_mask=None, **kwargs):
        out = real_sdpa(q, k, v, attn_mask=attn_mask, **kwargs)
        if attn_mask is not None:
            empty = ~attn_mask.any(dim=-1, keepdim=True)
            out = out.masked_fill(empty, float("nan"))
        return out

    monkeypatch.setattr(F, "scaled_dot_product_attention", old_sdpa)
    module = MultiHeadAttention(8, 2)
    with torch.no_grad():
        module.out_proj.bias.fill_(0.5)
    tokens = torch.randn(2, 4, 8, requires_grad=True)
    keep = torch.tensor([[False, False, True, True], [True, True, True, True]])  # left-padded
    mask = keep[:, None, None, :]
    fused, _ = module(tokens, mask=mask, causal=True, need_weights=False)
    explicit, _ = module(tokens, mask=mask, causal=True)
    assert torch.isfinite(fused).all()
    assert_close(fused, explicit, atol=1e-5, rtol=1e-4)
    assert torch.equal(fused[0, :2], module.out_proj.bias.expand(2, 8))  # empty rows: the bias alone
    fused.sum().backward()
    assert torch.isfinite(tokens.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in module.parameters())


# --------------------------------------------------------------------------------------------
# The attention core: masks with an offset, heads, score bias, the key/value cache
# --------------------------------------------------------------------------------------------


@given(num_queries=st.integers(1, 7), num_keys=st.integers(1, 9))
@FAST
def test_causal_mask_offset_is_bottom_right_alignment(num_queries, num_keys):
    from helpers.attention import sliding_window_mask

    # Bottom-right: query i is position num_keys - num_queries + i, so the last query sees every key.
    offset = num_keys - num_queries
    mask = causal_mask(num_queries, num_keys, offset=offset)
    i, j = torch.arange(num_queries)[:, None], torch.arange(num_keys)
    assert torch.equal(mask, j <= i + offset)
    if num_queries <= num_keys:
        assert bool(mask[-1].all())
    # PyTorch's bottom-right causal bias (torch.nn.attention.bias) gives the same mask.
    from torch.nn.attention.bias import causal_lower_right

    q, k = torch.randn(1, num_queries, 4), torch.randn(1, num_keys, 4)
    v = torch.randn(1, num_keys, 3)
    ours, _ = scaled_dot_product_attention(q, k, v, mask)
    if bool(mask.any(-1).all()):
        assert_close(ours, F.scaled_dot_product_attention(q, k, v, attn_mask=causal_lower_right(num_queries, num_keys)))
    # The window with an offset stays inside the causal mask and keeps window keys per full row.
    window = sliding_window_mask(num_queries, num_keys, 3, offset=offset)
    assert torch.equal(window, mask & (i + offset - j < 3))


@given(batch=st.integers(1, 3), heads=st.integers(1, 4), length=st.integers(1, 5), head_dim=st.integers(1, 4))
@FAST
def test_split_then_merge_heads_is_the_identity(batch, heads, length, head_dim):
    from helpers.attention import merge_heads, split_heads

    x = torch.randn(batch, length, heads * head_dim)
    split = split_heads(x, heads)
    assert split.shape == (batch, heads, length, head_dim)
    # Head h owns features h * head_dim .. (h + 1) * head_dim - 1, as in torch.nn.MultiheadAttention.
    assert torch.equal(split[:, -1], x[..., (heads - 1) * head_dim:])
    assert torch.equal(merge_heads(split), x)


def test_split_heads_names_the_width_that_does_not_split():
    from helpers.attention import split_heads

    with pytest.raises(ValueError, match="width of 10 does not split into 3 heads"):
        split_heads(torch.randn(2, 4, 10), 3)


def test_key_mask_broadcasts_over_heads_and_queries():
    from helpers.attention import key_mask

    mask = key_mask(torch.tensor([2, 4]))
    assert mask.shape == (2, 1, 1, 4)
    assert mask[:, 0, 0].tolist() == [[True, True, False, False], [True] * 4]
    assert key_mask(torch.tensor([1]), 3).shape == (1, 1, 1, 3)


def test_score_bias_matches_pytorchs_float_attn_mask_on_both_paths():
    torch.manual_seed(0)
    q, k, v = torch.randn(2, 3, 5, 4), torch.randn(2, 3, 6, 4), torch.randn(2, 3, 6, 2)
    bias = torch.randn(3, 5, 6)
    mask = torch.rand(2, 1, 5, 6) > 0.3
    ours, weights = scaled_dot_product_attention(q, k, v, mask, bias=bias)
    reference = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.masked_fill(~mask, float("-inf")))
    rows = mask.any(-1, keepdim=True).expand(2, 3, 5, 1)
    assert_close(ours * rows, reference.nan_to_num() * rows)
    # The module's fused path takes the same bias.
    mha = MultiHeadAttention(8, 2).eval()
    x = torch.randn(2, 5, 8)
    bias = torch.randn(2, 5, 5)
    explicit, _ = mha(x, bias=bias, causal=True)
    fused, _ = mha(x, bias=bias, causal=True, need_weights=False)
    assert_close(fused, explicit, atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match=r"bias of shape \(4, 4\) does not broadcast"):
        scaled_dot_product_attention(q, k, v, bias=torch.randn(4, 4))


@pytest.mark.parametrize("num_kv_heads", [4, 2, 1])
@pytest.mark.parametrize("rotary", [False, True])
@pytest.mark.parametrize("need_weights", [True, False])
def test_cached_self_attention_equals_one_call_on_the_whole_sequence(num_kv_heads, rotary, need_weights):
    from helpers.attention import KVCache

    torch.manual_seed(0)
    mha = MultiHeadAttention(16, 4, num_kv_heads=num_kv_heads, rotary=rotary).eval()
    x = torch.randn(2, 9, 16)
    full, _ = mha(x, causal=True, need_weights=need_weights)
    cache, pieces, start = KVCache(), [], 0
    for size in (1, 3, 1, 2, 1, 1):  # uneven chunks: the new queries follow the cached keys
        out, weights = mha(x[:, start:start + size], causal=True, cache=cache, need_weights=need_weights)
        pieces.append(out)
        start += size
        if need_weights:
            assert weights.shape == (2, 4, size, start)
    assert_close(torch.cat(pieces, dim=1), full, atol=1e-5, rtol=1e-4)
    # The cache holds num_kv_heads heads: grouping shrinks it by num_heads / num_kv_heads.
    assert cache.length == 9 and cache.key.shape == (2, num_kv_heads, 9, 4)
    assert cache.nbytes == 2 * 2 * num_kv_heads * 9 * 4 * 4


def test_cached_cross_attention_projects_the_memory_once():
    from helpers.attention import KVCache

    torch.manual_seed(0)
    mha = MultiHeadAttention(8, 2).eval()
    x, memory = torch.randn(2, 4, 8), torch.randn(2, 6, 8)
    mask = torch.rand(2, 1, 1, 6) > 0.3
    full, _ = mha(x, memory, mask=mask)
    cache = KVCache()
    first, _ = mha(x[:, :2], memory, mask=mask, cache=cache)
    key = cache.key
    # A changed memory after the first call is ignored: the cached projection is used.
    second, _ = mha(x[:, 2:], torch.zeros_like(memory), mask=mask, cache=cache)
    assert cache.key is key and cache.length == 6
    assert_close(torch.cat([first, second], dim=1), full)
