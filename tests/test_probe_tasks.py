"""The long-range probe that notebook 09 appends to helpers.tasks."""

import pytest

from helpers import data
from helpers.tasks import first_word_pairs


def test_first_word_pairs_target_is_the_first_word():
    pairs = first_word_pairs(200, 3, 9, seed=1)
    assert len(pairs) == 200
    for source, target in pairs:
        words = source.split()
        assert 4 <= len(words) <= 10
        assert target == str(data.DIGIT_WORDS.index(words[0]))
    assert {len(s.split()) - 1 for s, _ in pairs} == set(range(3, 10))  # every distance occurs
    assert len({t for _, t in pairs}) == 10


def test_first_word_pairs_are_reproducible_and_fit_the_translation_pipeline():
    assert first_word_pairs(50, 2, 5, seed=3) == first_word_pairs(50, 2, 5, seed=3)
    assert first_word_pairs(50, 2, 5, seed=3) != first_word_pairs(50, 2, 5, seed=4)
    batch = data.collate(first_word_pairs(8, 2, 5))
    assert batch.target_out.shape == (8, 2)  # the digit, then <eos>
    assert bool((batch.target_out[:, 1] == data.TARGET_VOCAB.eos_id).all())


def test_first_word_pairs_rejects_bad_ranges():
    with pytest.raises(ValueError, match="min_distance"):
        first_word_pairs(5, 4, 2)
    with pytest.raises(ValueError, match="positive"):
        first_word_pairs(0, 1, 2)
