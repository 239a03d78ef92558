"""Attention from first principles: masked softmax, scaled dot-product attention, multi-head attention.

Notebook 01 derives ``masked_softmax`` and ``scaled_dot_product_attention``; notebook 07 derives
``MultiHeadAttention``. Everything here is explicit matmuls and a softmax, so a reader can follow
each line; the only fused call is the optional fast path in ``MultiHeadAttention.forward``.

Conventions, stated once for the whole package
----------------------------------------------
Shapes: a query sequence has ``Lq`` positions, a key/value sequence ``Lk``. Attention weights
have shape ``(batch, heads, queries, keys)``, or ``(..., Lq, Lk)`` where the leading dimensions
are free. Modules are batch-first: ``(batch, length, features)``.

Masks: a mask is a ``torch.bool`` tensor, broadcastable to the weights, and **True means "this
query may attend to this key"**. A masked key gets a weight of exactly 0. A query row with no
key left to attend to gets all-zero weights (and so a zero output), never NaN, in the forward
and the backward pass.

PyTorch uses two conventions, and mixing them up gives a silently wrong answer:

- ``torch.nn.functional.scaled_dot_product_attention(attn_mask=bool)``: True = may attend (same
  as here).
- ``torch.nn.MultiheadAttention(key_padding_mask=..., attn_mask=bool)``: True = **may not**
  attend. Convert with ``~mask``.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from helpers.checks import check_attention_inputs, check_float, check_mask, check_positive_int, shape_of

__all__ = [
    "masked_softmax",
    "scaled_dot_product_attention",
    "causal_mask",
    "sliding_window_mask",
    "padding_mask",
    "key_mask",
    "split_heads",
    "merge_heads",
    "KVCache",
    "MultiHeadAttention",
]


# --------------------------------------------------------------------------------------------
# Softmax with a mask
# --------------------------------------------------------------------------------------------


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor | None = None, dim: int = -1) -> torch.Tensor:
    """Softmax of ``scores`` along ``dim`` over the positions where ``mask`` is True.

    Args:
        scores: any floating-point tensor, e.g. ``(batch, heads, queries, keys)``.
        mask: bool tensor broadcastable to ``scores``; True = may attend. ``None`` keeps all.
        dim: the dimension that sums to 1.

    Returns:
        Weights with the shape of ``scores``. Masked positions are exactly 0; a slice with no
        position kept is all zeros (not NaN), and so is its gradient.
    """
    check_float("scores", scores)
    if mask is not None:
        check_mask(mask, scores.shape)
        scores = scores.masked_fill(~mask, float("-inf"))
    # Subtracting the maximum leaves the softmax unchanged and keeps exp() from overflowing.
    # The maximum is a constant shift, so it needs no gradient; a row that is all -inf has
    # no finite maximum, and shifting it by 0 keeps exp(-inf) = 0 instead of NaN.
    row_max = scores.amax(dim=dim, keepdim=True).detach()
    row_max = torch.where(torch.isfinite(row_max), row_max, torch.zeros_like(row_max))
    exp = torch.exp(scores - row_max)
    total = exp.sum(dim=dim, keepdim=True)
    # An all-masked row sums to 0: divide by 1 instead, which leaves its zeros as they are.
    return exp / torch.where(total > 0, total, torch.ones_like(total))


# --------------------------------------------------------------------------------------------
# Masks
# --------------------------------------------------------------------------------------------


def causal_mask(num_queries: int, num_keys: int | None = None, *, offset: int = 0, device=None) -> torch.Tensor:
    """Bool mask ``(queries, keys)`` where query ``i`` may attend to keys ``0 .. i + offset``.

    The one causal mask of the package. Query ``i`` stands at position ``i + offset`` of the
    sequence the keys index, and sees every key up to and including its own position.

    - ``offset=0`` (default) aligns top-left, as PyTorch's ``is_causal`` does: query ``i`` sees
      key ``j`` exactly when ``j <= i``, also when ``num_keys != num_queries``.
    - ``offset=num_keys - num_queries`` aligns bottom-right: the queries are the *last*
      positions. That is cached decoding: ``T`` new tokens after ``past`` cached ones attend with
      ``causal_mask(T, past + T, offset=past)``.
    """
    num_keys = num_queries if num_keys is None else num_keys
    return torch.ones(num_queries, num_keys, dtype=torch.bool, device=device).tril(offset)


def sliding_window_mask(num_queries: int, num_keys: int | None = None, window: int = 1, *, offset: int = 0,
                        device=None) -> torch.Tensor:
    """Bool mask ``(queries, keys)``: query ``i`` may attend to the ``window`` keys ``p - window + 1 .. p``,
    where ``p = i + offset`` is its position.

    A causal window: True where ``0 <= p - j < window``, the query's own position included, aligned
    like ``causal_mask`` (top-left by default). ``window >= num_keys`` gives ``causal_mask`` itself.
    """
    check_positive_int("window", window, "keys each query may see, itself included")
    causal = causal_mask(num_queries, num_keys, offset=offset, device=device)
    # tril(offset - window) keeps the keys at least `window` positions back: the ones the window drops.
    return causal & ~causal.tril(offset - window)


def padding_mask(lengths: torch.Tensor, max_len: int | None = None) -> torch.Tensor:
    """Bool mask ``(batch, max_len)``: True at the real tokens of each right-padded sequence.

    This is the opposite of PyTorch's ``key_padding_mask``, where True marks the padding. As an
    attention mask over keys, use ``key_mask(lengths)``.
    """
    lengths = torch.as_tensor(lengths)
    if lengths.dim() != 1:
        raise ValueError(f"lengths must be 1-D (batch,), got shape {shape_of(lengths)}")
    max_len = int(lengths.max()) if max_len is None else max_len
    return torch.arange(max_len, device=lengths.device) < lengths[:, None]


def key_mask(lengths: torch.Tensor, num_keys: int | None = None) -> torch.Tensor:
    """Bool mask ``(batch, 1, 1, keys)``: every head and query may attend to the real keys only.

    ``padding_mask`` with room for the heads and the queries, so that it broadcasts to the
    weights ``(batch, heads, queries, keys)``.
    """
    return padding_mask(lengths, num_keys)[:, None, None, :]  # (B, 1, 1, Lk)


# --------------------------------------------------------------------------------------------
# Heads: split the width into heads and merge them back
# --------------------------------------------------------------------------------------------


def split_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """``(batch, length, num_heads * head_dim)`` -> ``(batch, num_heads, length, head_dim)``.

    Head ``h`` owns features ``h * head_dim .. (h + 1) * head_dim - 1`` of the width, as in
    ``torch.nn.MultiheadAttention``.
    """
    batch, length, width = x.shape
    if width % num_heads:
        raise ValueError(f"a width of {width} does not split into {num_heads} heads: shape {shape_of(x)}")
    return x.view(batch, length, num_heads, width // num_heads).transpose(1, 2)  # (B, H, L, hd)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """``(batch, num_heads, length, head_dim)`` -> ``(batch, length, num_heads * head_dim)``: ``split_heads`` undone."""
    batch, num_heads, length, head_dim = x.shape
    return x.transpose(1, 2).reshape(batch, length, num_heads * head_dim)  # (B, L, H * hd)


# --------------------------------------------------------------------------------------------
# Scaled dot-product attention
# --------------------------------------------------------------------------------------------


def scaled_dot_product_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    causal: bool = False,
    scale: float | None = None,
    dropout_p: float = 0.0,
    enable_gqa: bool = False,
    bias: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """softmax(query @ key^T * scale) @ value, written out.

    Args:
        query: ``(..., Lq, d)``; with ``enable_gqa``, ``(..., H, Lq, d)``.
        key: ``(..., Lk, d)``; with ``enable_gqa``, ``(..., G, Lk, d)``.
        value: ``(..., Lk, dv)``; with ``enable_gqa``, ``(..., G, Lk, dv)``.
        mask: bool, broadcastable to ``(..., Lq, Lk)``; True = may attend.
        causal: if True, query ``i`` may not attend to keys ``j > i`` (top-left aligned, as in
            PyTorch). Combined with ``mask`` by logical and.
        scale: multiplies the scores; defaults to ``1 / sqrt(d)``.
        dropout_p: probability of zeroing a weight (training only: pass 0.0 at evaluation).
        enable_gqa: grouped key/value heads (GQA; MQA when ``G = 1``). The ``H`` query heads
            share the ``G`` key/value heads in groups of ``H // G``: query head ``h`` reads
            key/value head ``h // (H // G)``, as ``torch.nn.functional.scaled_dot_product_attention
            (..., enable_gqa=True)`` does. ``G`` must divide ``H``.
        bias: float, broadcastable to ``(..., Lq, Lk)``: added to the scores before the softmax
            (ALiBi's distance penalty, notebook 06). A float ``attn_mask`` in PyTorch's function.

    Returns:
        ``output`` of shape ``(..., Lq, dv)`` and the ``weights`` it used, ``(..., Lq, Lk)``
        (``(..., H, Lq, Lk)`` with ``enable_gqa``; after dropout, as
        ``torch.nn.MultiheadAttention`` returns them).
    """
    if enable_gqa:
        for name, t in (("query", query), ("key", key), ("value", value)):
            check_float(name, t)
        key, value = _share_kv_heads(query, key, value)
    batch = check_attention_inputs(query, key, value)
    num_queries, num_keys = query.shape[-2], key.shape[-2]
    if mask is not None:
        check_mask(mask, (*batch, num_queries, num_keys))
    if bias is not None:
        check_float("bias", bias)
        try:
            torch.broadcast_shapes(bias.shape, (*batch, num_queries, num_keys))
        except RuntimeError:
            raise ValueError(f"bias of shape {shape_of(bias)} does not broadcast to the scores' shape "
                             f"{(*batch, num_queries, num_keys)}") from None
    if causal:
        future = causal_mask(num_queries, num_keys, device=query.device)
        mask = future if mask is None else mask & future

    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else scale
    # Scaling the query before the product (not the scores after) keeps float16 scores in range.
    scores = (query * scale) @ key.transpose(-2, -1)  # (..., Lq, Lk)
    if bias is not None:
        scores = scores + bias.to(scores.dtype)
    weights = masked_softmax(scores, mask)  # (..., Lq, Lk)
    if dropout_p > 0.0:
        weights = F.dropout(weights, p=dropout_p)
    return weights @ value, weights  # (..., Lq, dv), (..., Lq, Lk)


def _share_kv_heads(query, key, value):
    """Repeat each of the G key/value heads for its H // G query heads: (..., G, L, d) -> (..., H, L, d)."""
    for name, t in (("query", query), ("key", key), ("value", value)):
        if t.dim() < 3:
            raise ValueError(f"enable_gqa needs a heads dimension: {name} must be (..., heads, length, features), "
                             f"got shape {shape_of(t)}")
    num_heads, num_kv_heads = query.shape[-3], key.shape[-3]
    if value.shape[-3] != num_kv_heads:
        raise ValueError(f"key and value must have the same number of heads: shapes key {shape_of(key)}, "
                         f"value {shape_of(value)}")
    if num_heads % num_kv_heads != 0:
        raise ValueError(f"query has {num_heads} heads and key/value have {num_kv_heads}: the key/value heads must "
                         f"divide the query heads into equal groups (grouped-query attention)")
    group = num_heads // num_kv_heads
    # repeat_interleave keeps the groups contiguous: query heads 0..group-1 read key/value head 0, ...
    return key.repeat_interleave(group, dim=-3), value.repeat_interleave(group, dim=-3)


# --------------------------------------------------------------------------------------------
# Multi-head attention
# --------------------------------------------------------------------------------------------


class KVCache:
    """The keys and values one attention layer keeps between decoding steps.

    Generating token ``t`` needs the keys and values of tokens ``0 .. t``. Without a cache every
    step recomputes them for the whole prefix; with one, each step projects only its new tokens
    and appends them here. ``MultiHeadAttention(..., cache=KVCache())`` fills it:

    - self-attention appends the new positions' keys/values at every call;
    - cross-attention (``key`` given) projects the encoder's output on the first call only and
      reuses it after, since that output does not change while decoding.

    Shape:
        - key: ``(batch, kv_heads, length, head_dim)``; value: ``(batch, kv_heads, length, head_dim)``.
          With grouped key/value heads (``num_kv_heads < num_heads``) the cache holds only the
          ``num_kv_heads`` heads: that is what grouping saves (notebook 13).
    """

    def __init__(self):
        self.key: torch.Tensor | None = None
        self.value: torch.Tensor | None = None

    @property
    def length(self) -> int:
        """Positions cached so far."""
        return 0 if self.key is None else self.key.shape[-2]

    @property
    def nbytes(self) -> int:
        """Bytes held by the cached keys and values."""
        if self.key is None:
            return 0
        return self.key.numel() * self.key.element_size() + self.value.numel() * self.value.element_size()

    def append(self, key: torch.Tensor, value: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Add new positions' ``(batch, kv_heads, new, head_dim)`` keys/values; return all of them."""
        if self.key is not None:
            key = torch.cat([self.key, key], dim=-2)  # (B, G, past + new, hd)
            value = torch.cat([self.value, value], dim=-2)  # (B, G, past + new, hd)
        self.key, self.value = key, value
        return key, value


class MultiHeadAttention(nn.Module):
    """Multi-head attention, batch-first, with the parameters of ``torch.nn.MultiheadAttention``.

    Each head attends in its own ``embed_dim // num_heads``-dimensional subspace; the heads'
    outputs are concatenated and mixed by an output projection. The one multi-head forward of
    the package: the Transformer layers (``helpers.transformer``), notebook 06's positional
    attention and the models of Part IV are built on it.

    Args:
        embed_dim: width of the queries and of the output.
        num_heads: number of heads; must divide ``embed_dim``.
        bias: add biases to the four projections.
        kdim, vdim: widths of the keys and values (default ``embed_dim``).
        dropout: dropout on the attention weights during training.
        num_kv_heads: key/value heads (default ``num_heads``: plain multi-head attention). Fewer
            key/value heads than query heads is grouped-query attention (GQA), one is multi-query
            attention (MQA): ``k_proj`` and ``v_proj`` then project to ``num_kv_heads * head_dim``
            features, and query head ``h`` reads key/value head ``h // (num_heads // num_kv_heads)``.
            Must divide ``num_heads``.
        rotary: rotate queries and keys by their positions (RoPE, ``helpers.positional.apply_rotary``)
            after the projections; ``head_dim`` must then be even.

    Shape:
        - query: ``(batch, Lq, embed_dim)``
        - key: ``(batch, Lk, kdim)``; value: ``(batch, Lk, vdim)``
        - mask: bool, broadcastable to ``(batch, heads, Lq, Lk)``; True = may attend. A padding
          mask over keys is ``key_mask(lengths)``.
        - bias: float, broadcastable to ``(batch, heads, Lq, Lk)``, added to the scores (ALiBi).
        - output: ``(batch, Lq, embed_dim)``; weights: ``(batch, heads, Lq, Lk)``

    Incremental decoding: pass ``cache=KVCache()`` and feed the sequence a few tokens at a time
    (usually one). With ``causal=True`` the new queries stand *after* the cached positions: the
    causal mask is aligned bottom-right (``causal_mask(..., offset=cache.length)``), and RoPE
    rotates them by their true positions. The outputs equal those of one call on the whole
    sequence (``tests/test_attention.py``).

    A query with no key to attend to gets zero weights; its output is then ``out_proj``'s bias
    (zero at initialisation), on both paths (``need_weights`` True or False) and on every
    PyTorch release. ``torch.nn.MultiheadAttention`` returns NaN for such a query on some of its
    paths and zeros on others, depending on ``need_weights``, training mode and the release
    (notebook 07, section 6, measures them).
    """

    def __init__(self, embed_dim: int, num_heads: int, *, bias: bool = True, kdim: int | None = None,
                 vdim: int | None = None, dropout: float = 0.0, num_kv_heads: int | None = None,
                 rotary: bool = False):
        super().__init__()
        if num_heads <= 0 or embed_dim % num_heads != 0:
            raise ValueError(
                f"embed_dim ({embed_dim}) must be divisible by num_heads ({num_heads}): "
                "each head gets embed_dim // num_heads features"
            )
        num_kv_heads = num_heads if num_kv_heads is None else num_kv_heads
        if num_kv_heads <= 0 or num_heads % num_kv_heads != 0:
            raise ValueError(
                f"num_kv_heads ({num_kv_heads}) must divide num_heads ({num_heads}): each key/value head "
                "serves an equal group of query heads"
            )
        if rotary and (embed_dim // num_heads) % 2:
            raise ValueError(f"RoPE rotates pairs of features and needs an even head_dim, got "
                             f"embed_dim // num_heads = {embed_dim // num_heads}")
        self.rotary = rotary
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.num_kv_heads = num_kv_heads
        self.head_dim = embed_dim // num_heads
        kv_width = num_kv_heads * self.head_dim
        self.kdim = embed_dim if kdim is None else kdim
        self.vdim = embed_dim if vdim is None else vdim
        self.dropout = dropout
        # Built without drawing any random numbers; _reset_parameters then draws exactly what
        # torch.nn.MultiheadAttention draws, in the same order.
        self.q_proj = nn.utils.skip_init(nn.Linear, embed_dim, embed_dim, bias=bias)
        self.k_proj = nn.utils.skip_init(nn.Linear, self.kdim, kv_width, bias=bias)
        self.v_proj = nn.utils.skip_init(nn.Linear, self.vdim, kv_width, bias=bias)
        self.out_proj = nn.utils.skip_init(nn.Linear, embed_dim, embed_dim, bias=bias)
        self._reset_parameters()

    def _reset_parameters(self):
        """The initialisation of ``torch.nn.MultiheadAttention``, number for number.

        PyTorch keeps the three input projections in one packed ``(3 * embed_dim, embed_dim)``
        weight and draws it with Xavier-uniform *as one matrix*: the bound is
        ``sqrt(6 / (embed_dim + 3 * embed_dim))``, smaller by ``sqrt(2)`` than Xavier on each
        ``embed_dim x embed_dim`` block. The output projection keeps ``nn.Linear``'s default,
        drawn first (PyTorch builds it before resetting the rest); every input and output bias
        starts at zero. With ``kdim``/``vdim`` set, PyTorch has three separate weights and
        draws each with Xavier. So after the same ``torch.manual_seed``, this module and
        PyTorch's start from the same numbers, and train the same way from scratch. (With fewer
        key/value heads, which PyTorch's module does not have, the packed weight is
        ``(embed_dim + 2 * num_kv_heads * head_dim, embed_dim)``, drawn the same way.)
        """
        self.out_proj.reset_parameters()  # nn.Linear's default: what PyTorch's out_proj draws when built
        with torch.no_grad():
            if self.kdim == self.embed_dim and self.vdim == self.embed_dim:
                widths = [self.q_proj.out_features, self.k_proj.out_features, self.v_proj.out_features]
                packed = torch.empty(sum(widths), self.embed_dim, device=self.q_proj.weight.device,
                                     dtype=self.q_proj.weight.dtype)
                nn.init.xavier_uniform_(packed)  # (3E, E) with as many key/value heads: PyTorch's in_proj_weight
                for proj, weight in zip((self.q_proj, self.k_proj, self.v_proj), packed.split(widths), strict=True):
                    proj.weight.copy_(weight)
            else:
                for proj in (self.q_proj, self.k_proj, self.v_proj):
                    nn.init.xavier_uniform_(proj.weight)
            for proj in (self.q_proj, self.k_proj, self.v_proj, self.out_proj):
                if proj.bias is not None:
                    nn.init.zeros_(proj.bias)

    def forward(self, query: torch.Tensor, key: torch.Tensor | None = None, value: torch.Tensor | None = None,
                mask: torch.Tensor | None = None, *, causal: bool = False, need_weights: bool = True,
                bias: torch.Tensor | None = None, cache: KVCache | None = None):
        """Attend from ``query`` to ``key``/``value`` (both default to ``query``: self-attention).

        With ``need_weights=False`` the heads run through PyTorch's fused
        ``scaled_dot_product_attention`` and ``weights`` is None; the result is the same up to
        rounding. With a ``cache`` (a ``KVCache``), see the class docstring. Returns
        ``(output, weights)``.
        """
        self_attention = key is None
        key = query if key is None else key
        value = key if value is None else value
        self._check_inputs(query, key, value)
        batch, num_queries, _ = query.shape
        past = 0 if cache is None or not self_attention else cache.length

        # Project, then split the width into heads: (B, L, E) -> (B, H, L, hd); keys and values
        # have G = num_kv_heads heads: (B, G, Lk, hd).
        q = split_heads(self.q_proj(query), self.num_heads)  # (B, H, Lq, hd)
        if cache is not None and not self_attention and cache.key is not None:
            k, v = cache.key, cache.value  # cross-attention: the encoder's output, projected on the first call
        else:
            k = split_heads(self.k_proj(key), self.num_kv_heads)  # (B, G, Lk, hd)
            v = split_heads(self.v_proj(value), self.num_kv_heads)  # (B, G, Lk, hd)
            if self.rotary:
                q, k = self._rotate(q, past), self._rotate(k, past)
            if cache is not None:
                k, v = cache.append(k, v)  # (B, G, past + Lk, hd)
        num_keys = k.shape[-2]
        if mask is not None:
            check_mask(mask, (batch, self.num_heads, num_queries, num_keys))
        # is_causal lets the fused kernel skip the blocks above the diagonal instead of reading an
        # (Lq, Lk) mask; it aligns top-left, so it serves only when nothing is cached before.
        plain_causal = causal and mask is None and bias is None and past == 0
        if causal:
            # Top-left without a cache; bottom-right with one: the new queries follow the cached keys.
            future = causal_mask(num_queries, num_keys, offset=past, device=query.device)
            mask = future if mask is None else mask & future
        dropout_p = self.dropout if self.training else 0.0
        grouped = self.num_kv_heads != self.num_heads

        if need_weights:
            out, weights = scaled_dot_product_attention(q, k, v, mask, dropout_p=dropout_p, enable_gqa=grouped,
                                                        bias=bias)
        else:
            weights = None
            out = self._fused(q, k, v, None if plain_causal else mask, bias, dropout_p, grouped, plain_causal)
        return self.out_proj(merge_heads(out)), weights  # (B, Lq, E), (B, H, Lq, Lk) or None

    def _rotate(self, x, past):
        from helpers.positional import apply_rotary  # RoPE is notebook 06's idea; positional imports this module

        positions = torch.arange(past, past + x.shape[-2], device=x.device)
        return apply_rotary(x, positions)

    @staticmethod
    def _fused(q, k, v, mask, bias, dropout_p, grouped, is_causal):
        """The heads through ``torch.nn.functional.scaled_dot_product_attention``: ``(B, H, Lq, hd)``."""
        if grouped:
            # Repeat each key/value head for its group of query heads: (B, G, Lk, hd) -> (B, H, Lk, hd).
            # PyTorch's fused kernel could share them itself (enable_gqa), but only from release 2.5.
            k, v = _share_kv_heads(q, k, v)
        if mask is None and bias is None:
            return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, is_causal=is_causal)
        if mask is None:
            return F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype), dropout_p=dropout_p)
        # The fused kernel never forms the weights. What it returns for a query with no key to
        # attend to depends on the PyTorch release (zeros in recent ones, NaN in older ones), so
        # such rows are handled here: they attend to every key (finite numbers, in the forward
        # and the backward pass), and their output is then set to zero, as the explicit path gives.
        has_key = mask.any(dim=-1, keepdim=True)  # (..., Lq, 1): False for an empty row
        allowed = mask | ~has_key
        if bias is not None:
            allowed = torch.zeros_like(bias, dtype=q.dtype).masked_fill(~allowed, float("-inf")) + bias.to(q.dtype)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, dropout_p=dropout_p)
        return out.masked_fill(~has_key, 0.0)  # (B, H, Lq, hd)

    def _check_inputs(self, query, key, value):
        for name, t, width, what in (("query", query, self.embed_dim, "embed_dim"),
                                     ("key", key, self.kdim, "kdim"),
                                     ("value", value, self.vdim, "vdim")):
            check_float(name, t)
            if t.dim() != 3:
                raise ValueError(f"{name} must be (batch, length, features), got shape {shape_of(t)}")
            if t.shape[-1] != width:
                raise ValueError(
                    f"{name} has {t.shape[-1]} features but the module expects {width} ({what}): "
                    f"shapes query {shape_of(query)}, key {shape_of(key)}, value {shape_of(value)}"
                )
        if not (query.shape[0] == key.shape[0] == value.shape[0]):
            raise ValueError(
                f"query, key and value must have the same batch size: shapes query {shape_of(query)}, "
                f"key {shape_of(key)}, value {shape_of(value)}"
            )
        if key.shape[1] != value.shape[1]:
            raise ValueError(
                f"key and value must have the same length: shapes key {shape_of(key)}, value {shape_of(value)}"
            )

    @classmethod
    def from_torch(cls, module: nn.MultiheadAttention) -> "MultiHeadAttention":
        """A ``MultiHeadAttention`` with the same parameters as a ``torch.nn.MultiheadAttention``.

        Works for packed (``in_proj_weight``) and separate (``kdim``/``vdim``) projections. The
        result is batch-first whatever ``module.batch_first`` says, and takes masks with
        True = may attend (the opposite of ``module``'s ``attn_mask``/``key_padding_mask``).
        """
        if not isinstance(module, nn.MultiheadAttention):
            raise TypeError(f"expected a torch.nn.MultiheadAttention, got {type(module).__name__}")
        if module.bias_k is not None or module.add_zero_attn:
            raise ValueError("add_bias_kv and add_zero_attn have no counterpart here")
        bias = module.in_proj_bias is not None
        new = cls(module.embed_dim, module.num_heads, bias=bias, kdim=module.kdim, vdim=module.vdim,
                  dropout=module.dropout)
        new = new.to(device=module.out_proj.weight.device, dtype=module.out_proj.weight.dtype)
        if module.in_proj_weight is not None:  # one packed (3E, E) weight when kdim = vdim = embed_dim
            q_w, k_w, v_w = module.in_proj_weight.chunk(3)
        else:
            q_w, k_w, v_w = module.q_proj_weight, module.k_proj_weight, module.v_proj_weight
        with torch.no_grad():
            for proj, weight in ((new.q_proj, q_w), (new.k_proj, k_w), (new.v_proj, v_w)):
                proj.weight.copy_(weight)
            if bias:
                for proj, b in zip((new.q_proj, new.k_proj, new.v_proj), module.in_proj_bias.chunk(3), strict=True):
                    proj.bias.copy_(b)
                new.out_proj.bias.copy_(module.out_proj.bias)
            new.out_proj.weight.copy_(module.out_proj.weight)
        return new
