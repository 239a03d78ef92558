"""Claims checked where they are made.

A trained model's numbers change in their last digits, and sometimes further, between CPUs,
PyTorch versions and GPUs: the arithmetic differs a little and training amplifies it. So a
notebook never asks the tests to compare those numbers digit by digit. It shows them to the
reader in a cell tagged ``nbval-ignore-output`` and states each conclusion it draws from them
with one of the functions below, in a cell that strict nbval *does* compare:

    ✓ attention pooling beats average pooling on every seed (5 seeds)

The verdict line is the same on every machine where the conclusion holds. Where it does not
hold, the function raises :class:`ClaimFailed` with the evidence, so the notebook (and
``make test``) fails at the sentence that is no longer true.

A claim about trained models is made over seeds. ``values`` arguments are one number per seed
(a list, a tuple or a 1-D tensor). The claims are deliberately strict:

- "a beats b" (:func:`beats`) means the worst seed of ``a`` beats the best seed of ``b``. If the
  seeds made no difference to which of the two is better (the null hypothesis), each of the
  ways to split the runs into an ``a`` group and a ``b`` group would be equally likely, and
  only one of them puts every ``a`` run above every ``b`` run. So with 3 seeds against 3 this is
  an exact one-sided permutation test at p = 1/20 (1 of C(6, 3) = 20 orderings); with 5 against
  5, p = 1/252. With ``paired=True`` every seed's own difference must clear the gap.
- "no difference" is never read off overlapping ranges: a wide spread would "show" equivalence.
  :func:`within` claims that every (paired or pairwise) difference lies within a stated bound
  ±δ and prints δ in the verdict. Where the data cannot bound the difference,
  :func:`indistinguishable` says only that the seed ranges overlap: "not distinguishable at this
  budget", which the prose must not read as equality.
- A threshold (``above``, ``below``, ``by=``, ``bound=``) is chosen before the run, from a
  baseline, a theory, an earlier notebook or a size that matters in practice, and the prose or a
  comment says which. What the committed run happened to give is not a source.

Every seed goes through :mod:`helpers.seeds`, so ``make test-seeds`` can rerun each notebook on
seeds nobody chose (``HELPERS_SEED_OFFSET``); a claim must hold there too.

Each claim records its *margin*: how far the weakest evidence is from failing, in the units of
the values, and the *spread* of the values it read (largest minus smallest). When
``HELPERS_CLAIMS_LOG`` names a file, every claim appends a JSON line to it
(``tools/run_notebooks.py`` reports the smallest margin per notebook, and the margin as a
fraction of the spread).
"""

import json
import math
import os
from collections.abc import Sequence

import torch

__all__ = ["ClaimFailed", "Margin", "claim", "above", "below", "beats", "within", "indistinguishable", "spread"]


class ClaimFailed(AssertionError):
    """A claim made in the prose does not hold on this run; the message gives the evidence."""


class Margin(float):
    """A claim's margin: a float that shows nothing when it ends a notebook cell.

    The margin changes from machine to machine, so it must never become a cell's output (strict
    nbval would compare it); a trailing ``;`` does not reliably hide it under nbval.
    """

    def _ipython_display_(self):
        pass


def _values(values, name="values") -> list[float]:
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().flatten().tolist()
    if isinstance(values, (int, float)):
        values = [values]
    if not isinstance(values, Sequence) or len(values) == 0:
        raise ValueError(f"{name} must be a non-empty sequence of numbers (one per seed), got {values!r}")
    values = [float(v) for v in values]
    if any(math.isnan(v) for v in values):
        raise ValueError(f"{name} contains NaN: {values}")
    return values


def _fmt(values: list[float]) -> str:
    return "[" + ", ".join(f"{v:.4g}" for v in values) + "]"


def _range(*groups: list[float]) -> float:
    """The largest spread (max - min) among the groups of values."""
    return max(max(g) - min(g) for g in groups)


def _log(statement: str, margin: float | None, holds: bool, spread: float | None):
    path = os.environ.get("HELPERS_CLAIMS_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"claim": statement, "margin": margin, "holds": holds, "spread": spread}) + "\n")


def claim(statement: str, holds: bool, evidence: str = "", *, margin: float | None = None,
          spread: float | None = None) -> float | None:
    """Print ``✓ statement`` when ``holds``; raise :class:`ClaimFailed` with ``evidence`` otherwise.

    Args:
        statement: the claim in words, as the prose makes it. It is what strict nbval compares,
            so it must not contain run-dependent numbers.
        holds: whether the evidence supports it.
        evidence: the numbers behind it, shown only when it fails.
        margin: how far the evidence is from failing (recorded, never printed).
        spread: how widely the values behind it vary over seeds (recorded, never printed).

    Returns the margin, as a ``Margin``: a float that displays nothing at the end of a cell.
    """
    holds = bool(holds)
    margin = None if margin is None else Margin(margin)
    _log(statement, margin, holds, spread)
    if not holds:
        raise ClaimFailed(f"claim does not hold: {statement}\n  evidence: {evidence}")
    print(f"✓ {statement}")
    return margin


def above(statement: str, values, threshold: float) -> float:
    """Claim that every value (every seed) is above ``threshold``. Returns min(values) - threshold."""
    values = _values(values)
    margin = min(values) - threshold
    return claim(statement, margin > 0, f"values {_fmt(values)}, threshold {threshold:.4g}", margin=margin,
                 spread=_range(values))


def below(statement: str, values, threshold: float) -> float:
    """Claim that every value (every seed) is below ``threshold``. Returns threshold - max(values)."""
    values = _values(values)
    margin = threshold - max(values)
    return claim(statement, margin > 0, f"values {_fmt(values)}, threshold {threshold:.4g}", margin=margin,
                 spread=_range(values))


def beats(statement: str, winner, loser, *, by: float = 0.0, paired: bool = False,
          lower_is_better: bool = False) -> float:
    """Claim that ``winner`` is better than ``loser`` by more than ``by`` on every seed.

    The statement names the winner first, and so do the arguments: "attention pooling has a
    lower error than average pooling" is ``beats(statement, attention_errors, average_errors,
    lower_is_better=True)``.

    Unpaired (the default), the worst winner seed must beat the best loser seed:
    ``min(winner) - max(loser) > by`` (for ``lower_is_better``: ``min(loser) - max(winner) > by``).
    With ``paired=True`` (the two lists come from the same seeds, data and budget), each seed's
    own difference must exceed ``by``.

    Returns the margin: the smallest gap minus ``by``.
    """
    winner, loser = _values(winner, "winner"), _values(loser, "loser")
    sign = -1.0 if lower_is_better else 1.0
    better, worse = [sign * v for v in winner], [sign * v for v in loser]
    if paired:
        if len(winner) != len(loser):
            raise ValueError(f"paired claims need one value per seed on both sides, got {len(winner)} and "
                             f"{len(loser)}")
        gaps = [w - v for w, v in zip(better, worse, strict=True)]
        gap, spread_ = min(gaps), _range(gaps)
    else:
        gap, spread_ = min(better) - max(worse), _range(winner, loser)
    margin = gap - by
    direction = "lower" if lower_is_better else "higher"
    return claim(statement, margin > 0, f"winner {_fmt(winner)}, loser {_fmt(loser)} ({direction} is better), "
                 f"required gap {by:.4g}", margin=margin, spread=spread_)


def within(statement: str, a, b, *, bound: float, paired: bool = False) -> float:
    """Claim "no difference larger than ``bound``" between ``a`` and ``b``, and print the bound.

    Paired (the same seeds, data and budget on both sides), every seed's difference ``a - b``
    must lie within ``±bound``; unpaired, every pairwise difference between a run of ``a`` and a
    run of ``b`` must. The verdict reads ``✓ {statement}: no difference larger than {bound}``, so
    the bound is always on the page. Choose ``bound`` before the run, as a size that matters (a
    practical difference, an earlier notebook's effect); state its source in the prose.

    Returns the margin: ``bound`` minus the largest absolute difference.
    """
    a, b = _values(a, "a"), _values(b, "b")
    if not (isinstance(bound, (int, float)) and bound > 0):
        raise ValueError(f"bound must be a positive number, got {bound!r}")
    if paired:
        if len(a) != len(b):
            raise ValueError(f"paired claims need one value per seed on both sides, got {len(a)} and {len(b)}")
        differences = [x - y for x, y in zip(a, b, strict=True)]
    else:
        differences = [x - y for x in a for y in b]
    largest = max(abs(d) for d in differences)
    kind = "paired" if paired else "pairwise"
    return claim(f"{statement}: no difference larger than {bound:g}", largest < bound,
                 f"a {_fmt(a)}, b {_fmt(b)}: largest {kind} difference {largest:.4g} >= bound {bound:g}",
                 margin=bound - largest, spread=_range(differences))


def indistinguishable(statement: str, a, b) -> float:
    """Claim only that the seed ranges of ``a`` and ``b`` overlap: not distinguishable at this budget.

    This is *not* a claim of equality: two wide, overlapping ranges pass it whatever the true
    difference. The verdict says so (``…: not distinguishable at this budget``); to claim
    "no difference", bound it with :func:`within`.

    Returns the overlap (positive when the ranges overlap).
    """
    a, b = _values(a, "a"), _values(b, "b")
    overlap = min(max(a), max(b)) - max(min(a), min(b))
    return claim(f"{statement}: not distinguishable at this budget (the seed ranges overlap)", overlap >= 0,
                 f"a {_fmt(a)}, b {_fmt(b)}: the ranges do not overlap", margin=overlap, spread=_range(a, b))


def spread(values, digits: int = 3, *, count: bool = True) -> str:
    """``"mean (min–max, n seeds)"`` for showing a per-seed result to the reader.

    ``count=False`` leaves out ``", n seeds"``, for tables whose header says it once.
    """
    values = _values(values)
    mean = sum(values) / len(values)
    seeds = f", {len(values)} seeds" if count else ""
    return f"{mean:.{digits}f} ({min(values):.{digits}f}–{max(values):.{digits}f}{seeds})"
