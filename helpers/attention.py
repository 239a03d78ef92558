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

__all__ = [
    "masked_softmax",
    "scaled_dot_product_attention",
    "causal_mask",
    "sliding_window_mask",
    "padding_mask",
    "check_mask",
    "MultiHeadAttention",
]


# --------------------------------------------------------------------------------------------
# Checks at the boundary: errors a learner can act on
# --------------------------------------------------------------------------------------------


def _shape(t: torch.Tensor) -> tuple:
    return tuple(t.shape)


def check_mask(mask, target_shape, name="mask"):
    """Raise unless ``mask`` is a bool tensor broadcastable to ``target_shape``."""
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"{name} must be a torch.bool tensor (True = may attend), got {type(mask).__name__}")
    if mask.dtype != torch.bool:
        raise TypeError(
            f"{name} must be a bool tensor where True means 'may attend', got dtype {mask.dtype}; "
            "for a 0/1 tensor use mask.bool(), for PyTorch's key_padding_mask use ~key_padding_mask"
        )
    try:
        shape = torch.broadcast_shapes(mask.shape, target_shape)
    except RuntimeError:
        shape = None
    if shape != torch.Size(target_shape):
        raise ValueError(
            f"{name} of shape {_shape(mask)} does not broadcast to the attention weights' shape "
            f"{tuple(target_shape)}"
        )


def _check_float(name, t):
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if not t.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {t.dtype}")


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
    _check_float("scores", scores)
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


def causal_mask(num_queries: int, num_keys: int | None = None, device=None) -> torch.Tensor:
    """Bool mask ``(queries, keys)`` where query ``i`` may attend to keys ``0..i``.

    Aligned top-left as in PyTorch: query ``i`` sees key ``j`` exactly when ``j <= i``, also when
    ``num_keys != num_queries``.
    """
    num_keys = num_queries if num_keys is None else num_keys
    return torch.ones(num_queries, num_keys, dtype=torch.bool, device=device).tril()


def sliding_window_mask(num_queries: int, num_keys: int | None = None, window: int = 1, device=None) -> torch.Tensor:
    """Bool mask ``(queries, keys)``: query ``i`` may attend to the ``window`` keys ``i - window + 1 .. i``.

    A causal window: True where ``0 <= i - j < window``, the query's own position included, aligned
    top-left like ``causal_mask``. ``window >= num_keys`` gives ``causal_mask`` itself.
    """
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        raise ValueError(f"window must be a positive int (keys each query may see, itself included), got {window!r}")
    causal = causal_mask(num_queries, num_keys, device=device)
    # tril(-window) keeps the keys at least `window` positions back: the ones the window drops.
    return causal & ~causal.tril(-window)


def padding_mask(lengths: torch.Tensor, max_length: int | None = None) -> torch.Tensor:
    """Bool mask ``(batch, max_length)``: True at the real tokens of each padded sequence.

    To use it as an attention mask over keys, give it room for the heads and queries:
    ``padding_mask(lengths)[:, None, None, :]`` broadcasts to ``(batch, heads, queries, keys)``.
    This is the opposite of PyTorch's ``key_padding_mask``, where True marks the padding.
    """
    lengths = torch.as_tensor(lengths)
    if lengths.dim() != 1:
        raise ValueError(f"lengths must be 1-D (batch,), got shape {_shape(lengths)}")
    max_length = int(lengths.max()) if max_length is None else max_length
    return torch.arange(max_length, device=lengths.device) < lengths[:, None]


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

    Returns:
        ``output`` of shape ``(..., Lq, dv)`` and the ``weights`` it used, ``(..., Lq, Lk)``
        (``(..., H, Lq, Lk)`` with ``enable_gqa``; after dropout, as
        ``torch.nn.MultiheadAttention`` returns them).
    """
    for name, t in (("query", query), ("key", key), ("value", value)):
        _check_float(name, t)
        if t.dim() < 2:
            raise ValueError(f"{name} needs at least 2 dimensions (..., length, features), got shape {_shape(t)}")
    if enable_gqa:
        key, value = _share_kv_heads(query, key, value)
    if not (query.dtype == key.dtype == value.dtype):
        raise TypeError(f"query, key and value must share a dtype, got {query.dtype}, {key.dtype}, {value.dtype}")
    if query.shape[-1] != key.shape[-1]:
        raise ValueError(
            f"query and key must have the same number of features to be compared: "
            f"shapes query {_shape(query)}, key {_shape(key)}"
        )
    if key.shape[-2] != value.shape[-2]:
        raise ValueError(
            f"key and value must have the same length (one value per key): "
            f"shapes key {_shape(key)}, value {_shape(value)}"
        )
    try:
        batch = torch.broadcast_shapes(query.shape[:-2], key.shape[:-2], value.shape[:-2])
    except RuntimeError:
        raise ValueError(
            f"the leading (batch) dimensions do not broadcast: shapes query {_shape(query)}, "
            f"key {_shape(key)}, value {_shape(value)}"
        ) from None
    num_queries, num_keys = query.shape[-2], key.shape[-2]
    if mask is not None:
        check_mask(mask, (*batch, num_queries, num_keys))
    if causal:
        future = causal_mask(num_queries, num_keys, device=query.device)
        mask = future if mask is None else mask & future

    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else scale
    # Scaling the query before the product (not the scores after) keeps float16 scores in range.
    scores = (query * scale) @ key.transpose(-2, -1)  # (..., Lq, Lk)
    weights = masked_softmax(scores, mask)  # (..., Lq, Lk)
    if dropout_p > 0.0:
        weights = F.dropout(weights, p=dropout_p)
    return weights @ value, weights  # (..., Lq, dv), (..., Lq, Lk)


def _share_kv_heads(query, key, value):
    """Repeat each of the G key/value heads for its H // G query heads: (..., G, L, d) -> (..., H, L, d)."""
    for name, t in (("query", query), ("key", key), ("value", value)):
        if t.dim() < 3:
            raise ValueError(f"enable_gqa needs a heads dimension: {name} must be (..., heads, length, features), "
                             f"got shape {_shape(t)}")
    num_heads, num_kv_heads = query.shape[-3], key.shape[-3]
    if value.shape[-3] != num_kv_heads:
        raise ValueError(f"key and value must have the same number of heads: shapes key {_shape(key)}, "
                         f"value {_shape(value)}")
    if num_heads % num_kv_heads != 0:
        raise ValueError(f"query has {num_heads} heads and key/value have {num_kv_heads}: the key/value heads must "
                         f"divide the query heads into equal groups (grouped-query attention)")
    group = num_heads // num_kv_heads
    # repeat_interleave keeps the groups contiguous: query heads 0..group-1 read key/value head 0, ...
    return key.repeat_interleave(group, dim=-3), value.repeat_interleave(group, dim=-3)


# --------------------------------------------------------------------------------------------
# Multi-head attention
# --------------------------------------------------------------------------------------------


class MultiHeadAttention(nn.Module):
    """Multi-head attention, batch-first, with the parameters of ``torch.nn.MultiheadAttention``.

    Each head attends in its own ``embed_dim // num_heads``-dimensional subspace; the heads'
    outputs are concatenated and mixed by an output projection.

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

    Shape:
        - query: ``(batch, Lq, embed_dim)``
        - key: ``(batch, Lk, kdim)``; value: ``(batch, Lk, vdim)``
        - mask: bool, broadcastable to ``(batch, heads, Lq, Lk)``; True = may attend. A padding
          mask over keys is ``padding_mask(lengths)[:, None, None, :]``.
        - output: ``(batch, Lq, embed_dim)``; weights: ``(batch, heads, Lq, Lk)``

    A query with no key to attend to gets zero weights; its output is then ``out_proj``'s bias
    (zero at initialisation), on both paths (``need_weights`` True or False) and on every
    PyTorch release. ``torch.nn.MultiheadAttention`` returns NaN for such a query on some of its
    paths and zeros on others, depending on ``need_weights``, training mode and the release
    (notebook 07, section 6, measures them).
    """

    def __init__(self, embed_dim: int, num_heads: int, *, bias: bool = True, kdim: int | None = None,
                 vdim: int | None = None, dropout: float = 0.0, num_kv_heads: int | None = None):
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
                mask: torch.Tensor | None = None, *, causal: bool = False, need_weights: bool = True):
        """Attend from ``query`` to ``key``/``value`` (both default to ``query``: self-attention).

        With ``need_weights=False`` the heads run through PyTorch's fused
        ``scaled_dot_product_attention`` and ``weights`` is None; the result is the same up to
        rounding. Returns ``(output, weights)``.
        """
        key = query if key is None else key
        value = key if value is None else value
        self._check_inputs(query, key, value)
        batch, num_queries, _ = query.shape
        num_keys = key.shape[1]
        if mask is not None:
            check_mask(mask, (batch, self.num_heads, num_queries, num_keys))

        # Project, then split the width into heads: (B, L, E) -> (B, L, H, hd) -> (B, H, L, hd);
        # keys and values have G = num_kv_heads heads: (B, G, Lk, hd).
        q = self.q_proj(query).view(batch, num_queries, self.num_heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(key).view(batch, num_keys, self.num_kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(value).view(batch, num_keys, self.num_kv_heads, self.head_dim).transpose(1, 2)
        dropout_p = self.dropout if self.training else 0.0
        grouped = self.num_kv_heads != self.num_heads

        if need_weights:
            out, weights = scaled_dot_product_attention(q, k, v, mask, causal=causal, dropout_p=dropout_p,
                                                        enable_gqa=grouped)
        else:
            weights = None
            if grouped:
                # Repeat each key/value head for its group of query heads: (B, G, Lk, hd) -> (B, H, Lk, hd).
                # PyTorch's fused kernel could share them itself (enable_gqa), but only from release 2.5.
                k, v = _share_kv_heads(q, k, v)
            if causal and mask is None:
                # is_causal lets the fused kernel skip the blocks above the diagonal instead of
                # reading an (Lq, Lk) mask; it aligns top-left, as causal_mask does.
                out = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, is_causal=True)
            elif mask is None:
                out = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p)
            else:
                # The fused kernel never forms the weights. What it returns for a query with no key
                # to attend to depends on the PyTorch release (zeros in recent ones, NaN in older
                # ones), so such rows are handled here: they attend to every key (finite numbers,
                # in the forward and the backward pass), and their output is then set to zero, as
                # the explicit path gives.
                if causal:
                    mask = mask & causal_mask(num_queries, num_keys, device=query.device)
                has_key = mask.any(dim=-1, keepdim=True)  # (..., Lq, 1): False for an empty row
                out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask | ~has_key, dropout_p=dropout_p)
                out = out.masked_fill(~has_key, 0.0)  # (B, H, Lq, hd)

        # Merge the heads back: (B, H, Lq, hd) -> (B, Lq, H, hd) -> (B, Lq, E)
        out = out.transpose(1, 2).reshape(batch, num_queries, self.embed_dim)  # (B, Lq, E)
        return self.out_proj(out), weights

    def _check_inputs(self, query, key, value):
        for name, t, width, what in (("query", query, self.embed_dim, "embed_dim"),
                                     ("key", key, self.kdim, "kdim"),
                                     ("value", value, self.vdim, "vdim")):
            _check_float(name, t)
            if t.dim() != 3:
                raise ValueError(f"{name} must be (batch, length, features), got shape {_shape(t)}")
            if t.shape[-1] != width:
                raise ValueError(
                    f"{name} has {t.shape[-1]} features but the module expects {width} ({what}): "
                    f"shapes query {_shape(query)}, key {_shape(key)}, value {_shape(value)}"
                )
        if not (query.shape[0] == key.shape[0] == value.shape[0]):
            raise ValueError(
                f"query, key and value must have the same batch size: shapes query {_shape(query)}, "
                f"key {_shape(key)}, value {_shape(value)}"
            )
        if key.shape[1] != value.shape[1]:
            raise ValueError(
                f"key and value must have the same length: shapes key {_shape(key)}, value {_shape(value)}"
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
        if module._qkv_same_embed_dim:
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
