"""Count models (helpers.ngram): add-α and interpolated Kneser–Ney by hand on a tiny corpus."""

import math

import pytest

from helpers.ngram import NGram

# Token ids: 1 is the boundary, 2..4 are letters "a", "b", "c". Items are .ab. .abc. .b.
ITEMS = [[1, 2, 3, 1], [1, 2, 3, 4, 1], [1, 3, 1]]
TARGETS = [1, 2, 3, 4]


def test_add_alpha_by_hand():
    model = NGram(ITEMS, 2, TARGETS, smoothing="add", strength=0.5)
    # After "a" (id 2): "b" twice, nothing else; 4 targets.
    assert model.prob([2], 3) == pytest.approx((2 + 0.5) / (2 + 0.5 * 4))
    assert model.prob([2], 4) == pytest.approx(0.5 / (2 + 0.5 * 4))
    # A context never seen gets the uniform distribution.
    assert NGram(ITEMS, 3, TARGETS, smoothing="add", strength=1.0).prob([4, 4], 2) == pytest.approx(0.25)


def test_unigram_add_one():
    model = NGram(ITEMS, 1, TARGETS, smoothing="add", strength=1.0)
    # Targets: 1 x3, 2 x2, 3 x3, 4 x1 = 9 targets.
    assert model.prob([], 1) == pytest.approx((3 + 1) / (9 + 4))
    assert model.prob([2, 3], 4) == pytest.approx((1 + 1) / (9 + 4))  # a unigram ignores the context


def test_kneser_ney_bigram_by_hand():
    discount = 0.5
    model = NGram(ITEMS, 2, TARGETS, smoothing="kn", strength=discount)
    # Continuation counts of the unigram level: how many distinct previous tokens each target follows.
    # 1 follows {3, 4} -> 2; 2 follows {1} -> 1; 3 follows {2, 1} -> 2; 4 follows {3} -> 1; total 6.
    # The empty context is itself discounted and interpolated with the uniform distribution:
    # p0(c) = max(N(c) - D, 0) / 6 + D * 4 / 6 * 1/4.
    lower = {c: max(n - discount, 0) / 6 + discount * 4 / 6 / 4 for c, n in {1: 2, 2: 1, 3: 2, 4: 1}.items()}
    assert sum(lower.values()) == pytest.approx(1.0)
    # After "b" (id 3): boundary twice, "c" once (3 tokens, 2 distinct).
    backoff = discount * 2 / 3
    assert model.prob([3], 1) == pytest.approx((2 - discount) / 3 + backoff * lower[1])
    assert model.prob([3], 4) == pytest.approx((1 - discount) / 3 + backoff * lower[4])
    assert model.prob([3], 2) == pytest.approx(backoff * lower[2])


@pytest.mark.parametrize("smoothing, strength", [("add", 0.1), ("add", 2.0), ("kn", 0.3), ("kn", 0.9)])
@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_every_context_is_a_distribution(order, smoothing, strength):
    model = NGram(ITEMS, 4, TARGETS).use(order, smoothing, strength)
    for context in ([], [1], [1, 2], [1, 2, 3], [4, 4, 4], [2, 4]):
        total = sum(model.prob(context, c) for c in TARGETS)
        assert total == pytest.approx(1.0)
        assert all(model.prob(context, c) > 0 for c in TARGETS)


def test_use_matches_counting_at_that_order():
    big = NGram(ITEMS, 4, TARGETS)
    for order in (1, 2, 3):
        for smoothing, strength in (("add", 0.3), ("kn", 0.7)):
            small = NGram(ITEMS, order, TARGETS, smoothing=smoothing, strength=strength)
            assert big.use(order, smoothing, strength).bits(ITEMS) == pytest.approx(small.bits(ITEMS))


def test_bits_is_the_mean_of_minus_log2_p():
    model = NGram(ITEMS, 2, TARGETS, smoothing="add", strength=1.0)
    item = [1, 2, 3, 1]
    expected = -sum(math.log2(model.prob(item[:t], item[t])) for t in range(1, 4)) / 3
    assert model.bits([item]) == pytest.approx(expected)


def test_higher_order_fits_training_items_better():
    model = NGram(ITEMS, 3, TARGETS)
    scores = [model.use(order, "kn", 0.5).bits(ITEMS) for order in (1, 2, 3)]
    assert scores[0] > scores[1] > scores[2]


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="order must be a positive integer"):
        NGram(ITEMS, 0, TARGETS)
    with pytest.raises(ValueError, match="not a target id"):
        NGram([[1, 9, 1]], 2, TARGETS)
    model = NGram(ITEMS, 2, TARGETS)
    with pytest.raises(ValueError, match="between 1 and the order counted"):
        model.use(3, "kn", 0.5)
    with pytest.raises(ValueError, match="smoothing must be"):
        model.use(2, "good-turing", 0.5)
    with pytest.raises(ValueError, match="discount 0 < D < 1"):
        model.use(2, "kn", 1.5)
    with pytest.raises(ValueError, match="alpha > 0"):
        model.use(2, "add", 0.0)
    with pytest.raises(ValueError, match="not a target id"):
        model.bits([[1, 9, 1]])
    with pytest.raises(ValueError, match="at least one item"):
        model.bits([[1]])
