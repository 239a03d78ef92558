"""helpers.vision: patches, the tiny ViT, attention rollout and occlusion."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from helpers.train import count_parameters
from helpers.vision import (
    PatchEmbedding,
    VisionTransformer,
    attention_rollout,
    average_ranks,
    occlusion,
    patchify,
    rank_correlation,
)


@given(batch=st.integers(1, 3), channels=st.integers(1, 3), rows=st.integers(1, 4), cols=st.integers(1, 4),
       p=st.integers(1, 4))
@settings(max_examples=40, deadline=None)
def test_patchify_puts_each_patch_in_one_token(batch, channels, rows, cols, p):
    images = torch.randn(batch, channels, rows * p, cols * p)
    tokens = patchify(images, p)
    assert tokens.shape == (batch, rows * cols, channels * p * p)
    for index in range(rows * cols):
        r, c = divmod(index, cols)
        expected = images[:, :, r * p:(r + 1) * p, c * p:(c + 1) * p].reshape(batch, -1)
        torch.testing.assert_close(tokens[:, index], expected)


def test_patch_embedding_is_a_strided_convolution():
    torch.manual_seed(0)
    embed = PatchEmbedding(patch_size=2, in_channels=3, embed_dim=5)
    conv = nn.Conv2d(3, 5, kernel_size=2, stride=2)
    with torch.no_grad():
        conv.weight.copy_(embed.projection.weight.view(5, 3, 2, 2))
        conv.bias.copy_(embed.projection.bias)
    images = torch.randn(2, 3, 6, 4)
    expected = conv(images).flatten(2).transpose(1, 2)  # (B, N, embed_dim), patches row by row
    torch.testing.assert_close(embed(images), expected)


def test_patchify_errors_name_the_sizes():
    with pytest.raises(ValueError, match=r"image size 8x7 is not divisible by the patch size 2"):
        patchify(torch.randn(1, 1, 8, 7), 2)
    with pytest.raises(ValueError, match=r"\(batch, channels, height, width\)"):
        patchify(torch.randn(8, 8), 2)
    with pytest.raises(TypeError, match="floating-point"):
        patchify(torch.ones(1, 1, 4, 4, dtype=torch.long), 2)
    with pytest.raises(ValueError, match=r"patch_size \(3\) must divide image_size \(8\)"):
        VisionTransformer(image_size=8, patch_size=3)


def test_vit_shapes_parameters_and_class_token():
    torch.manual_seed(0)
    model = VisionTransformer(image_size=8, patch_size=2, embed_dim=16, num_heads=2, num_layers=2, dim_feedforward=32)
    images = torch.rand(5, 1, 8, 8)
    assert model(images).shape == (5, 10)
    assert model.tokens(images).shape == (5, 17, 16)
    # patch projection + class token + positions + 2 encoder layers + final norm + head
    layer = 4 * (16 * 16 + 16) + (16 * 32 + 32) + (32 * 16 + 16) + 2 * 2 * 16
    expected = (4 * 16 + 16) + 16 + 17 * 16 + 2 * layer + 2 * 16 + (16 * 10 + 10)
    assert count_parameters(model) == expected
    with pytest.raises(ValueError, match=r"images must be \(batch, 1, 8, 8\), got shape \(5, 1, 6, 6\)"):
        model(torch.rand(5, 1, 6, 6))


def test_vit_prediction_depends_only_on_the_class_token_path():
    # With the positions, a permutation of the patches changes the output; the class token is read.
    torch.manual_seed(1)
    model = VisionTransformer(embed_dim=16, num_heads=2, num_layers=1, dim_feedforward=16).eval()
    images = torch.rand(3, 1, 8, 8)
    flipped = images.flip(-1)
    assert not torch.allclose(model(images), model(flipped))
    logits = model(images)
    logits.sum().backward()
    assert model.class_token.grad.abs().sum() > 0 and model.positions.grad.abs().sum() > 0


def test_attention_maps_are_per_layer_and_head_and_rows_sum_to_one():
    torch.manual_seed(0)
    model = VisionTransformer(embed_dim=16, num_heads=4, num_layers=3, dim_feedforward=16)
    model.train()
    maps = model.attention_maps(torch.rand(2, 1, 8, 8))
    assert maps.shape == (3, 2, 4, 17, 17)
    torch.testing.assert_close(maps.sum(-1), torch.ones(3, 2, 4, 17))
    assert model.training  # restored


def test_rollout_of_one_layer_and_of_identity():
    weights = torch.softmax(torch.randn(1, 2, 3, 4, 4), dim=-1)
    mixing = 0.5 * weights.mean(2)[0] + 0.5 * torch.eye(4)
    torch.testing.assert_close(attention_rollout(weights), mixing / mixing.sum(-1, keepdim=True))
    eye = torch.eye(4).expand(3, 2, 3, 4, 4)
    torch.testing.assert_close(attention_rollout(eye), torch.eye(4).expand(2, 4, 4))
    torch.testing.assert_close(attention_rollout(weights, residual=False), weights.mean(2)[0])


@given(layers=st.integers(1, 4), tokens=st.integers(2, 6), seed=st.integers(0, 1000))
@settings(max_examples=30, deadline=None)
def test_rollout_rows_sum_to_one_and_compose_later_on_the_left(layers, tokens, seed):
    g = torch.Generator().manual_seed(seed)
    weights = torch.softmax(torch.randn(layers, 2, 2, tokens, tokens, generator=g) * 3, dim=-1)
    rollout = attention_rollout(weights)
    torch.testing.assert_close(rollout.sum(-1), torch.ones(2, tokens))
    if layers > 1:
        head = attention_rollout(weights[:-1])
        last = attention_rollout(weights[-1:])
        torch.testing.assert_close(rollout, last @ head)


def test_rollout_rejects_wrong_shapes():
    with pytest.raises(ValueError, match=r"\(layers, batch, heads, T, T\)"):
        attention_rollout(torch.rand(2, 4, 4))


class _LooksAtTopLeft(nn.Module):
    """Predicts class 1 from the top-left 2x2 patch's ink only."""

    def forward(self, images):
        ink = images[:, 0, :2, :2].sum(dim=(1, 2))
        return torch.stack([torch.zeros_like(ink), 4 * ink], dim=1)


def test_occlusion_finds_the_only_patch_that_matters():
    images = torch.ones(2, 1, 4, 4)
    drops = occlusion(_LooksAtTopLeft(), images, torch.tensor([1, 1]), patch_size=2)
    assert drops.shape == (2, 4)
    assert (drops[:, 0] > 0.4).all()
    torch.testing.assert_close(drops[:, 1:], torch.zeros(2, 3))
    assert torch.equal(images, torch.ones(2, 1, 4, 4))  # inputs untouched
    with pytest.raises(ValueError, match=r"labels must be \(batch,\)"):
        occlusion(_LooksAtTopLeft(), images, torch.tensor([1]), patch_size=2)


def test_occlusion_fill_and_measures():
    images = torch.ones(2, 1, 4, 4)
    labels = torch.tensor([1, 1])
    model = _LooksAtTopLeft()
    # Filling with the image itself changes nothing, whatever the measure.
    for measure in ("probability", "log_prob", "logit"):
        torch.testing.assert_close(occlusion(model, images, labels, 2, fill=images[0], measure=measure),
                                   torch.zeros(2, 4))
    # The logit drop is exact: the top-left patch holds 4 ink, weighted by 4.
    logit_drops = occlusion(model, images, labels, 2, measure="logit")
    torch.testing.assert_close(logit_drops[:, 0], torch.full((2,), 16.0))
    # The log-probability does not saturate where the probability does.
    probability = occlusion(model, images, labels, 2)[:, 0]
    log_prob = occlusion(model, images, labels, 2, measure="log_prob")[:, 0]
    assert (log_prob > probability).all()
    with pytest.raises(ValueError, match="measure must be one of"):
        occlusion(model, images, labels, 2, measure="odds")
    with pytest.raises(ValueError, match=r"fill must be a number or an image \(1, 4, 4\)"):
        occlusion(model, images, labels, 2, fill=torch.zeros(4, 4))


def test_average_ranks_share_ties():
    torch.testing.assert_close(average_ranks(torch.tensor([3.0, 1.0, 1.0, 2.0])), torch.tensor([3.0, 0.5, 0.5, 2.0]))
    torch.testing.assert_close(average_ranks(torch.zeros(2, 3)), torch.ones(2, 3))


def test_rank_correlation_matches_spearman_with_ties_and_mask():
    scipy_stats = pytest.importorskip("scipy.stats")
    generator = torch.Generator().manual_seed(0)
    a = torch.randint(0, 4, (5, 9), generator=generator).float()  # many ties
    b = torch.randn(5, 9, generator=generator)
    mask = torch.rand(5, 9, generator=generator) > 0.3
    got = rank_correlation(a, b, mask)
    for row in range(5):
        keep = mask[row]
        expected = scipy_stats.spearmanr(a[row, keep].numpy(), b[row, keep].numpy()).statistic
        torch.testing.assert_close(got[row].item(), float(expected), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(rank_correlation(b, -b), -torch.ones(5))
    assert torch.isnan(rank_correlation(torch.zeros(1, 4), torch.randn(1, 4)))[0]


def test_inked_patches_use_the_series_ink_threshold():
    from helpers.pooling import INK_THRESHOLD
    from helpers.vision import inked_patches

    images = torch.zeros(1, 1, 4, 4)
    images[0, 0, 0, 1] = INK_THRESHOLD  # patch 0: one pixel exactly at the threshold -> ink
    images[0, 0, 3, 3] = INK_THRESHOLD - 0.01  # patch 3: faint, below it -> no ink
    assert inked_patches(images, 2).tolist() == [[True, False, False, False]]
