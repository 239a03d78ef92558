"""Small synthetic sequence tasks: each one needs a specific thing from attention (notebooks 06, 07, 09).

Every task is a plain function ``task(num_examples, length, *, ..., generator=None)`` that returns
``(tokens, targets)`` as integer tensors, drawn fresh on each call. They are batch samplers,
called once per training step, so they take a ``torch.Generator`` that the caller seeds once and
that advances with every batch; a fixed data set, such as ``first_word_pairs``, takes a ``seed``
(the rule of the whole package). Nothing is downloaded; a batch takes microseconds.

- ``order_task``: one label per sequence, "does marker A come before marker B?" -- needs order.
- ``two_lookups_task``: one label per position that needs two different lookups at once -- a job
  for two heads.
- ``first_word_pairs``: remember the first word across distractors (notebook 09's long-range
  probe), as string pairs in ``helpers.data``'s translation format.
"""


import torch

from helpers import seeds
from helpers.data import DIGIT_WORDS

__all__ = ["IGNORE", "order_task", "two_lookups_task", "first_word_pairs"]

# Target value for positions that have no answer; ``torch.nn.functional.cross_entropy`` skips it.
IGNORE = -100


def _check(num_examples, length, minimum_length):
    if num_examples <= 0:
        raise ValueError(f"num_examples must be positive, got {num_examples}")
    if length < minimum_length:
        raise ValueError(f"this task needs sequences of at least {minimum_length} tokens, got length={length}")


def order_task(num_examples: int, length: int, *, vocab_size: int = 8, generator: torch.Generator | None = None):
    """Two markers among filler tokens; the label says whether marker A comes before marker B.

    Token 0 is marker A, token 1 is marker B, tokens ``2 .. vocab_size - 1`` are filler drawn
    uniformly. Each sequence holds exactly one A and one B at two distinct random positions, so
    half the labels are 1. The set of tokens is the same for both labels: a model that ignores
    order cannot beat 50%.

    Returns:
        ``tokens`` of shape ``(num_examples, length)`` and ``labels`` of shape ``(num_examples,)``,
        1 where A comes before B.
    """
    _check(num_examples, length, 2)
    if vocab_size < 3:
        raise ValueError(f"vocab_size must leave room for filler after the two markers, got {vocab_size}")
    tokens = torch.randint(2, vocab_size, (num_examples, length), generator=generator)
    # Two distinct positions per row: the first two columns of a random permutation.
    positions = torch.rand(num_examples, length, generator=generator).argsort(dim=1)[:, :2]  # (N, 2)
    rows = torch.arange(num_examples)
    tokens[rows, positions[:, 0]] = 0
    tokens[rows, positions[:, 1]] = 1
    labels = (positions[:, 0] < positions[:, 1]).long()
    return tokens, labels


def two_lookups_task(num_examples: int, length: int, *, vocab_size: int = 6,
                     generator: torch.Generator | None = None):
    """At each position, name the previous token and the one marked token of the sequence.

    Plain tokens are ``0 .. vocab_size - 1``; marked tokens are ``vocab_size .. 2 * vocab_size - 1``
    (plain token ``t`` marked is ``vocab_size + t``). Each sequence holds exactly one marked token,
    at a random position. The target at position ``i`` is the pair (``tokens[i-1]``, the marked
    token's plain value), encoded as one class ``tokens[i-1] * vocab_size + value``. One lookup goes
    by position (one step back), the other by content (the marked token, wherever it is): two kinds
    of attention pattern that different heads can take on. Position 0 has no previous token: its
    target is ``IGNORE``.

    Returns:
        ``tokens`` and ``targets``, both ``(num_examples, length)``. Tokens lie in
        ``0 .. 2 * vocab_size - 1``; targets in ``0 .. 2 * vocab_size**2 - 1`` or are ``IGNORE``.
    """
    _check(num_examples, length, 2)
    if vocab_size < 2:
        raise ValueError(f"vocab_size must be at least 2, got {vocab_size}")
    tokens = torch.randint(0, vocab_size, (num_examples, length), generator=generator)
    where = torch.randint(0, length, (num_examples,), generator=generator)
    rows = torch.arange(num_examples)
    value = tokens[rows, where]  # (N,) the plain value of the token that gets marked
    tokens[rows, where] = value + vocab_size
    targets = torch.full_like(tokens, IGNORE)
    targets[:, 1:] = tokens[:, :-1] * vocab_size + value[:, None]
    return tokens, targets


# --------------------------------------------------------------------------------------------
# Notebook 09: a long-range probe, in the translation task's vocabulary
# --------------------------------------------------------------------------------------------


def first_word_pairs(num_examples: int, min_distance: int, max_distance: int, *,
                     seed: int = 0) -> list[tuple[str, str]]:
    """Remember the first word across a run of distractors (notebook 09's long-range probe).

    The source is a digit word followed by ``distance`` distractor digit words, with ``distance``
    uniform in ``[min_distance, max_distance]``; the target is the first word's digit alone::

        "seven one four four"  ->  "7"        (distance 3)

    Unlike the functions above, it returns pairs of strings in ``helpers.data``'s translation
    format, so the translation models, ``data.collate`` and ``train.exact_match`` take them
    unchanged; ``exact_match(model, pairs, by_length=True)`` reports accuracy by source length,
    which is ``distance + 1``. The same seed gives the same pairs on every machine.
    """
    if num_examples <= 0:
        raise ValueError(f"num_examples must be positive, got {num_examples}")
    if not 1 <= min_distance <= max_distance:
        raise ValueError(f"need 1 <= min_distance <= max_distance, got {min_distance}, {max_distance}")
    rng = seeds.rng(seed)
    pairs = []
    for _ in range(num_examples):
        digits = [rng.randrange(10) for _ in range(rng.randint(min_distance, max_distance) + 1)]
        pairs.append((" ".join(DIGIT_WORDS[d] for d in digits), str(digits[0])))
    return pairs


