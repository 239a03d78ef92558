"""Synthetic data: determinism, vocabulary round trip, splits, padding, clips, digits."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import data


def test_make_pairs_is_deterministic_and_correct():
    a = data.make_pairs(50, 2, 6, seed=3)
    assert a == data.make_pairs(50, 2, 6, seed=3)
    assert a != data.make_pairs(50, 2, 6, seed=4)
    for source, target in a:
        words = data.tokenize_source(source)
        assert 2 <= len(words) <= 6
        assert "".join(str(data.DIGIT_WORDS.index(w)) for w in words) == target
    assert len({source for source, _ in a}) == 50


def test_lengths_cover_the_range_uniformly():
    pairs = data.make_pairs(2000, 3, 12, seed=0)
    counts = torch.bincount(torch.tensor([len(t) for _, t in pairs]), minlength=13)[3:]
    assert (counts > 120).all() and (counts < 280).all()


def test_longer_lengths_on_demand():
    pairs = data.make_pairs(20, 15, 18, seed=1)
    assert all(15 <= len(t) <= 18 for _, t in pairs)


def test_split_is_fixed_and_disjoint():
    train, valid = data.translation_split(num_train=300, num_valid=100)
    assert (train, valid) == data.translation_split(num_train=300, num_valid=100)
    assert len(train) == 300 and len(valid) == 100
    assert not {s for s, _ in train} & {s for s, _ in valid}


def test_impossible_requests():
    with pytest.raises(ValueError, match="distinct"):
        data.make_pairs(200, 1, 2)
    with pytest.raises(ValueError, match="min_len"):
        data.make_pairs(5, 4, 3)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.sampled_from(data.DIGIT_WORDS), min_size=1, max_size=20))
def test_vocab_round_trip(words):
    ids = data.SOURCE_VOCAB.encode(words)
    assert data.SOURCE_VOCAB.decode(ids) == words
    assert data.SOURCE_VOCAB.decode(ids + [data.SOURCE_VOCAB.eos_id, 5, 6]) == words
    assert data.SOURCE_VOCAB.decode([data.SOURCE_VOCAB.bos_id] + ids + [0, 0]) == words


def test_vocab_specials_and_errors():
    vocab = data.TARGET_VOCAB
    assert vocab.itos[:3] == [data.PAD, data.BOS, data.EOS]
    assert len(vocab) == 13 and len(data.SOURCE_VOCAB) == 13
    with pytest.raises(ValueError, match="eleven"):
        data.SOURCE_VOCAB.encode(["one", "eleven"])
    with pytest.raises(ValueError, match="distinct"):
        data.Vocab(["a", "a"])


def test_collate_pads_and_shifts():
    batch = data.collate([("one two", "12"), ("nine", "9")])
    assert batch.source.tolist() == [[4, 5], [12, 0]]
    assert batch.source_lengths.tolist() == [2, 1]
    bos, eos = data.TARGET_VOCAB.bos_id, data.TARGET_VOCAB.eos_id
    assert batch.target_in.tolist() == [[bos, 4, 5], [bos, 12, 0]]
    assert batch.target_out.tolist() == [[4, 5, eos], [12, eos, 0]]
    assert len(batch) == 2


def test_batch_sampler_is_reproducible():
    train, _ = data.translation_split(num_train=200, num_valid=10)
    a, b = data.batch_sampler(train, 8, seed=1), data.batch_sampler(train, 8, seed=1)
    assert torch.equal(a(5).source, b(5).source)
    assert not torch.equal(a(5).source, a(6).source)


def test_tone_burst_clips():
    signals, labels, starts = data.tone_burst_clips(16, length=1024, event_length=128, seed=0)
    again = data.tone_burst_clips(16, length=1024, event_length=128, seed=0)
    assert torch.equal(signals, again[0]) and torch.equal(labels, again[1])
    assert signals.shape == (16, 1024) and labels.shape == (16,) and starts.shape == (16,)
    assert ((starts >= 0) & (starts <= 1024 - 128)).all()
    assert set(labels.tolist()) <= set(range(len(data.CLIP_CLASSES)))
    # Without noise the clip is zero outside the event.
    clean, _, starts = data.tone_burst_clips(4, length=512, event_length=64, noise=0.0, seed=1)
    for row, start in zip(clean, starts.tolist(), strict=True):
        outside = torch.cat([row[:start], row[start + 64:]])
        assert (outside == 0).all()
        assert row[start: start + 64].abs().max() > 0.5


def test_frames():
    spectra = data.frames(torch.randn(3, 256), frame_length=64)
    assert spectra.shape == (3, 4, 33)
    tone = torch.sin(2 * torch.pi * 8 * torch.arange(64) / 64)[None]
    assert data.frames(tone)[0, 0].argmax() == 8
    with pytest.raises(ValueError, match="multiple"):
        data.frames(torch.randn(3, 100), frame_length=64)


def test_digits_split():
    train_x, train_y, valid_x, valid_y = data.digits_split()
    assert train_x.shape[1:] == (1, 8, 8) and train_x.dtype == torch.float32
    assert len(train_x) + len(valid_x) == 1797 and len(valid_x) == round(0.25 * 1797)
    assert 0 <= train_x.min() and train_x.max() <= 1
    again = data.digits_split()
    assert torch.equal(valid_x, again[2]) and torch.equal(valid_y, again[3])
    big = data.digits_split(canvas=12)
    assert big[0].shape[1:] == (1, 12, 12)
    # The same digits, only moved: the total ink per image is unchanged.
    torch.testing.assert_close(big[2].sum(dim=(1, 2, 3)), valid_x.sum(dim=(1, 2, 3)))
    with pytest.raises(ValueError, match="canvas"):
        data.digits_split(canvas=4)
