"""Scoring functions: hand-computed values, one interface, invariants, errors."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import scoring
from helpers.attention import scaled_dot_product_attention

QUERY = torch.tensor([[[1.0, 0.0], [1.0, 1.0]]])  # (1, 2, 2)
KEY = torch.tensor([[[2.0, 0.0], [0.0, 3.0], [1.0, 1.0]]])  # (1, 3, 2)


def test_dot_by_hand():
    expected = torch.tensor([[[2.0, 0.0, 1.0], [2.0, 3.0, 2.0]]])
    torch.testing.assert_close(scoring.DotScore()(QUERY, KEY), expected)


def test_scaled_dot_by_hand():
    expected = torch.tensor([[[2.0, 0.0, 1.0], [2.0, 3.0, 2.0]]]) / math.sqrt(2)
    torch.testing.assert_close(scoring.ScaledDotScore()(QUERY, KEY), expected)


def test_cosine_by_hand():
    r = 1 / math.sqrt(2)
    expected = torch.tensor([[[1.0, 0.0, r], [r, r, 1.0]]])
    torch.testing.assert_close(scoring.CosineScore()(QUERY, KEY), expected)
    torch.testing.assert_close(scoring.CosineScore(strength=3.0)(QUERY, KEY), 3 * expected)


def test_general_by_hand():
    score = scoring.GeneralScore(2, 2)
    with torch.no_grad():
        score.proj.weight.copy_(torch.tensor([[0.0, 1.0], [1.0, 0.0]]))  # swaps the key's features
    expected = torch.tensor([[[0.0, 3.0, 1.0], [2.0, 3.0, 2.0]]])
    torch.testing.assert_close(score(QUERY, KEY), expected)


def test_general_with_identity_is_dot():
    score = scoring.GeneralScore(2, 2)
    with torch.no_grad():
        score.proj.weight.copy_(torch.eye(2))
    torch.testing.assert_close(score(QUERY, KEY), scoring.DotScore()(QUERY, KEY))


def test_additive_by_hand():
    score = scoring.AdditiveScore(2, 2, hidden_dim=1)
    with torch.no_grad():
        score.query_proj.weight.fill_(1.0)  # q1 + q2
        score.key_proj.weight.copy_(torch.tensor([[1.0, -1.0]]))  # k1 - k2
        score.v.weight.fill_(2.0)
    q_sum = torch.tensor([1.0, 2.0])
    k_diff = torch.tensor([2.0, -3.0, 0.0])
    expected = 2 * torch.tanh(q_sum[:, None] + k_diff[None, :])[None]
    torch.testing.assert_close(score(QUERY, KEY), expected)


def test_additive_projected_key_gives_the_same():
    torch.manual_seed(0)
    score = scoring.AdditiveScore(3, 5, 4)
    query, key = torch.randn(2, 4, 3), torch.randn(2, 6, 5)
    torch.testing.assert_close(score(query, key, projected_key=score.project_keys(key)), score(query, key))


def test_concat_is_additive():
    assert scoring.ConcatScore is scoring.AdditiveScore


def test_location_ignores_key_contents():
    torch.manual_seed(0)
    score = scoring.LocationScore(2, max_keys=5)
    a = score(QUERY, KEY)
    b = score(QUERY, torch.randn_like(KEY))
    assert a.shape == (1, 2, 3)
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(a, (QUERY @ score.proj.weight.T)[:, :, :3])


def test_location_too_many_keys():
    with pytest.raises(ValueError, match="max_keys=2"):
        scoring.LocationScore(2, max_keys=2)(QUERY, KEY)


ALL = [
    lambda dq, dk: scoring.DotScore(),
    lambda dq, dk: scoring.ScaledDotScore(),
    lambda dq, dk: scoring.CosineScore(),
    lambda dq, dk: scoring.AdditiveScore(dq, dk, 8),
    lambda dq, dk: scoring.GeneralScore(dq, dk),
    lambda dq, dk: scoring.LocationScore(dq, 16),
]


@pytest.mark.parametrize("make", ALL)
@settings(max_examples=15, deadline=None)
@given(batch=st.integers(1, 3), lq=st.integers(1, 5), lk=st.integers(1, 6), seed=st.integers(0, 100))
def test_one_interface_and_batch_independence(make, batch, lq, lk, seed):
    torch.manual_seed(seed)
    score = make(4, 4)
    query, key = torch.randn(batch, lq, 4), torch.randn(batch, lk, 4)
    out = score(query, key)
    assert out.shape == (batch, lq, lk)
    # Each batch element is scored on its own.
    torch.testing.assert_close(score(query[:1], key[:1]), out[:1])


def test_scaled_matches_attention_module():
    torch.manual_seed(0)
    query, key, value = torch.randn(2, 3, 8), torch.randn(2, 5, 8), torch.randn(2, 5, 4)
    output, weights = scoring.attend(scoring.ScaledDotScore(), query, key, value)
    ref_out, ref_w = scaled_dot_product_attention(query, key, value)
    torch.testing.assert_close(output, ref_out)
    torch.testing.assert_close(weights, ref_w)
    torch_out = torch.nn.functional.scaled_dot_product_attention(query, key, value)
    torch.testing.assert_close(output, torch_out)


def test_attend_masks_padding():
    torch.manual_seed(0)
    query, key, value = torch.randn(1, 2, 4), torch.randn(1, 3, 4), torch.randn(1, 3, 2)
    mask = torch.tensor([True, True, False])[None, None, :]
    output, weights = scoring.attend(scoring.DotScore(), query, key, value, mask)
    assert (weights[..., 2] == 0).all()
    torch.testing.assert_close(weights.sum(-1), torch.ones(1, 2))
    ref, _ = scoring.attend(scoring.DotScore(), query, key[:, :2], value[:, :2])
    torch.testing.assert_close(output, ref)


def test_gradients():
    torch.manual_seed(0)
    query = torch.randn(1, 2, 3, dtype=torch.double, requires_grad=True)
    key = torch.randn(1, 4, 3, dtype=torch.double, requires_grad=True)
    for score in (scoring.CosineScore(), scoring.ScaledDotScore(),
                  scoring.AdditiveScore(3, 3, 5).double(), scoring.GeneralScore(3, 3).double()):
        assert torch.autograd.gradcheck(lambda q, k, s=score: s(q, k), (query, key))


def test_window_mask():
    mask = scoring.window_mask(4, 6, window=1)
    expected = torch.tensor([
        [1, 1, 0, 0, 0, 0],
        [1, 1, 1, 0, 0, 0],
        [0, 1, 1, 1, 0, 0],
        [0, 0, 1, 1, 1, 0],
    ], dtype=torch.bool)
    assert torch.equal(mask, expected)
    centred = scoring.window_mask(2, 6, window=0, centers=torch.tensor([5, 0]))
    assert torch.equal(centred, torch.tensor([[0, 0, 0, 0, 0, 1], [1, 0, 0, 0, 0, 0]], dtype=torch.bool))
    with pytest.raises(ValueError, match="window"):
        scoring.window_mask(2, 2, window=-1)


def test_window_mask_takes_real_valued_centres():
    # Luong's local-p predicts a real-valued centre p_i; the window keeps keys j with |j - p_i| <= D.
    mask = scoring.window_mask(2, 5, window=1, centers=torch.tensor([1.5, 3.2]))
    assert torch.equal(mask, torch.tensor([[0, 1, 1, 0, 0], [0, 0, 0, 1, 1]], dtype=torch.bool))


def test_multiply_adds():
    query, key = torch.randn(1, 3, 4), torch.randn(1, 5, 6)
    assert scoring.count_multiply_adds(scoring.GeneralScore(4, 6), query, key) == 5 * 6 * 4 + 3 * 5 * 4
    assert scoring.count_multiply_adds(scoring.AdditiveScore(4, 6, 7), query, key) == 3 * 4 * 7 + 5 * 6 * 7 + 3 * 5 * 7
    assert scoring.count_multiply_adds(scoring.DotScore(), query, key[..., :4]) == 3 * 5 * 4


def test_errors_name_the_shapes():
    with pytest.raises(ValueError, match=r"query \(1, 2, 2\), key \(1, 3, 5\)"):
        scoring.DotScore()(QUERY, torch.randn(1, 3, 5))
    with pytest.raises(ValueError, match="query_dim"):
        scoring.GeneralScore(3, 2)(QUERY, KEY)
    with pytest.raises(ValueError, match="batch"):
        scoring.DotScore()(QUERY, torch.randn(2, 3, 2))
    with pytest.raises(ValueError, match=r"\(batch, length, features\)"):
        scoring.DotScore()(QUERY[0], KEY)
    with pytest.raises(TypeError, match="floating-point"):
        scoring.DotScore()(QUERY.long(), KEY)
