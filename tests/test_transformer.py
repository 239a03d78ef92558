"""helpers.transformer against torch.nn's Transformer layers, plus the invariants a decoder must keep."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.testing import assert_close

from helpers.attention import padding_mask
from helpers.transformer import (
    Decoder,
    DecoderCache,
    DecoderLayer,
    Encoder,
    EncoderLayer,
    FeedForward,
    Transformer,
    greedy_decode,
)

FAST = settings(max_examples=25, deadline=None)
EMBED_DIM, HEADS, FF = 16, 4, 32


def small_model(norm_first=True, **kwargs):
    torch.manual_seed(0)
    options = dict(embed_dim=EMBED_DIM, num_heads=HEADS, dim_feedforward=FF, num_encoder_layers=2,
                   num_decoder_layers=2, norm_first=norm_first, max_len=64)
    options.update(kwargs)
    return Transformer(11, 13, **options).eval()


# --------------------------------------------------------------------------------------------
# Shapes
# --------------------------------------------------------------------------------------------


def test_feed_forward_is_position_wise():
    ff = FeedForward(EMBED_DIM, FF)
    x = torch.randn(2, 5, EMBED_DIM)
    out = ff(x)
    assert out.shape == (2, 5, EMBED_DIM)
    # Each position on its own gives the same answer as the whole sequence at once.
    for t in range(5):
        assert_close(ff(x[:, t]), out[:, t])


def test_layer_and_model_shapes():
    x, memory = torch.randn(3, 7, EMBED_DIM), torch.randn(3, 4, EMBED_DIM)
    assert EncoderLayer(EMBED_DIM, HEADS, FF)(x).shape == (3, 7, EMBED_DIM)
    assert DecoderLayer(EMBED_DIM, HEADS, FF)(x, memory).shape == (3, 7, EMBED_DIM)
    assert Encoder(EMBED_DIM, HEADS, FF, 3)(x).shape == (3, 7, EMBED_DIM)
    assert Decoder(EMBED_DIM, HEADS, FF, 3)(x, memory).shape == (3, 7, EMBED_DIM)
    model = small_model()
    src, tgt = torch.randint(1, 11, (3, 9)), torch.randint(1, 13, (3, 6))
    assert model(src, tgt).shape == (3, 6, 13)
    memory, memory_mask = model.encode(src)
    assert memory.shape == (3, 9, EMBED_DIM) and memory_mask.shape == (3, 1, 1, 9)


def test_need_weights_keeps_weights_of_the_right_shape():
    layer = DecoderLayer(EMBED_DIM, HEADS, FF)
    layer(torch.randn(2, 5, EMBED_DIM), torch.randn(2, 3, EMBED_DIM), need_weights=True)
    assert layer.attention_weights.shape == (2, HEADS, 5, 5) and layer.cross_attention_weights.shape == (2, HEADS, 5, 3)
    assert_close(layer.cross_attention_weights.sum(-1), torch.ones(2, HEADS, 5))
    # Causal: no weight on a future position.
    assert torch.equal(layer.attention_weights.triu(1), torch.zeros_like(layer.attention_weights))
    encoder_layer = EncoderLayer(EMBED_DIM, HEADS, FF)
    encoder_layer(torch.randn(2, 5, EMBED_DIM), need_weights=True)
    assert encoder_layer.attention_weights.shape == (2, HEADS, 5, 5)
    encoder_layer(torch.randn(2, 5, EMBED_DIM))
    assert encoder_layer.attention_weights is None


# --------------------------------------------------------------------------------------------
# Against torch.nn
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
@pytest.mark.parametrize("grad", [False, True])
def test_encoder_layer_matches_torch(norm_first, activation, grad):
    torch.manual_seed(1)
    reference = nn.TransformerEncoderLayer(EMBED_DIM, HEADS, FF, dropout=0.0, activation=activation,
                                           batch_first=True, norm_first=norm_first).eval()
    with torch.no_grad():  # LayerNorm starts at weight 1, bias 0: give it values that would show a mix-up
        for norm in (reference.norm1, reference.norm2):
            norm.weight.uniform_(0.5, 1.5)
            norm.bias.uniform_(-0.5, 0.5)
    ours = EncoderLayer.from_torch(reference).eval()
    x = torch.randn(3, 6, EMBED_DIM, requires_grad=grad)
    keep = padding_mask(torch.tensor([6, 4, 2]))  # (3, 6), True at real tokens
    with torch.set_grad_enabled(grad):
        assert_close(ours(x), reference(x))
        # torch's padding mask marks the padding: the opposite of ours. Compare real positions
        # (torch's fused inference path may fill padded rows differently).
        expected = reference(x, src_key_padding_mask=~keep)
        actual = ours(x, keep[:, None, None, :])
        assert_close(actual[keep], expected[keep])


@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_layer_matches_torch(norm_first):
    torch.manual_seed(2)
    reference = nn.TransformerDecoderLayer(EMBED_DIM, HEADS, FF, dropout=0.0, batch_first=True,
                                           norm_first=norm_first).eval()
    ours = DecoderLayer.from_torch(reference).eval()
    x, memory = torch.randn(2, 5, EMBED_DIM), torch.randn(2, 7, EMBED_DIM)
    keep = padding_mask(torch.tensor([7, 3]))  # (2, 7)
    expected = reference(x, memory, tgt_mask=nn.Transformer.generate_square_subsequent_mask(5),
                         tgt_is_causal=True, memory_key_padding_mask=~keep)
    assert_close(ours(x, memory, keep[:, None, None, :]), expected)


@pytest.mark.filterwarnings("ignore:enable_nested_tensor is True")  # torch's note about its fast path
@pytest.mark.parametrize("norm_first", [False, True])
def test_parameter_count_matches_torch_transformer(norm_first):
    model = Transformer(11, 13, embed_dim=32, num_heads=4, num_encoder_layers=3, num_decoder_layers=2,
                        dim_feedforward=48, norm_first=norm_first)
    reference = nn.Transformer(32, 4, 3, 2, 48, dropout=0.0, batch_first=True, norm_first=norm_first)
    embeddings_and_head = 11 * 32 + 13 * 32 + (32 * 13 + 13)
    count = sum(p.numel() for p in model.parameters())
    assert count == sum(p.numel() for p in reference.parameters()) + embeddings_and_head
    # Positions are a fixed table: not a parameter, and not in the state dict.
    assert "positions" not in model.state_dict()


def test_from_torch_rejects_other_modules():
    with pytest.raises(TypeError, match="TransformerEncoderLayer"):
        EncoderLayer.from_torch(nn.Linear(2, 2))
    with pytest.raises(TypeError, match="TransformerDecoderLayer"):
        DecoderLayer.from_torch(nn.TransformerEncoderLayer(8, 2, batch_first=True))


# --------------------------------------------------------------------------------------------
# Invariants
# --------------------------------------------------------------------------------------------


@FAST
@given(t=st.integers(0, 6), seed=st.integers(0, 2**16), norm_first=st.booleans())
def test_decoder_output_at_t_ignores_later_targets(t, seed, norm_first):
    model = small_model(norm_first)
    generator = torch.Generator().manual_seed(seed)
    src = torch.randint(1, 11, (2, 5), generator=generator)
    tgt = torch.randint(1, 13, (2, 8), generator=generator)
    changed = tgt.clone()
    changed[:, t + 1:] = torch.randint(1, 13, changed[:, t + 1:].shape, generator=generator)
    with torch.no_grad():
        before, after = model(src, tgt), model(src, changed)
    assert_close(before[:, :t + 1], after[:, :t + 1])
    if t + 1 < 8 and not torch.equal(tgt, changed):
        # ...while later positions do see the change: the test could fail.
        assert not torch.allclose(before[:, t + 1:], after[:, t + 1:])


def test_no_gradient_flows_from_the_future():
    layer = DecoderLayer(EMBED_DIM, HEADS, FF, norm_first=True)
    x = torch.randn(1, 6, EMBED_DIM, requires_grad=True)
    layer(x, torch.randn(1, 3, EMBED_DIM))[0, 2].sum().backward()
    assert torch.equal(x.grad[0, 3:], torch.zeros(3, EMBED_DIM))
    assert x.grad[0, :3].abs().sum() > 0


def test_source_padding_changes_nothing():
    model = small_model()
    src = torch.randint(1, 11, (1, 5))
    padded = torch.cat([src, torch.zeros(1, 4, dtype=torch.long)], dim=1)  # pad_id = 0
    tgt = torch.randint(1, 13, (1, 4))
    with torch.no_grad():
        assert_close(model(padded, tgt), model(src, tgt))


@pytest.mark.parametrize("layer_class", [EncoderLayer, DecoderLayer])
def test_gradients_match_finite_differences(layer_class):
    torch.manual_seed(3)
    layer = layer_class(8, 2, 12, norm_first=True).double()
    x = torch.randn(1, 3, 8, dtype=torch.double, requires_grad=True)
    if layer_class is EncoderLayer:
        assert torch.autograd.gradcheck(lambda x: layer(x), (x,))
    else:
        memory = torch.randn(1, 2, 8, dtype=torch.double, requires_grad=True)
        assert torch.autograd.gradcheck(lambda x, m: layer(x, m), (x, memory))


# --------------------------------------------------------------------------------------------
# Key/value cache
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("norm_first", [False, True])
def test_cached_logits_equal_full_recomputation(norm_first):
    model = small_model(norm_first)
    src = torch.tensor([[3, 4, 5, 6, 0, 0], [7, 8, 9, 10, 2, 1]])  # the first row is padded
    tgt = torch.randint(1, 13, (2, 9))
    with torch.no_grad():
        memory, memory_mask = model.encode(src)
        full = model.decode(tgt, memory, memory_mask)
        cache = model.new_cache()
        assert isinstance(cache, DecoderCache) and cache.length == 0
        # Feed the prefix in uneven chunks: 1 token, then 3 at once, then one at a time.
        pieces, start = [], 0
        for size in (1, 3, 1, 1, 1, 1, 1):
            pieces.append(model.decode(tgt[:, start:start + size], memory, memory_mask, cache=cache))
            start += size
    assert cache.length == 9
    assert cache.layers[0]["self"].key.shape == (2, HEADS, 9, EMBED_DIM // HEADS)
    assert cache.layers[0]["cross"].key.shape == (2, HEADS, 6, EMBED_DIM // HEADS)
    assert_close(torch.cat(pieces, dim=1), full, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("norm_first", [False, True])
def test_greedy_decode_with_and_without_cache_agree(norm_first):
    model = small_model(norm_first)
    src = torch.randint(1, 11, (4, 7))
    cached = greedy_decode(model, src, 20, bos_id=1, use_cache=True)
    recomputed = greedy_decode(model, src, 20, bos_id=1, use_cache=False)
    assert cached.shape == (4, 20)
    assert torch.equal(cached, recomputed)


def test_greedy_decode_matches_a_step_by_step_loop_and_stops_at_eos():
    model = small_model()
    src = torch.randint(1, 11, (3, 5))
    tokens = torch.ones(3, 1, dtype=torch.long)  # BOS = 1
    with torch.no_grad():
        for _ in range(6):
            next_token = model(src, tokens)[:, -1].argmax(-1)
            tokens = torch.cat([tokens, next_token[:, None]], dim=1)
    assert torch.equal(greedy_decode(model, src, 6, bos_id=1), tokens[:, 1:])
    # Pick as EOS the token the first row emits first: that row stops, then gets padding.
    eos = int(tokens[0, 1])
    out = greedy_decode(model, src, 6, bos_id=1, eos_id=eos)
    assert out[0, 0] == eos and bool((out[0, 1:] == model.pad_id).all())
    finished = (out == eos).cumsum(1) > 0
    assert out.shape[1] == 6 or bool(finished[:, -1].all())


def test_greedy_decode_leaves_training_mode_alone_and_needs_no_grad():
    model = small_model()
    out = greedy_decode(model, torch.randint(1, 11, (1, 4)), 3, bos_id=1)
    assert not out.requires_grad and out.dtype == torch.long


# --------------------------------------------------------------------------------------------
# Errors a learner can act on
# --------------------------------------------------------------------------------------------


def test_errors_name_the_shapes():
    with pytest.raises(ValueError, match=r"\(2, 5, 12\)"):
        EncoderLayer(EMBED_DIM, HEADS, FF)(torch.randn(2, 5, 12))
    with pytest.raises(ValueError, match="same batch size"):
        DecoderLayer(EMBED_DIM, HEADS, FF)(torch.randn(2, 5, EMBED_DIM), torch.randn(3, 4, EMBED_DIM))
    with pytest.raises(ValueError, match="divisible"):
        EncoderLayer(10, 3, FF)
    with pytest.raises(ValueError, match="activation"):
        FeedForward(4, 8, activation="tanh")
    model = small_model()
    with pytest.raises(TypeError, match="integer tensor"):
        model(torch.randn(2, 3), torch.ones(2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\(batch, length\)"):
        model(torch.ones(3, dtype=torch.long), torch.ones(2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="outside 0..12"):
        model(torch.ones(2, 3, dtype=torch.long), torch.full((2, 2), 13))
    with pytest.raises(ValueError, match="max_len is 64"):
        model(torch.ones(1, 65, dtype=torch.long), torch.ones(1, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="at least 1"):
        greedy_decode(model, torch.ones(1, 3, dtype=torch.long), 0, bos_id=1)


def test_linear_warmup_raises_the_rate_at_every_optimizer_step_then_holds_it():
    from helpers.train import fit
    from helpers.transformer import linear_warmup

    model = torch.nn.Linear(3, 1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    linear_warmup(optimizer, 4)
    seen = []
    batch = (torch.randn(8, 3), torch.randn(8, 1))

    def loss_fn(model, batch):
        seen.append(optimizer.param_groups[0]["lr"])  # the rate the coming step will use
        return torch.nn.functional.mse_loss(model(batch[0]), batch[1])

    fit(model, [batch], loss_fn, steps=6, optimizer=optimizer)
    assert seen == pytest.approx([0.025, 0.05, 0.075, 0.1, 0.1, 0.1])
    with pytest.raises(ValueError, match="warmup_steps"):
        linear_warmup(optimizer, 0)
