"""Tests for helpers.positional: formulas, the RoPE relative property, ALiBi, shapes, errors."""

import copy
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.testing import assert_close

from helpers.attention import MultiHeadAttention
from helpers.positional import (
    ENCODINGS,
    LearnedPositionalEmbedding,
    OrderClassifier,
    OrderClassifierStack,
    PositionalSelfAttention,
    SinusoidalPositionalEncoding,
    alibi_bias,
    alibi_slopes,
    apply_rotary,
    rotary_angles,
    sinusoidal_encoding,
)

# --------------------------------------------------------------------------------------------
# Sinusoidal
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("num_positions, dim", [(1, 2), (7, 6), (50, 16), (9, 5)])
def test_sinusoidal_matches_the_formula(num_positions, dim):
    expected = torch.zeros(num_positions, dim)
    for p in range(num_positions):
        for column in range(dim):
            i = column // 2
            angle = p / 10000 ** (2 * i / dim)
            expected[p, column] = math.sin(angle) if column % 2 == 0 else math.cos(angle)
    assert_close(sinusoidal_encoding(num_positions, dim), expected)


def test_sinusoidal_row_zero_and_base():
    table = sinusoidal_encoding(4, 8, base=100.0)
    assert_close(table[0], torch.tensor([0.0, 1.0] * 4))
    assert_close(table[1, 2], torch.tensor(math.sin(1 / 100 ** (2 / 8))))


def test_sinusoidal_large_positions_keep_their_phase():
    # float64 angles: position 10^5 in column 0 is sin(10^5) to float32 precision
    assert_close(sinusoidal_encoding(100_001, 2)[-1, 0], torch.tensor(math.sin(100_000.0)))


@settings(max_examples=20, deadline=None)
@given(start=st.integers(0, 200), distance=st.integers(0, 50))
def test_sinusoidal_dot_product_depends_only_on_distance(start, distance):
    table = sinusoidal_encoding(300, 32).double()
    assert_close(table[start] @ table[start + distance], table[0] @ table[distance])


def test_sinusoidal_module_adds_the_table():
    module = SinusoidalPositionalEncoding(6, max_len=10)
    x = torch.randn(3, 7, 6)
    assert_close(module(x), x + sinusoidal_encoding(7, 6))
    assert list(module.parameters()) == []
    assert "encoding" not in module.state_dict()


def test_sinusoidal_module_dropout_only_in_training():
    module = SinusoidalPositionalEncoding(8, max_len=4, dropout=0.5)
    x = torch.randn(2, 4, 8)
    module.eval()
    assert_close(module(x), x + sinusoidal_encoding(4, 8))
    module.train()
    assert (module(x) == 0).any()


def test_sinusoidal_keeps_dtype():
    module = SinusoidalPositionalEncoding(4, max_len=8)
    assert module(torch.zeros(1, 3, 4, dtype=torch.float64)).dtype == torch.float64


@pytest.mark.parametrize("bad, message", [
    (torch.zeros(2, 5, 7), r"\(batch, length, 6\)"),
    (torch.zeros(5, 6), r"\(batch, length, 6\)"),
    (torch.zeros(1, 11, 6), "max_len=10"),
    (torch.zeros(1, 3, 6, dtype=torch.long), "floating-point"),
])
def test_positional_modules_reject_bad_input(bad, message):
    for module in (SinusoidalPositionalEncoding(6, max_len=10), LearnedPositionalEmbedding(6, max_len=10)):
        with pytest.raises((ValueError, TypeError), match=message):
            module(bad)


def test_sinusoidal_rejects_bad_sizes():
    with pytest.raises(ValueError, match="dim"):
        sinusoidal_encoding(4, 0)


# --------------------------------------------------------------------------------------------
# Learned
# --------------------------------------------------------------------------------------------


def test_learned_adds_one_trainable_row_per_position():
    module = LearnedPositionalEmbedding(4, max_len=6, init_std=1.0)
    x = torch.randn(2, 3, 4)
    assert_close(module(x), x + module.embedding.weight[:3])
    assert sum(p.numel() for p in module.parameters()) == 24
    module(x).sum().backward()
    grad = module.embedding.weight.grad
    assert grad[:3].abs().sum() > 0 and grad[3:].abs().sum() == 0  # unseen positions learn nothing


def test_learned_init_std():
    torch.manual_seed(0)
    assert LearnedPositionalEmbedding(64, 512).embedding.weight.std().item() == pytest.approx(0.02, rel=0.05)


# --------------------------------------------------------------------------------------------
# RoPE
# --------------------------------------------------------------------------------------------


def test_rotary_matches_a_2d_rotation_per_pair():
    x = torch.randn(3, 6)
    positions = torch.tensor([0, 2, 7])
    out = apply_rotary(x, positions)
    for row, p in enumerate(positions.tolist()):
        for i in range(3):
            angle = p * 10000 ** (-2 * i / 6)
            rotation = torch.tensor([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
            assert_close(out[row, 2 * i:2 * i + 2], rotation @ x[row, 2 * i:2 * i + 2])


def test_rotary_position_zero_is_identity_and_norms_are_kept():
    x = torch.randn(2, 4, 5, 8)
    assert_close(apply_rotary(x, torch.zeros(5))[..., :, :], x)
    assert_close(apply_rotary(x).norm(dim=-1), x.norm(dim=-1))


@settings(max_examples=25, deadline=None)
@given(m=st.integers(0, 2000), n=st.integers(0, 2000), shift=st.integers(-2000, 2000), seed=st.integers(0, 1000))
def test_rotary_scores_depend_only_on_the_offset(m, n, shift, seed):
    generator = torch.Generator().manual_seed(seed)
    query, key = torch.randn(1, 16, generator=generator).double(), torch.randn(1, 16, generator=generator).double()
    score = apply_rotary(query, torch.tensor([m])) @ apply_rotary(key, torch.tensor([n])).T
    shifted = apply_rotary(query, torch.tensor([m + shift])) @ apply_rotary(key, torch.tensor([n + shift])).T
    assert_close(shifted, score)


def test_rotary_score_matrix_is_shift_invariant():
    queries, keys = torch.randn(2, 3, 10, 8), torch.randn(2, 3, 10, 8)
    positions = torch.arange(10)
    base = apply_rotary(queries, positions) @ apply_rotary(keys, positions).transpose(-2, -1)
    shifted = apply_rotary(queries, positions + 37) @ apply_rotary(keys, positions + 37).transpose(-2, -1)
    assert_close(shifted, base, atol=1e-4, rtol=1e-4)


def test_rotary_is_not_trivially_relative_in_the_wrong_direction():
    # m - n and n - m give different scores: RoPE knows direction, unlike a symmetric bias.
    query, key = torch.randn(1, 8), torch.randn(1, 8)
    ahead = apply_rotary(query, torch.tensor([5])) @ apply_rotary(key, torch.tensor([2])).T
    behind = apply_rotary(query, torch.tensor([2])) @ apply_rotary(key, torch.tensor([5])).T
    assert not torch.allclose(ahead, behind)


def test_rotary_gradient():
    x = torch.randn(2, 3, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: apply_rotary(t, torch.tensor([1, 4, 9])), (x,))


def test_rotary_angles_shape():
    assert rotary_angles(torch.arange(7), 10).shape == (7, 5)


@pytest.mark.parametrize("x, positions, error, message", [
    (torch.randn(4, 5), None, ValueError, "even"),
    (torch.randn(4, 6), torch.arange(3), ValueError, r"\(\.\.\., 4\)"),
    (torch.randn(6), None, ValueError, "length, dim"),
    (torch.ones(4, 6, dtype=torch.long), None, TypeError, "floating-point"),
])
def test_rotary_errors(x, positions, error, message):
    with pytest.raises(error, match=message):
        apply_rotary(x, positions)


# --------------------------------------------------------------------------------------------
# ALiBi
# --------------------------------------------------------------------------------------------


def test_alibi_slopes_power_of_two():
    assert_close(alibi_slopes(8), torch.tensor([2.0 ** -(k + 1) for k in range(8)]))
    assert_close(alibi_slopes(4), torch.tensor([2.0 ** -(2 * (k + 1)) for k in range(4)]))


def test_alibi_slopes_other_counts_follow_the_paper():
    # 6 heads: the 4 slopes of 4 heads, then slopes 1 and 3 (0-based: 0, 2) of 8 heads
    assert_close(alibi_slopes(6), torch.cat([alibi_slopes(4), alibi_slopes(8)[0::2][:2]]))
    assert len(alibi_slopes(12)) == 12 and len(set(alibi_slopes(12).tolist())) == 12


def test_alibi_bias_values_and_shape():
    bias = alibi_bias(2, 3, 5)
    assert bias.shape == (2, 3, 5)
    slopes = alibi_slopes(2)
    for h in range(2):
        for i in range(3):
            for j in range(5):
                assert bias[h, i, j].item() == pytest.approx(-slopes[h].item() * abs(i - j))
    assert_close(alibi_bias(2, 4), alibi_bias(2, 4).transpose(-2, -1))


def test_alibi_rejects_zero_heads():
    with pytest.raises(ValueError, match="num_heads"):
        alibi_slopes(0)


# --------------------------------------------------------------------------------------------
# The attention layer and the classifier
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("causal", [False, True])
def test_plain_positional_attention_is_multi_head_attention(causal):
    # Without RoPE or ALiBi the layer is MultiHeadAttention itself: same parameters, same outputs.
    layer = PositionalSelfAttention(8, 2)
    mha = MultiHeadAttention(8, 2)
    mha.load_state_dict(layer.state_dict())
    x = torch.randn(3, 5, 8)
    mask = torch.rand(3, 1, 1, 5) > 0.3
    out, weights = layer(x, mask, causal=causal)
    expected, expected_weights = mha(x, mask=mask, causal=causal)
    assert_close(out, expected)
    assert_close(weights, expected_weights)
    fused, _ = layer(x, mask, causal=causal, need_weights=False)
    assert_close(fused, out, atol=1e-5, rtol=1e-4)


def _heads(layer, x):
    q = layer.q_proj(x).view(x.shape[0], x.shape[1], layer.num_heads, -1).transpose(1, 2)
    k = layer.k_proj(x).view(x.shape[0], x.shape[1], layer.num_heads, -1).transpose(1, 2)
    return q, k


def test_alibi_layer_adds_the_bias_to_the_scores():
    layer = PositionalSelfAttention(8, 2, alibi=True)
    x = torch.randn(1, 4, 8)
    _, weights = layer(x)
    q, k = _heads(layer, x)
    scores = q @ k.transpose(-2, -1) / 2.0 + alibi_bias(2, 4)
    assert_close(weights, scores.softmax(-1))


def test_rope_layer_is_shift_equivariant_in_its_weights():
    # RoPE only sees offsets: numbering the positions from 11 instead of 0 gives the same weights.
    layer = PositionalSelfAttention(8, 2, rotary=True)
    x = torch.randn(1, 6, 8)
    _, weights = layer(x)
    q, k = _heads(layer, x)
    shifted = apply_rotary(q, torch.arange(6) + 11) @ apply_rotary(k, torch.arange(6) + 11).transpose(-2, -1)
    assert_close(weights, (shifted / 2.0).softmax(-1), atol=1e-5, rtol=1e-4)


def test_positional_attention_errors():
    with pytest.raises(ValueError, match="divisible"):
        PositionalSelfAttention(10, 3)
    with pytest.raises(ValueError, match="even head_dim"):
        PositionalSelfAttention(6, 2, rotary=True)
    with pytest.raises(ValueError, match=r"6 features but the module expects 8 \(embed_dim\)"):
        PositionalSelfAttention(8, 2)(torch.randn(2, 3, 6))
    with pytest.raises(TypeError, match="bool"):
        PositionalSelfAttention(8, 2)(torch.randn(2, 3, 8), torch.ones(2, 1, 1, 3))


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_order_classifier_shapes_and_gradients(encoding):
    model = OrderClassifier(8, 3, encoding, embed_dim=16, num_heads=2, max_len=20)
    logits = model(torch.randint(0, 8, (4, 12)))
    assert logits.shape == (4, 3)
    logits.sum().backward()
    assert all(p.grad is not None for p in model.attention.parameters())


def test_order_classifier_without_positions_is_permutation_invariant():
    model = OrderClassifier(8, 2, "none", embed_dim=16, num_heads=2)
    tokens = torch.randint(0, 8, (3, 10))
    assert_close(model(tokens[:, torch.randperm(10)]), model(tokens))


def test_order_classifier_with_positions_is_not():
    torch.manual_seed(0)
    tokens = torch.randint(0, 8, (3, 10))
    for encoding in ("sinusoidal", "learned", "rope"):
        model = OrderClassifier(8, 2, encoding, embed_dim=16, num_heads=2)
        assert not torch.allclose(model(tokens.flip(1)), model(tokens))


def test_symmetric_alibi_cannot_see_direction():
    model = OrderClassifier(8, 2, "alibi", embed_dim=16, num_heads=2)
    tokens = torch.randint(0, 8, (3, 10))
    assert_close(model(tokens.flip(1)), model(tokens))
    causal = OrderClassifier(8, 2, "alibi", embed_dim=16, num_heads=2, causal=True)
    assert not torch.allclose(causal(tokens.flip(1)), causal(tokens))


def test_order_classifier_errors():
    with pytest.raises(ValueError, match="encoding must be one of"):
        OrderClassifier(8, 2, "relative")
    with pytest.raises(ValueError, match="integer ids"):
        OrderClassifier(8, 2)(torch.randn(2, 5))


def test_order_classifier_mask_restricts_attention():
    torch.manual_seed(0)
    model = OrderClassifier(8, 2, "rope", embed_dim=16, num_heads=2)
    tokens = torch.randint(0, 8, (3, 10))
    everything = torch.ones(10, 10, dtype=torch.bool)
    assert_close(model(tokens, mask=everything), model(tokens))
    diagonal = torch.eye(10, dtype=torch.bool)  # each token sees only itself: order is invisible again
    assert_close(model(tokens.flip(1), mask=diagonal), model(tokens, mask=diagonal))


# --------------------------------------------------------------------------------------------
# OrderClassifierStack: many models trained as one
# --------------------------------------------------------------------------------------------

VARIANTS = [(encoding, False) for encoding in ENCODINGS] + [("alibi", True), ("none", True), ("rope", True)]


def _models(seeds=(0, 1), **sizes):
    models = []
    for encoding, causal in VARIANTS:
        for seed in seeds:
            torch.manual_seed(seed)
            models.append(OrderClassifier(8, 3, encoding, causal=causal, max_len=24, **sizes))
    return models


@pytest.mark.parametrize("sizes", [{"embed_dim": 16, "num_heads": 2}, {"embed_dim": 12, "num_heads": 3}])
def test_stack_computes_what_each_model_computes(sizes):
    models = _models(**sizes)
    stack = OrderClassifierStack(models)
    tokens = torch.randint(0, 8, (len(models), 5, 11))
    logits = stack(tokens)
    assert logits.shape == (len(models), 5, 3)
    for index, model in enumerate(models):
        assert_close(logits[index], model(tokens[index]))
    shared = tokens[0]  # one batch for every model
    for index, model in enumerate(models):
        assert_close(stack(shared)[index], model(shared))


def test_stack_gives_each_model_its_own_gradient():
    models = _models(seeds=(3,), embed_dim=16, num_heads=2)
    stack = OrderClassifierStack(models)
    tokens, labels = torch.randint(0, 8, (len(models), 4, 9)), torch.randint(0, 3, (len(models), 4))
    loss = torch.nn.functional.cross_entropy(stack(tokens).transpose(1, 2), labels, reduction="none").mean(1).sum()
    loss.backward()
    for index, model in enumerate(models):
        torch.nn.functional.cross_entropy(model(tokens[index]), labels[index]).backward()
        assert_close(stack.attention_k_proj_weight.grad[index], model.attention.k_proj.weight.grad)
        assert_close(stack.embed_weight.grad[index], model.embed.weight.grad)
        if model.encoding == "learned":
            assert_close(stack.learned_positions.grad[index], model.position.embedding.weight.grad)
        else:  # no learned table: its slice gets no gradient at all
            assert not stack.learned_positions.grad[index].any()


def test_stack_trains_like_the_models_one_by_one_and_unstacks():
    models = _models(seeds=(0,), embed_dim=16, num_heads=2)
    copies = [copy.deepcopy(m) for m in models]
    stack = OrderClassifierStack(models)
    optimizer = torch.optim.AdamW(stack.parameters(), lr=1e-2)
    generator = torch.Generator().manual_seed(0)
    batches = [(torch.randint(0, 8, (len(models), 4, 9), generator=generator),
                torch.randint(0, 3, (len(models), 4), generator=generator)) for _ in range(3)]
    for tokens, labels in batches:
        loss = torch.nn.functional.cross_entropy(stack(tokens).transpose(1, 2), labels, reduction="none").mean(1).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    trained = stack.unstack()
    probe = torch.randint(0, 8, (6, 9), generator=generator)
    assert all(a is b for a, b in zip(trained, models, strict=True)) and not any(m.training for m in trained)
    for index, model in enumerate(copies):
        one = torch.optim.AdamW(model.parameters(), lr=1e-2)
        for tokens, labels in batches:
            loss = torch.nn.functional.cross_entropy(model(tokens[index]), labels[index])
            one.zero_grad()
            loss.backward()
            one.step()
        model.eval()
        # Compare what the models compute, not every parameter: the keys' bias has a zero gradient
        # in theory (softmax ignores a shift shared by all keys), so AdamW turns rounding noise into
        # steps that differ between the two runs without changing any output.
        assert_close(trained[index](probe), model(probe), atol=1e-4, rtol=1e-4)
        if model.encoding == "learned":  # positions never seen keep their start exactly
            unseen = trained[index].position.embedding.weight[9:]
            assert torch.equal(unseen, copies[index].position.embedding.weight[9:])


def test_stack_errors():
    with pytest.raises(TypeError, match="OrderClassifier"):
        OrderClassifierStack([])
    with pytest.raises(ValueError, match="same"):
        OrderClassifierStack([OrderClassifier(8, 2, embed_dim=16, num_heads=2),
                              OrderClassifier(8, 2, embed_dim=16, num_heads=4)])
    stack = OrderClassifierStack([OrderClassifier(8, 2, embed_dim=16, num_heads=2, max_len=10)] * 2)
    with pytest.raises(ValueError, match=r"\(2, batch, length\)"):
        stack(torch.randint(0, 8, (3, 4, 5)))
    with pytest.raises(ValueError, match="max_len=10"):
        stack(torch.randint(0, 8, (4, 11)))


def test_positional_attention_starts_from_nn_linear_defaults():
    # Notebook 06's starting numbers: one packed nn.Linear(E, 3E) for q, k, v, then nn.Linear(E, E).
    torch.manual_seed(0)
    layer = PositionalSelfAttention(8, 2)
    torch.manual_seed(0)
    packed, out = nn.Linear(8, 24), nn.Linear(8, 8)
    for index, proj in enumerate((layer.q_proj, layer.k_proj, layer.v_proj)):
        assert torch.equal(proj.weight, packed.weight[8 * index: 8 * (index + 1)])
        assert torch.equal(proj.bias, packed.bias[8 * index: 8 * (index + 1)])
    assert torch.equal(layer.out_proj.weight, out.weight) and torch.equal(layer.out_proj.bias, out.bias)
