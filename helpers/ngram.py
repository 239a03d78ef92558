"""Counting language models: n-grams with add-α or interpolated Kneser–Ney smoothing (notebook 14).

A character n-gram model predicts a token from the ``n - 1`` tokens before it by counting, in
the training items, how often each token followed that context. It is the baseline a neural
language model must beat: if a table of counts does as well, the network has learned nothing
the counts did not already know.

Items are sequences of token ids that start with a boundary token (``CharVocab.encode``:
``.smith.``). Every token after the first is a target; its context is the up to ``n - 1`` tokens
before it *within the item* (shorter at the start of an item: the first letter's context is the
opening boundary alone, which only ever stands there, so no padding is needed).

Two smoothings, both with one number to choose on dev:

- **add-α** (Lidstone): ``p(c | h) = (count(h c) + α) / (count(h) + α V)``, with ``V`` the
  number of possible targets. A context never seen in training gives the uniform distribution.
- **interpolated Kneser–Ney** (Chen and Goodman 1998, with one discount ``D`` per order): every
  seen count is lowered by ``D`` and the mass freed goes to the next shorter context,
  ``p(c | h) = max(count(h c) - D, 0) / count(h) + D · N(h ·) / count(h) · p(c | h')``, where
  ``N(h ·)`` is the number of distinct tokens seen after ``h`` and ``h'`` drops ``h``'s oldest
  token. The shorter contexts count *continuations* (in how many distinct contexts ``h' c``
  appeared) instead of occurrences, and the empty context is interpolated with the uniform
  distribution, so no target has probability zero.
"""

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence

__all__ = ["NGram"]


class NGram:
    """A character n-gram model of items (token-id sequences), counted once, smoothed on request.

    Args:
        items: training items, each a sequence of ids starting with the boundary token.
        order: ``n``: the model conditions on up to ``n - 1`` previous tokens (2 = bigram). Every
            shorter order is counted too (``use`` switches to one).
        targets: the ids a target can take (for a ``CharVocab``: every id but ``<pad>``).
        smoothing: ``"add"`` (add-α) or ``"kn"`` (interpolated Kneser–Ney).
        strength: α for add-α (> 0), or the discount ``D`` for Kneser–Ney (0 < D < 1).

    ``bits(items)`` is the mean of ``-log2 p(target | context)`` over every target of ``items``:
    bits per character, as the notebooks score the neural models.
    """

    def __init__(self, items: Iterable[Sequence[int]], order: int, targets: Iterable[int], *,
                 smoothing: str = "kn", strength: float = 0.75):
        if not isinstance(order, int) or order < 1:
            raise ValueError(f"order must be a positive integer (1 = unigram, 2 = bigram), got {order!r}")
        self.targets = sorted(set(targets))
        if not self.targets:
            raise ValueError("targets must name at least one token id")
        # counts[k][context] = Counter(next token) for contexts of k tokens (k = 0 .. order - 1).
        self.counts = [defaultdict(Counter) for _ in range(order)]
        for item in items:
            item = list(item)
            for t in range(1, len(item)):
                if item[t] not in self.targets:
                    raise ValueError(f"token {item[t]} at position {t} of item {item} is not a target id")
                for k in range(min(order - 1, t) + 1):
                    self.counts[k][tuple(item[t - k:t])][item[t]] += 1
        # Kneser–Ney's continuation counts: for contexts shorter than order - 1, in how many distinct
        # one-token-longer contexts did (context, c) appear?
        self.continuations = [defaultdict(Counter) for _ in range(order)]
        for k in range(1, order):
            for context, following in self.counts[k].items():
                for c in following:
                    self.continuations[k - 1][context[1:]][c] += 1
        self.max_order = order
        self.use(order, smoothing, strength)

    def use(self, order: int, smoothing: str, strength: float) -> "NGram":
        """Score as an ``order``-gram (at most the order counted) with this smoothing; returns self.

        Counting once at the largest order and then calling ``use`` for each setting is how a
        ladder of orders and smoothings is chosen on dev without counting again.
        """
        if not isinstance(order, int) or not 1 <= order <= self.max_order:
            raise ValueError(f"order must be between 1 and the order counted ({self.max_order}), got {order!r}")
        if smoothing not in ("add", "kn"):
            raise ValueError(f"smoothing must be 'add' (add-alpha) or 'kn' (Kneser-Ney), got {smoothing!r}")
        if smoothing == "add" and not strength > 0:
            raise ValueError(f"add-alpha needs alpha > 0, got {strength}")
        if smoothing == "kn" and not 0 < strength < 1:
            raise ValueError(f"Kneser-Ney needs a discount 0 < D < 1, got {strength}")
        self.order, self.smoothing, self.strength = order, smoothing, strength
        self._cache = {}
        return self

    def __repr__(self) -> str:
        kind = f"add-{self.strength:g}" if self.smoothing == "add" else f"Kneser-Ney D={self.strength:g}"
        return f"NGram(order={self.order}, {kind}, {len(self.targets)} targets)"

    def prob(self, context: Sequence[int], token: int) -> float:
        """``p(token | context)``; only the last ``order - 1`` tokens of ``context`` are used."""
        context = tuple(context)[len(context) - min(len(context), self.order - 1):]
        return self._distribution(context).get(token, 0.0)

    def _distribution(self, context: tuple) -> dict:
        if context in self._cache:
            return self._cache[context]
        if self.smoothing == "add":
            following = self.counts[len(context)].get(context, {})
            total = sum(following.values()) + self.strength * len(self.targets)
            dist = {c: (following.get(c, 0) + self.strength) / total for c in self.targets}
        else:
            dist = self._kneser_ney(context, top=True)
        self._cache[context] = dist
        return dist

    def _kneser_ney(self, context: tuple, top: bool) -> dict:
        if context is None:  # below the empty context: uniform
            return {c: 1.0 / len(self.targets) for c in self.targets}
        if not top and (context, False) in self._cache:
            return self._cache[context, False]
        table = self.counts if top else self.continuations
        following = table[len(context)].get(context)
        lower = self._kneser_ney(context[1:] if context else None, top=False)
        if following:
            total, discount = sum(following.values()), self.strength
            backoff = discount * len(following) / total
            lower = {c: max(following.get(c, 0) - discount, 0.0) / total + backoff * lower[c] for c in self.targets}
        if not top:
            self._cache[context, False] = lower
        return lower  # a context never seen gives all its weight to the shorter one

    def bits(self, items: Iterable[Sequence[int]]) -> float:
        """Bits per character: mean ``-log2 p`` over every target of ``items``."""
        total, count = 0.0, 0
        for item in items:
            item = list(item)
            for t in range(1, len(item)):
                context = tuple(item[max(0, t - self.order + 1):t])
                p = self._distribution(context).get(item[t], 0.0)
                if p <= 0.0:
                    raise ValueError(f"token {item[t]} is not a target id (probability 0)")
                total -= math.log2(p)
                count += 1
        if count == 0:
            raise ValueError("bits needs at least one item with a target")
        return total / count
