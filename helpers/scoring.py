"""How a query scores a key: every scoring function of the standard taxonomy, one interface (notebook 02).

A scoring function turns a query and a set of keys into one number per (query, key) pair; a
softmax over the keys turns those numbers into attention weights (``helpers.attention``). All
modules here share one interface::

    scores = score(query, key)    # query (batch, Lq, dq), key (batch, Lk, dk) -> (batch, Lq, Lk)

The taxonomy, from the papers that named it:

- ``CosineScore``: content-based, cosine similarity times a key strength (Neural Turing Machines).
- ``AdditiveScore``: ``v . tanh(W_q q + W_k k)`` (Bahdanau et al.; Luong's "concat" is the same
  function with ``[W_q W_k]`` stored as one matrix, so ``ConcatScore`` is an alias).
- ``LocationScore``: ``W q`` gives one score per key *position*, from the query alone (Luong).
- ``GeneralScore``: the bilinear form ``q . W k`` (Luong "general").
- ``DotScore``: ``q . k`` (Luong "dot").
- ``ScaledDotScore``: ``q . k / sqrt(d)`` (Vaswani et al.), the one every Transformer uses.

``attend`` combines any of them with a mask and a value tensor; ``window_mask`` builds the mask
of local (windowed) attention; ``count_multiply_adds`` measures a module's cost.
Masks follow the package convention (``helpers.attention``): bool, True = may attend.
"""

import math

import torch
from torch import nn

from helpers.attention import masked_softmax
from helpers.checks import shape_of

__all__ = [
    "Score",
    "CosineScore",
    "AdditiveScore",
    "ConcatScore",
    "LocationScore",
    "GeneralScore",
    "DotScore",
    "ScaledDotScore",
    "attend",
    "window_mask",
    "count_multiply_adds",
]


class Score(nn.Module):
    """Base class: checks the inputs, then calls ``score(query, key)``.

    Args:
        query_dim: features per query (``None``: any).
        key_dim: features per key (``None``: any).

    Shape:
        - query: ``(batch, Lq, query_dim)``
        - key: ``(batch, Lk, key_dim)``
        - output: scores ``(batch, Lq, Lk)``, one unnormalised number per (query, key) pair.
    """

    def __init__(self, query_dim: int | None = None, key_dim: int | None = None):
        super().__init__()
        self.query_dim = query_dim
        self.key_dim = key_dim

    def forward(self, query: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
        self._check(query, key)
        return self.score(query, key)

    def score(self, query, key):  # pragma: no cover - every subclass overrides it
        raise NotImplementedError

    def _check(self, query, key):
        for name, t, width, what in (("query", query, self.query_dim, "query_dim"),
                                     ("key", key, self.key_dim, "key_dim")):
            if not isinstance(t, torch.Tensor):
                raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
            if not t.is_floating_point():
                raise TypeError(f"{name} must be a floating-point tensor, got dtype {t.dtype}")
            if t.dim() != 3:
                raise ValueError(f"{name} must be (batch, length, features), got shape {shape_of(t)}")
            if width is not None and t.shape[-1] != width:
                raise ValueError(
                    f"{name} has {t.shape[-1]} features but {type(self).__name__} expects {width} ({what}): "
                    f"shapes query {shape_of(query)}, key {shape_of(key)}"
                )
        if query.shape[0] != key.shape[0]:
            raise ValueError(f"query and key must have the same batch size: shapes query {shape_of(query)}, "
                             f"key {shape_of(key)}")


def _check_same_width(module, query, key):
    if query.shape[-1] != key.shape[-1]:
        raise ValueError(
            f"{type(module).__name__} compares query and key feature by feature, so they need the same "
            f"number of features: shapes query {shape_of(query)}, key {shape_of(key)}"
        )


class CosineScore(Score):
    """Content-based scoring: ``strength * cos(query, key)`` (Neural Turing Machines).

    The cosine ignores the vectors' lengths, so scores lie in ``[-strength, strength]``; the key
    strength (NTM's beta) sets how sharp the softmax can get. No parameters.
    """

    def __init__(self, strength: float = 1.0, eps: float = 1e-8):
        super().__init__()
        self.strength = strength
        self.eps = eps

    def score(self, query, key):
        _check_same_width(self, query, key)
        query = query / query.norm(dim=-1, keepdim=True).clamp_min(self.eps)
        key = key / key.norm(dim=-1, keepdim=True).clamp_min(self.eps)
        return self.strength * (query @ key.transpose(-2, -1))  # (B, Lq, Lk)


class AdditiveScore(Score):
    """Additive scoring ``v . tanh(W_q query + W_k key)`` (Bahdanau et al., 2015).

    A one-hidden-layer network scores each pair; query and key may have different widths.

    Args:
        query_dim, key_dim: features per query and per key.
        hidden_dim: width of the hidden layer (the length of ``v``).
    """

    def __init__(self, query_dim: int, key_dim: int, hidden_dim: int):
        super().__init__(query_dim, key_dim)
        self.query_proj = nn.Linear(query_dim, hidden_dim, bias=False)
        self.key_proj = nn.Linear(key_dim, hidden_dim, bias=False)
        self.v = nn.Linear(hidden_dim, 1, bias=False)

    def forward(self, query: torch.Tensor, key: torch.Tensor, projected_key: torch.Tensor | None = None):
        """Scores ``(batch, Lq, Lk)``. A decoder that scores the same keys at every step passes
        ``projected_key = self.project_keys(key)``, computed once, to skip the keys' projection."""
        self._check(query, key)
        projected_key = self.project_keys(key) if projected_key is None else projected_key
        # Project once per query and once per key, then add every pair by broadcasting.
        hidden = self.query_proj(query)[:, :, None, :] + projected_key[:, None, :, :]  # (B, Lq, Lk, h)
        return self.v(torch.tanh(hidden)).squeeze(-1)  # (B, Lq, Lk)

    def project_keys(self, key: torch.Tensor) -> torch.Tensor:
        """``W_k key``: ``(batch, Lk, key_dim)`` -> ``(batch, Lk, hidden_dim)``."""
        return self.key_proj(key)


ConcatScore = AdditiveScore
"""Luong's "concat" score ``v . tanh(W [query; key])``: ``W [q; k] = W_q q + W_k k``, so it is
``AdditiveScore``."""


class LocationScore(Score):
    """Location-based scoring ``W query`` (Luong et al., 2015): where to look, from the query alone.

    The keys' contents are ignored; only their number ``Lk`` matters, and it may not exceed
    ``max_keys`` (one output row of ``W`` per key position).
    """

    def __init__(self, query_dim: int, max_keys: int):
        super().__init__(query_dim, None)
        self.max_keys = max_keys
        self.proj = nn.Linear(query_dim, max_keys, bias=False)

    def score(self, query, key):
        if key.shape[1] > self.max_keys:
            raise ValueError(f"LocationScore has one score per key position up to max_keys={self.max_keys}, "
                             f"got {key.shape[1]} keys: shapes query {shape_of(query)}, key {shape_of(key)}")
        return self.proj(query)[:, :, : key.shape[1]]  # (B, Lq, Lk)


class GeneralScore(Score):
    """Bilinear scoring ``query . W key`` (Luong's "general"); query and key may differ in width."""

    def __init__(self, query_dim: int, key_dim: int):
        super().__init__(query_dim, key_dim)
        self.proj = nn.Linear(key_dim, query_dim, bias=False)

    def forward(self, query: torch.Tensor, key: torch.Tensor, projected_key: torch.Tensor | None = None):
        """Scores ``(batch, Lq, Lk)``; ``projected_key = self.project_keys(key)`` may be passed in,
        computed once, when the same keys are scored again and again."""
        self._check(query, key)
        projected_key = self.project_keys(key) if projected_key is None else projected_key
        return query @ projected_key.transpose(-2, -1)  # (B, Lq, Lk)

    def project_keys(self, key: torch.Tensor) -> torch.Tensor:
        """``W key``: ``(batch, Lk, key_dim)`` -> ``(batch, Lk, query_dim)``."""
        return self.proj(key)


class DotScore(Score):
    """Dot-product scoring ``query . key`` (Luong's "dot"). No parameters."""

    def score(self, query, key):
        _check_same_width(self, query, key)
        return query @ key.transpose(-2, -1)  # (B, Lq, Lk)


class ScaledDotScore(Score):
    """Scaled dot-product scoring ``query . key / sqrt(d)`` (Vaswani et al., 2017). No parameters.

    Dividing by ``sqrt(d)`` keeps the scores' standard deviation near 1 whatever the width ``d``
    when the entries of query and key are independent with unit variance (notebook 02 measures it).
    """

    def score(self, query, key):
        _check_same_width(self, query, key)
        return query @ key.transpose(-2, -1) / math.sqrt(query.shape[-1])  # (B, Lq, Lk)


def attend(score: nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
           mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Attention with any scoring function: ``softmax(score(query, key)) @ value``.

    Args:
        score: a scoring module from this file.
        query: ``(batch, Lq, dq)``; key: ``(batch, Lk, dk)``; value: ``(batch, Lk, dv)``.
        mask: bool, broadcastable to ``(batch, Lq, Lk)``; True = may attend.

    Returns:
        ``output`` ``(batch, Lq, dv)`` and ``weights`` ``(batch, Lq, Lk)``.
    """
    if not isinstance(value, torch.Tensor) or value.dim() != 3 or value.shape[:2] != key.shape[:2]:
        got = shape_of(value) if isinstance(value, torch.Tensor) else type(value).__name__
        raise ValueError(f"value must be (batch, Lk, dv) with the batch and length of key: "
                         f"shapes key {shape_of(key)}, value {got}")
    weights = masked_softmax(score(query, key), mask)  # (B, Lq, Lk)
    return weights @ value, weights  # (B, Lq, dv), (B, Lq, Lk)


def window_mask(num_queries: int, num_keys: int, window: int, centers: torch.Tensor | None = None,
                device=None) -> torch.Tensor:
    """Bool mask ``(queries, keys)`` of local attention: query ``i`` sees keys within ``window`` of its centre.

    Args:
        window: half-width; a query sees ``2 * window + 1`` keys (fewer at the edges).
        centers: ``(queries,)`` key position each query is centred on (Luong's ``p_t``), real-valued
            for local-p; default ``i`` for query ``i`` (local-m, monotonic alignment). Local-p also
            multiplies the weights by a Gaussian around ``p_t``: that is not part of the mask.
    """
    if window < 0:
        raise ValueError(f"window must be >= 0, got {window}")
    if centers is None:
        centers = torch.arange(num_queries, device=device)
    centers = torch.as_tensor(centers, device=device)
    if centers.shape != (num_queries,):
        raise ValueError(f"centers must have shape ({num_queries},), got {shape_of(centers)}")
    keys = torch.arange(num_keys, device=centers.device)
    return (keys[None, :] - centers[:, None]).abs() <= window  # (Lq, Lk)


def count_multiply_adds(module: nn.Module, *inputs) -> int:
    """Multiply-adds of the matrix products in ``module(*inputs)``, counted by PyTorch.

    Uses ``torch.utils.flop_counter.FlopCounterMode`` (which counts 2 FLOPs per multiply-add in
    matmuls and linear layers); elementwise work (tanh, norms, the softmax) is not included.
    """
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        module(*inputs)
    return counter.get_total_flops() // 2
