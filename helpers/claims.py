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
(a list, a tuple or a 1-D tensor). The claims are deliberately strict: "a beats b" means the
worst seed of ``a`` beats the best seed of ``b``. Where the spreads overlap, the honest claim is
:func:`no_clear_difference`.

Each claim records its *margin*: how far the weakest evidence is from failing, in the units of
the values. When ``HELPERS_CLAIMS_LOG`` names a file, every claim appends a JSON line to it
(``tools/run_notebooks.py`` uses this to report the smallest margin per notebook).
"""

import json
import math
import os
from collections.abc import Sequence

import torch

__all__ = ["ClaimFailed", "Margin", "claim", "above", "below", "beats", "no_clear_difference", "spread"]


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


def _log(statement: str, margin: float | None, holds: bool):
    path = os.environ.get("HELPERS_CLAIMS_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"claim": statement, "margin": margin, "holds": holds}) + "\n")


def claim(statement: str, holds: bool, evidence: str = "", *, margin: float | None = None) -> float | None:
    """Print ``✓ statement`` when ``holds``; raise :class:`ClaimFailed` with ``evidence`` otherwise.

    Args:
        statement: the claim in words, as the prose makes it. It is what strict nbval compares,
            so it must not contain run-dependent numbers.
        holds: whether the evidence supports it.
        evidence: the numbers behind it, shown only when it fails.
        margin: how far the evidence is from failing (recorded, never printed).

    Returns the margin, as a ``Margin``: a float that displays nothing at the end of a cell.
    """
    holds = bool(holds)
    margin = None if margin is None else Margin(margin)
    _log(statement, margin, holds)
    if not holds:
        raise ClaimFailed(f"claim does not hold: {statement}\n  evidence: {evidence}")
    print(f"✓ {statement}")
    return margin


def above(statement: str, values, threshold: float) -> float:
    """Claim that every value (every seed) is above ``threshold``. Returns min(values) - threshold."""
    values = _values(values)
    margin = min(values) - threshold
    return claim(statement, margin > 0, f"values {_fmt(values)}, threshold {threshold:.4g}", margin=margin)


def below(statement: str, values, threshold: float) -> float:
    """Claim that every value (every seed) is below ``threshold``. Returns threshold - max(values)."""
    values = _values(values)
    margin = threshold - max(values)
    return claim(statement, margin > 0, f"values {_fmt(values)}, threshold {threshold:.4g}", margin=margin)


def beats(statement: str, winner, loser, *, by: float = 0.0, paired: bool = False) -> float:
    """Claim that ``winner`` is larger than ``loser`` by more than ``by`` on every seed.

    Unpaired (the default), the worst winner seed must beat the best loser seed:
    ``min(winner) - max(loser) > by``. With ``paired=True`` (the two lists come from the same
    seeds, data and budget), each seed's difference must exceed ``by``. For "lower is better"
    quantities (a loss), pass the negated values or swap the arguments.

    Returns the margin: the smallest gap minus ``by``.
    """
    winner, loser = _values(winner, "winner"), _values(loser, "loser")
    if paired:
        if len(winner) != len(loser):
            raise ValueError(f"paired claims need one value per seed on both sides, got {len(winner)} and "
                             f"{len(loser)}")
        gap = min(w - v for w, v in zip(winner, loser, strict=True))
    else:
        gap = min(winner) - max(loser)
    margin = gap - by
    return claim(statement, margin > 0, f"winner {_fmt(winner)}, loser {_fmt(loser)}, required gap {by:.4g}",
                 margin=margin)


def no_clear_difference(statement: str, a, b) -> float:
    """Claim that the seed ranges of ``a`` and ``b`` overlap: no measurable difference at this budget.

    Returns the overlap (positive when the ranges overlap).
    """
    a, b = _values(a, "a"), _values(b, "b")
    overlap = min(max(a), max(b)) - max(min(a), min(b))
    return claim(statement, overlap >= 0, f"a {_fmt(a)}, b {_fmt(b)}: the ranges do not overlap",
                 margin=overlap)


def spread(values, digits: int = 3, *, count: bool = True) -> str:
    """``"mean (min–max, n seeds)"`` for showing a per-seed result to the reader.

    ``count=False`` leaves out ``", n seeds"``, for tables whose header says it once.
    """
    values = _values(values)
    mean = sum(values) / len(values)
    seeds = f", {len(values)} seeds" if count else ""
    return f"{mean:.{digits}f} ({min(values):.{digits}f}–{max(values):.{digits}f}{seeds})"
