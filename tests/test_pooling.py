"""Attention pooling, squeeze-and-excitation, the models of notebook 04, training."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import data, pooling, train


@settings(max_examples=20, deadline=None)
@given(batch=st.integers(1, 3), positions=st.integers(1, 9), seed=st.integers(0, 50))
def test_attention_pool_is_a_convex_combination(batch, positions, seed):
    torch.manual_seed(seed)
    pool = pooling.AttentionPool(6, hidden_dim=4)
    x = torch.randn(batch, positions, 6)
    pooled, weights = pool(x)
    assert pooled.shape == (batch, 6) and weights.shape == (batch, positions)
    torch.testing.assert_close(weights.sum(-1), torch.ones(batch))
    assert (weights >= 0).all()
    torch.testing.assert_close(pooled, torch.einsum("bn,bnf->bf", weights, x))
    # Each pooled coordinate lies between the smallest and largest input value.
    assert (pooled <= x.max(dim=1).values + 1e-5).all() and (pooled >= x.min(dim=1).values - 1e-5).all()


def test_attention_pool_permutation_equivariance():
    torch.manual_seed(0)
    pool = pooling.AttentionPool(5)
    x = torch.randn(2, 7, 5)
    order = torch.randperm(7)
    pooled, weights = pool(x)
    pooled_perm, weights_perm = pool(x[:, order])
    torch.testing.assert_close(pooled_perm, pooled)
    torch.testing.assert_close(weights_perm, weights[:, order])


def test_attention_pool_mask_and_by_hand():
    pool = pooling.AttentionPool(2, hidden_dim=1)
    with torch.no_grad():
        pool.score.key_proj.weight.copy_(torch.tensor([[1.0, 0.0]]))
        pool.score.query_proj.weight.zero_()
        pool.score.v.weight.fill_(1.0)
    x = torch.tensor([[[0.0, 1.0], [1.0, 2.0], [5.0, 3.0]]])
    expected = torch.softmax(torch.tanh(torch.tensor([0.0, 1.0, 5.0])), dim=0)
    torch.testing.assert_close(pool(x)[1][0], expected)
    pooled, weights = pool(x, mask=torch.tensor([[True, True, False]]))
    assert weights[0, 2] == 0
    torch.testing.assert_close(pooled, pool(x[:, :2])[0])


def test_attention_pool_2d_maps_back_to_positions():
    torch.manual_seed(0)
    pool = pooling.AttentionPool2d(4)
    x = torch.randn(2, 4, 3, 5)
    pooled, weights = pool(x)
    assert pooled.shape == (2, 4) and weights.shape == (2, 3, 5)
    torch.testing.assert_close(pooled, (x * weights[:, None]).sum(dim=(2, 3)))


def test_squeeze_excitation():
    torch.manual_seed(0)
    se = pooling.SqueezeExcitation(8, reduction=2)
    x = torch.randn(3, 8, 4, 4)
    out, gates = se(x)
    assert out.shape == x.shape and gates.shape == (3, 8)
    assert ((gates > 0) & (gates < 1)).all()
    torch.testing.assert_close(out, x * gates[:, :, None, None])
    expected = torch.sigmoid(se.up(torch.relu(se.down(x.mean(dim=(2, 3))))))
    torch.testing.assert_close(gates, expected)


def test_gradients():
    torch.manual_seed(0)
    pool = pooling.AttentionPool(3, hidden_dim=2).double()
    x = torch.randn(2, 4, 3, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: pool(t)[0], (x,))
    se = pooling.SqueezeExcitation(4, reduction=2).double()
    y = torch.randn(1, 4, 2, 2, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: se(t)[0], (y,))


@pytest.mark.parametrize("pool", ["attention", "mean"])
@pytest.mark.parametrize("channel_attention", [False, True])
def test_digit_cnn_shapes(pool, channel_attention):
    model = pooling.DigitCNN(pool=pool, channel_attention=channel_attention)
    images = torch.rand(5, 1, 8, 8)
    assert model(images).shape == (5, 10)
    weights, gates = model.attention_maps(images)
    assert (weights is None) == (pool == "mean")
    assert (gates is None) == (not channel_attention)
    if weights is not None:
        assert weights.shape == (5, 8, 8)
    assert model(torch.rand(2, 1, 12, 12)).shape == (2, 10)


def test_frame_classifier_shapes():
    model = pooling.FrameClassifier(33, hidden=8)
    frames = torch.randn(3, 10, 33)
    assert model(frames).shape == (3, 4)
    assert model.attention_maps(frames).shape == (3, 10)
    assert pooling.FrameClassifier(33, pool="mean").attention_maps(frames) is None


def test_errors():
    with pytest.raises(ValueError, match=r"\(batch, positions, 6\)"):
        pooling.AttentionPool(6)(torch.randn(2, 3, 5))
    with pytest.raises(ValueError, match="pool must be"):
        pooling.DigitCNN(pool="max")
    with pytest.raises(ValueError, match=r"\(batch, 1, height, width\)"):
        pooling.DigitCNN()(torch.rand(2, 8, 8))
    with pytest.raises(ValueError, match=r"\(batch, 8, height, width\)"):
        pooling.SqueezeExcitation(8)(torch.rand(2, 4, 3, 3))
    with pytest.raises(ValueError, match="differ in length"):
        train.accuracy(pooling.DigitCNN(), torch.rand(3, 1, 8, 8), torch.zeros(2, dtype=torch.long))


def test_a_short_training_run_learns_the_digits():
    split = data.digits_split()
    model, history = pooling.train_digit_cnn(split, steps=150, seed=0)
    assert sum(history["loss"][-10:]) / 10 < 0.6 * history["loss"][0]
    assert history["eval"][-1] > 0.5
    assert train.accuracy(model, split[2], split[3]) == pytest.approx(history["eval"][-1])


def test_train_scheduled_sets_the_rate_every_step_and_is_reproducible():
    inputs = torch.randn(40, 1, 8, 8)
    labels = torch.randint(10, (40,), generator=torch.Generator().manual_seed(0))
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = pooling.DigitCNN(pool="attention")
        runs.append(pooling.train_scheduled(model, inputs, labels, steps=5, lr=1e-2, seed=3)["loss"])
    assert runs[0] == runs[1]
    with pytest.raises(ValueError, match="one row per example"):
        pooling.train_scheduled(pooling.DigitCNN(), inputs, labels[:5], steps=2)


def test_one_ink_threshold_and_the_digits_background():
    from helpers import plot

    assert pooling.INK_THRESHOLD == plot.INK_THRESHOLD  # the outline drawn is the ink measured
    images = data.digits_split()[0]
    assert images.min().item() == pooling.BACKGROUND  # blank paper in digits_split is 0.0
    assert (images == pooling.BACKGROUND).float().mean() > 0.4  # and it is the commonest value
    image = torch.tensor([[0.0, 0.2, 0.25, 1.0]])
    assert pooling.inked(image).tolist() == [[False, False, True, True]]
    with pytest.raises(TypeError, match="floating-point"):
        pooling.inked(torch.zeros(2, 2, dtype=torch.long))
