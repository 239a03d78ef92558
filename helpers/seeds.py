"""Every seed the series uses, in one place, so that a claim can be tried on seeds nobody chose.

A notebook's conclusions must hold for the seeds it was written against *and* for seeds that
nobody looked at before writing it. So no notebook and no helper turns an integer into random
numbers by itself. They ask this module:

- :func:`seed` maps the series' integer to the one actually used;
- :func:`manual_seed` seeds PyTorch's (and NumPy's) global generators, for model initialisation;
- :func:`generator` returns a seeded ``torch.Generator``, for data and batches drawn in a notebook;
- :func:`rng` returns a seeded ``random.Random``, for the synthetic data sets built in Python.

By default :func:`seed` is the identity, and the notebooks' committed outputs come from these
seeds. Set the environment variable ``HELPERS_SEED_OFFSET`` to an integer ``k`` and every seed
``n`` becomes ``n + 10_000 * k``: model initialisation, batch order, synthetic data, sampled
streams and the generators made in notebooks all move together, and nothing else changes. The
seeds a notebook uses are small integers (0, 1, 2, ``100 + s``, ``1000 + step`` …), all far below
10,000, so the seeds of two offsets never coincide. ``make test-seeds`` runs every notebook with
an offset and checks that every cell runs and every claim still holds
(``tools/run_notebooks.py --check --seed-offset k``).
"""

import os
import random

import numpy as np
import torch

__all__ = ["OFFSET_VARIABLE", "STRIDE", "offset", "seed", "manual_seed", "generator", "rng"]

OFFSET_VARIABLE = "HELPERS_SEED_OFFSET"
STRIDE = 10_000  # every seed the series writes is below this, so offsets never share a seed


def offset() -> int:
    """The seed offset ``k`` from ``HELPERS_SEED_OFFSET`` (0 when unset)."""
    text = os.environ.get(OFFSET_VARIABLE, "").strip()
    if not text:
        return 0
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{OFFSET_VARIABLE} must be an integer, got {text!r}") from None


def seed(n: int) -> int:
    """The seed used for the series' seed ``n``: ``n + 10_000 * offset()``.

    Raises ``TypeError`` for a non-integer and ``ValueError`` for a negative ``n``.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"a seed must be an int, got {type(n).__name__} {n!r}")
    if n < 0:
        raise ValueError(f"a seed must be >= 0, got {n}")
    return int(n) + STRIDE * offset()


def manual_seed(n: int) -> int:
    """Seed PyTorch's and NumPy's global generators with ``seed(n)``; return that seed.

    Use it before building a model whose initial weights must be reproducible.
    """
    used = seed(n)
    torch.manual_seed(used)
    np.random.seed(used % 2**32)
    return used


def generator(n: int, device=None) -> torch.Generator:
    """A ``torch.Generator`` on ``device`` (default CPU) seeded with ``seed(n)``."""
    return torch.Generator(device=device if device is not None else "cpu").manual_seed(seed(n))


def rng(n: int) -> random.Random:
    """A ``random.Random`` seeded with ``seed(n)`` (never Python's global generator)."""
    return random.Random(seed(n))
