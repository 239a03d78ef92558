"""helpers.claims: verdicts print when the evidence holds and raise with the evidence when not."""

import json

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from helpers import claims

finite = st.floats(-1e6, 1e6, allow_nan=False)


def test_claim_prints_verdict(capsys):
    claims.claim("it holds", True)
    assert capsys.readouterr().out == "✓ it holds\n"


def test_claim_raises_with_evidence(capsys):
    with pytest.raises(claims.ClaimFailed, match=r"claim does not hold: it holds\n  evidence: 1 < 2"):
        claims.claim("it holds", False, "1 < 2")
    assert capsys.readouterr().out == ""


def test_claim_failed_is_an_assertion():
    assert issubclass(claims.ClaimFailed, AssertionError)


@given(st.lists(finite, min_size=1, max_size=6), finite)
def test_above_and_below_match_min_and_max(values, threshold):
    holds = min(values) > threshold
    if holds:
        assert claims.above("x", values, threshold) == pytest.approx(min(values) - threshold)
    else:
        with pytest.raises(claims.ClaimFailed):
            claims.above("x", values, threshold)
    if max(values) < threshold:
        assert claims.below("x", values, threshold) == pytest.approx(threshold - max(values))
    else:
        with pytest.raises(claims.ClaimFailed):
            claims.below("x", values, threshold)


def test_beats_unpaired_needs_worst_winner_above_best_loser():
    assert claims.beats("a beats b", [0.9, 0.95], [0.5, 0.8]) == pytest.approx(0.1)
    with pytest.raises(claims.ClaimFailed, match="winner"):
        claims.beats("a beats b", [0.9, 0.7], [0.5, 0.8])
    with pytest.raises(claims.ClaimFailed):
        claims.beats("a beats b by 0.2", [0.9, 0.95], [0.5, 0.8], by=0.2)


def test_beats_paired_compares_seed_by_seed():
    # Unpaired this fails (0.7 < 0.8); paired, each seed wins.
    assert claims.beats("a beats b", [0.9, 0.7], [0.8, 0.6], paired=True) == pytest.approx(0.1)
    with pytest.raises(claims.ClaimFailed):
        claims.beats("a beats b", [0.9, 0.7], [0.8, 0.75], paired=True)
    with pytest.raises(ValueError, match="one value per seed"):
        claims.beats("a beats b", [0.9, 0.7], [0.8], paired=True)


def test_beats_lower_is_better_reads_subject_first(capsys):
    # "a has a lower loss than b": a is the winner, and it is named first.
    assert claims.beats("a has a lower loss", [0.2, 0.3], [0.5, 0.4], lower_is_better=True) == pytest.approx(0.1)
    assert capsys.readouterr().out == "✓ a has a lower loss\n"
    with pytest.raises(claims.ClaimFailed, match="lower is better"):
        claims.beats("a has a lower loss", [0.5, 0.4], [0.2, 0.3], lower_is_better=True)
    assert claims.beats("paired", [0.2, 0.6], [0.3, 0.8], lower_is_better=True, paired=True) == pytest.approx(0.1)


@given(st.lists(finite, min_size=1, max_size=5), st.lists(finite, min_size=1, max_size=5))
def test_beats_lower_is_better_is_beats_on_negated_values(a, b):
    def outcome(fn):
        try:
            return fn()
        except claims.ClaimFailed:
            return None

    lower = outcome(lambda: claims.beats("x", a, b, lower_is_better=True))
    negated = outcome(lambda: claims.beats("x", [-v for v in a], [-v for v in b]))
    assert (lower is None) == (negated is None)
    if lower is not None:
        assert lower == pytest.approx(negated)


def test_within_bounds_every_difference_and_prints_the_bound(capsys):
    assert claims.within("a and b", [0.80, 0.82], [0.81, 0.83], bound=0.05) == pytest.approx(0.02)
    assert capsys.readouterr().out == "✓ a and b: no difference larger than 0.05\n"
    # Overlapping but wide ranges do not bound the difference.
    with pytest.raises(claims.ClaimFailed, match="largest pairwise difference 0.3"):
        claims.within("a and b", [0.5, 0.9], [0.6, 0.8], bound=0.05)
    # Paired: only each seed's own difference counts.
    assert claims.within("paired", [0.5, 0.9], [0.52, 0.91], bound=0.05, paired=True) == pytest.approx(0.03)
    with pytest.raises(ValueError, match="positive"):
        claims.within("x", [1.0], [1.0], bound=0)
    with pytest.raises(ValueError, match="one value per seed"):
        claims.within("x", [1.0, 2.0], [1.0], bound=1, paired=True)


@given(st.lists(finite, min_size=1, max_size=5), st.lists(finite, min_size=1, max_size=5),
       st.floats(1e-3, 1e6))
def test_within_holds_exactly_when_every_pairwise_difference_is_inside(a, b, bound):
    inside = all(abs(x - y) < bound for x in a for y in b)
    if inside:
        claims.within("x", a, b, bound=bound)
    else:
        with pytest.raises(claims.ClaimFailed):
            claims.within("x", a, b, bound=bound)


def test_indistinguishable_needs_overlapping_ranges_and_says_it_is_not_equality(capsys):
    assert claims.indistinguishable("a vs b", [0.8, 0.9], [0.85, 0.95]) == pytest.approx(0.05)
    assert capsys.readouterr().out == ("✓ a vs b: not distinguishable at this budget (the seed ranges overlap)\n")
    with pytest.raises(claims.ClaimFailed, match="do not overlap"):
        claims.indistinguishable("a vs b", [0.8, 0.82], [0.85, 0.95])


def test_values_accept_tensors_and_reject_bad_input():
    assert claims.above("t", torch.tensor([0.5, 0.6]), 0.4) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="non-empty"):
        claims.above("t", [], 0.4)
    with pytest.raises(ValueError, match="NaN"):
        claims.above("t", [float("nan")], 0.4)


def test_spread_formats_mean_and_range():
    assert claims.spread([0.5, 0.7, 0.6]) == "0.600 (0.500–0.700, 3 seeds)"
    assert claims.spread([0.5, 0.7], 2, count=False) == "0.60 (0.50–0.70)"


def test_claims_are_logged_when_asked(tmp_path, monkeypatch):
    log = tmp_path / "claims.jsonl"
    monkeypatch.setenv("HELPERS_CLAIMS_LOG", str(log))
    claims.above("logged", [0.5], 0.25)
    with pytest.raises(claims.ClaimFailed):
        claims.above("failed", [0.1], 0.25)
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    assert rows == [{"claim": "logged", "margin": 0.25, "holds": True, "spread": 0.0},
                    {"claim": "failed", "margin": pytest.approx(-0.15), "holds": False, "spread": 0.0}]
    monkeypatch.delenv("HELPERS_CLAIMS_LOG")
    log.unlink()
    monkeypatch.setenv("HELPERS_CLAIMS_LOG", str(log))
    claims.beats("spread", [0.9, 1.0], [0.2, 0.5])
    assert json.loads(log.read_text())["spread"] == pytest.approx(0.3)


def test_margins_display_nothing_at_the_end_of_a_cell():
    from IPython.core.formatters import DisplayFormatter

    margin = claims.above("x", [0.5], 0.25)
    assert isinstance(margin, claims.Margin) and margin == 0.25
    # IPython hands an object with _ipython_display_ to it and publishes nothing else.
    assert DisplayFormatter().format(margin) == ({}, {})
