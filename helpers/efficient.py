"""Exact attention that never holds the whole ``(queries, keys)`` matrix (notebook 10).

Explicit attention (``helpers.attention.scaled_dot_product_attention``) forms every score at
once: ``Lq * Lk`` numbers, so its memory grows with the square of the length. The softmax only
needs, per query, the largest score and the sum of the exponentials; both can be kept up to date
while the keys arrive one block at a time (*online softmax*). Carrying the weighted sum of the
values along with them gives the exact attention output from one small tile of scores at a time
(*tiled attention*, the idea behind FlashAttention), in plain PyTorch.

Where the ideas come from: the online softmax is Milakov and Gimelshein (2018), "Online
normalizer calculation for softmax"; attention in chunks with that bookkeeping, in ``O(L)``
memory, is Rabe and Staats (2021), "Self-attention does not need O(n^2) memory"; FlashAttention
(Dao et al., 2022) arranges the tiles around a GPU's fast on-chip memory and recomputes them in
the backward pass instead of storing them.

This module reads top to bottom:

- ``online_softmax_stats`` / ``online_softmax``: the running maximum and running sum, block by block;
- ``tiled_attention``: the same bookkeeping with values, tile by tile, skipping the tiles that a
  causal mask or a sliding window rules out (notebook 12);
- ``tiled_attention_recompute``: the same forward pass, and a backward pass that rebuilds each
  tile from one saved number per query instead of storing the weights (what FlashAttention
  saves in training);
- ``linear_attention`` / ``linear_attention_recurrent``: attention with the softmax replaced by a
  feature map, computed in parallel or as a recurrent network with a matrix state (notebook 12);
- ``delta_rule`` / ``delta_rule_recurrent``: the state of DeltaNet's overwriting update, from one
  triangular solve or one step at a time (notebook 12);
- ``RollingKVCache``: the key/value cache of sliding-window decoding, a ring of ``window`` slots
  whose memory does not grow with the length (Mistral's rolling buffer; notebook 12);
- ``peak_memory``: how many bytes a call holds at its peak, to put a number on "quadratic memory".

Masks and shapes follow ``helpers.attention`` (True = may attend; causal is top-left aligned).
"""

import math
import weakref
from collections.abc import Callable

import torch
import torch.nn.functional as F

# The only private PyTorch APIs in the package, used by ``peak_memory`` alone (tested on PyTorch
# 2.2 to 2.13 by tests/test_efficient.py::test_the_private_apis_peak_memory_uses_still_exist).
from torch.utils import _pytree as pytree
from torch.utils._python_dispatch import TorchDispatchMode

from helpers.attention import causal_mask
from helpers.checks import check_attention_inputs, check_float, check_positive_int, shape_of

__all__ = ["online_softmax_stats", "online_softmax", "tiled_attention", "tiled_attention_recompute",
           "elu_feature_map", "linear_attention", "linear_attention_recurrent", "delta_rule",
           "delta_rule_recurrent", "RollingKVCache", "peak_memory"]


# --------------------------------------------------------------------------------------------
# Online softmax: the maximum and the normaliser, one block of scores at a time
# --------------------------------------------------------------------------------------------


def _check_block_size(block_size):
    check_positive_int("block_size", block_size)


def online_softmax_stats(scores: torch.Tensor, block_size: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """The running maximum and running sum of ``exp(score - max)`` over the last dimension.

    The scores are read ``block_size`` at a time. When a block raises the maximum from ``m`` to
    ``m'``, every exponential summed so far was taken relative to ``m``; multiplying the sum by
    ``exp(m - m')`` re-bases it to ``m'``, so no earlier score has to be read again.

    Args:
        scores: floating-point tensor ``(..., n)``.
        block_size: how many scores are read at once.

    Returns:
        ``(maximum, total)``, each ``(..., 1)``, with ``softmax(scores) = exp(scores - maximum) / total``.
    """
    _check_block_size(block_size)
    if not scores.is_floating_point():
        raise TypeError(f"scores must be a floating-point tensor, got dtype {scores.dtype}")
    if scores.dim() == 0 or scores.shape[-1] == 0:
        raise ValueError(f"scores needs a non-empty last dimension, got shape {tuple(scores.shape)}")
    maximum = torch.full((*scores.shape[:-1], 1), float("-inf"), dtype=scores.dtype, device=scores.device)
    total = torch.zeros_like(maximum)
    for start in range(0, scores.shape[-1], block_size):
        block = scores[..., start:start + block_size]  # (..., block)
        new_maximum = torch.maximum(maximum, block.amax(dim=-1, keepdim=True))
        # exp(-inf - finite) = 0 re-bases the empty sum of the first block without a special case.
        total = total * torch.exp(maximum - new_maximum) + torch.exp(block - new_maximum).sum(dim=-1, keepdim=True)
        maximum = new_maximum
    return maximum, total


def online_softmax(scores: torch.Tensor, block_size: int = 4) -> torch.Tensor:
    """``torch.softmax(scores, dim=-1)``, with the statistics gathered by ``online_softmax_stats``.

    Shape: ``(..., n)`` in, ``(..., n)`` out.
    """
    maximum, total = online_softmax_stats(scores, block_size)
    return torch.exp(scores - maximum) / total


# --------------------------------------------------------------------------------------------
# Tiled attention
# --------------------------------------------------------------------------------------------


def _check_attention_inputs(query, key, value):
    return check_attention_inputs(query, key, value, need_keys=True)


def _causal_key_blocks(q_end: int, num_keys: int, block_size: int) -> int:
    """How many key blocks the query block ending at ``q_end`` needs under a top-left causal mask."""
    return -(-min(num_keys, q_end) // block_size)


def _causal_fill(scores, q_start, k_start):
    """Set the scores of keys in each query's future to -inf (only tiles crossing the diagonal)."""
    rows = torch.arange(q_start, q_start + scores.shape[-2], device=scores.device)[:, None]
    cols = torch.arange(k_start, k_start + scores.shape[-1], device=scores.device)[None, :]
    return scores.masked_fill(cols > rows, float("-inf"))


def _window_fill(scores, q_start, k_start, window):
    """Set the scores of keys at least ``window`` positions back to -inf (tiles crossing the window's edge)."""
    rows = torch.arange(q_start, q_start + scores.shape[-2], device=scores.device)[:, None]
    cols = torch.arange(k_start, k_start + scores.shape[-1], device=scores.device)[None, :]
    return scores.masked_fill(rows - cols >= window, float("-inf"))


def _tiled_forward(query, key, value, causal, block_size, work, window=None):
    """The tiled loop on ``(N, L, d)`` tensors: ``(output (N, Lq, dv), logsumexp (N, Lq, 1))``.

    ``logsumexp`` is ``maximum + log(total)`` per query, in the working dtype: all a backward
    pass needs to rebuild any tile of weights, ``exp(scores - logsumexp)``. ``window`` (which
    implies ``causal``) also skips the key blocks entirely before each query block's window.
    """
    n, num_queries, num_keys, dim_v = query.shape[0], query.shape[1], key.shape[1], value.shape[-1]
    scale = 1.0 / math.sqrt(query.shape[-1])
    # The key and value blocks are the same for every query block: cut them once (views).
    key_blocks = key.transpose(1, 2).split(block_size, dim=2)  # each (N, d, Bk)
    value_blocks = value.split(block_size, dim=1)  # each (N, Bk, dv)
    output = torch.empty((n, num_queries, dim_v), dtype=query.dtype, device=query.device)  # (N, Lq, dv)
    logsumexp = torch.empty((n, num_queries, 1), dtype=work, device=query.device)  # (N, Lq, 1)

    for q_start in range(0, num_queries, block_size):
        q_end = min(q_start + block_size, num_queries)
        q_block = query[:, q_start:q_end].to(work) * scale  # (N, Bq, d)
        maximum = torch.full((n, q_end - q_start, 1), float("-inf"), dtype=work, device=query.device)
        total = torch.zeros_like(maximum)  # (N, Bq, 1)
        acc = torch.zeros((n, q_end - q_start, dim_v), dtype=work, device=query.device)  # (N, Bq, dv)
        # Causal: the last query of this block sees keys 0..q_end-1; later key blocks are all future.
        num_blocks = _causal_key_blocks(q_end, num_keys, block_size) if causal else len(key_blocks)
        # Window: the first query of this block sees nothing before key q_start - window + 1.
        first_block = max(0, q_start - window + 1) // block_size if window is not None else 0
        for index in range(first_block, num_blocks):
            k_start = index * block_size
            scores = torch.bmm(q_block, key_blocks[index].to(work))  # (N, Bq, Bk)
            if causal and k_start + scores.shape[-1] - 1 > q_start:
                # Only tiles that cross the diagonal need a mask; tiles below it see every key.
                scores = _causal_fill(scores, q_start, k_start)
            if window is not None and (q_end - 1) - k_start >= window:
                scores = _window_fill(scores, q_start, k_start, window)
            new_maximum = torch.maximum(maximum, scores.amax(dim=-1, keepdim=True))  # (N, Bq, 1)
            # A query that has seen no key yet (possible with a window) keeps a maximum of -inf;
            # shifting by 0 instead keeps exp(-inf) = 0 rather than NaN. exp(-inf - finite) = 0
            # handles the start and the masked scores.
            shift = new_maximum.nan_to_num(neginf=0.0)
            rescale = torch.exp(maximum - shift)  # (N, Bq, 1)
            weights = torch.exp(scores - shift)  # (N, Bq, Bk), not yet normalised
            total = total * rescale + weights.sum(dim=-1, keepdim=True)
            acc = torch.baddbmm(acc * rescale, weights, value_blocks[index].to(work))  # (N, Bq, dv)
            maximum = new_maximum
        # A query with no key at all (only possible with a window) has total 0: output 0, as
        # helpers.attention's masked_softmax gives.
        output[:, q_start:q_end] = acc / torch.where(total > 0, total, torch.ones_like(total))
        logsumexp[:, q_start:q_end] = maximum + torch.log(total)
    return output, logsumexp


def _flatten_batch(query, key, value):
    """Broadcast the leading dimensions and flatten them into one: ``(N, L, d)`` views or copies."""
    batch = _check_attention_inputs(query, key, value)
    flat = [t.expand(*batch, *t.shape[-2:]).reshape(-1, *t.shape[-2:]) for t in (query, key, value)]
    return batch, flat


def _working_dtype(dtype):
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def tiled_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, *, causal: bool = False,
                    block_size: int = 128, window: int | None = None) -> torch.Tensor:
    """Exact softmax attention computed tile by tile, never forming the ``(Lq, Lk)`` scores.

    For each block of ``block_size`` queries, the keys and values are read ``block_size`` at a
    time. Each query keeps three running quantities: the largest score seen (``maximum``), the
    sum of ``exp(score - maximum)`` (``total``) and the sum of those exponentials times the
    values (``acc``). When the maximum grows, ``total`` and ``acc`` are re-based by
    ``exp(old - new)``, exactly as in ``online_softmax_stats``; at the end ``acc / total`` is the
    attention output. The largest tensor alive besides the inputs and the output is one
    ``(block_size, block_size)`` tile of scores per batch entry.

    That holds for the forward pass. Under autograd, every tile's weights are saved for the
    backward pass, so training through this function stores as much as explicit attention:
    ``tiled_attention_recompute`` is the version that saves only the output and one number per
    query, and rebuilds the tiles in its backward pass.

    Args:
        query: ``(..., Lq, d)``.
        key: ``(..., Lk, d)``.
        value: ``(..., Lk, dv)``.
        causal: query ``i`` may not attend to keys ``j > i`` (top-left aligned, as in
            ``torch.nn.functional.scaled_dot_product_attention``). Key blocks that lie entirely
            in a query block's future are skipped, not computed and masked.
        block_size: edge of the query and key tiles; need not divide the lengths.
        window: a causal sliding window (implies ``causal``): query ``i`` attends to keys
            ``i - window + 1 .. i``, as ``helpers.attention.sliding_window_mask``. Key blocks
            entirely outside the band are skipped, so time and memory grow as ``Lq * window``,
            not ``Lq * Lk``. A query with no key in its window gets a zero output.

    Returns:
        ``output`` of shape ``(..., Lq, dv)`` (leading dimensions broadcast), equal to
        ``softmax(query @ key^T / sqrt(d)) @ value``. Half-precision inputs are accumulated in
        float32 and returned in their own dtype.
    """
    _check_block_size(block_size)
    if window is not None:
        check_positive_int("window", window, "keys each query may see, itself included")
        causal = True
    batch, (query, key, value) = _flatten_batch(query, key, value)
    output, _ = _tiled_forward(query, key, value, causal, block_size, _working_dtype(query.dtype), window)
    return output.view(*batch, *output.shape[-2:])


class _TiledAttentionRecompute(torch.autograd.Function):
    """Tiled forward that saves ``(output, logsumexp)``; backward rebuilds each tile from them."""

    @staticmethod
    def forward(ctx, query, key, value, causal, block_size):  # (N, Lq, d), (N, Lk, d), (N, Lk, dv)
        work = _working_dtype(query.dtype)
        output, logsumexp = _tiled_forward(query, key, value, causal, block_size, work)
        ctx.save_for_backward(query, key, value, output, logsumexp)
        ctx.causal, ctx.block_size = causal, block_size
        return output

    @staticmethod
    def backward(ctx, grad_output):  # (N, Lq, dv)
        query, key, value, output, logsumexp = ctx.saved_tensors
        causal, block_size = ctx.causal, ctx.block_size
        work = logsumexp.dtype
        num_queries, num_keys = query.shape[1], key.shape[1]
        scale = 1.0 / math.sqrt(query.shape[-1])
        grad_output = grad_output.to(work)
        # d(loss)/d(score_ij) = w_ij * (dO_i . v_j - dO_i . O_i): the second term, once per query.
        delta = (grad_output * output.to(work)).sum(dim=-1, keepdim=True)  # (N, Lq, 1)
        grad_query = torch.zeros(query.shape, dtype=work, device=query.device)  # (N, Lq, d)
        grad_key = torch.zeros(key.shape, dtype=work, device=key.device)  # (N, Lk, d)
        grad_value = torch.zeros(value.shape, dtype=work, device=value.device)  # (N, Lk, dv)
        for q_start in range(0, num_queries, block_size):
            q_end = min(q_start + block_size, num_queries)
            q_block = query[:, q_start:q_end].to(work) * scale  # (N, Bq, d)
            d_out = grad_output[:, q_start:q_end]  # (N, Bq, dv)
            num_blocks = _causal_key_blocks(q_end, num_keys, block_size) if causal else -(-num_keys // block_size)
            for index in range(num_blocks):
                k_start, k_end = index * block_size, min((index + 1) * block_size, num_keys)
                k_block, v_block = key[:, k_start:k_end].to(work), value[:, k_start:k_end].to(work)  # (N, Bk, d|dv)
                scores = torch.bmm(q_block, k_block.transpose(1, 2))  # (N, Bq, Bk), recomputed
                if causal and k_end - 1 > q_start:
                    scores = _causal_fill(scores, q_start, k_start)
                weights = torch.exp(scores - logsumexp[:, q_start:q_end])  # (N, Bq, Bk), normalised
                grad_value[:, k_start:k_end] += torch.bmm(weights.transpose(1, 2), d_out)  # (N, Bk, dv)
                grad_scores = weights * (torch.bmm(d_out, v_block.transpose(1, 2)) - delta[:, q_start:q_end])
                grad_query[:, q_start:q_end] += torch.bmm(grad_scores, k_block) * scale  # (N, Bq, d)
                grad_key[:, k_start:k_end] += torch.bmm(grad_scores.transpose(1, 2), q_block)  # (N, Bk, d)
        return grad_query.to(query.dtype), grad_key.to(key.dtype), grad_value.to(value.dtype), None, None


def tiled_attention_recompute(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, *,
                              causal: bool = False, block_size: int = 128) -> torch.Tensor:
    """``tiled_attention`` with FlashAttention's backward pass: nothing quadratic is stored.

    The forward pass is ``tiled_attention``'s, and it keeps, besides the inputs, only the output
    and one number per query, its log-sum-exp ``m + log(l)``. The backward pass walks the same
    tiles again, rebuilds each tile of weights as ``exp(scores - logsumexp)`` and accumulates
    the gradients of query, key and value tile by tile, so training holds ``O(L)`` memory
    instead of the ``O(L^2)`` weights that autograd saves for explicit (or plain tiled)
    attention. It pays for that with a second computation of every score.

    Arguments, shapes and result as ``tiled_attention``; gradients flow to all three inputs.
    """
    _check_block_size(block_size)
    batch, (query, key, value) = _flatten_batch(query, key, value)
    output = _TiledAttentionRecompute.apply(query, key, value, causal, block_size)
    return output.view(*batch, *output.shape[-2:])


# --------------------------------------------------------------------------------------------
# Linear attention: a feature map instead of the softmax
# --------------------------------------------------------------------------------------------


def elu_feature_map(x: torch.Tensor) -> torch.Tensor:
    """``elu(x) + 1``: positive features, the choice of Katharopoulos et al. (2020)."""
    return F.elu(x) + 1


def _features(query, key, feature_map):
    phi = elu_feature_map if feature_map is None else feature_map
    q, k = phi(query), phi(key)  # (..., Lq, r), (..., Lk, r)
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"the feature map gave query features of width {q.shape[-1]} and key features of width "
                         f"{k.shape[-1]}; they must match")
    return q, k


def _divide(numerator, denominator):
    # A query whose features are all zero against every key has nothing to average: output 0.
    return numerator / torch.where(denominator == 0, torch.ones_like(denominator), denominator)


def linear_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, *, causal: bool = False,
                     feature_map: Callable[[torch.Tensor], torch.Tensor] | None = None,
                     chunk_size: int = 64) -> torch.Tensor:
    """Attention with ``exp(q·k/√d)`` replaced by ``φ(q)·φ(k)``, computed without the ``(Lq, Lk)`` matrix.

    Output ``i`` is ``φ(q_i)ᵀ S / φ(q_i)ᵀ z`` with ``S = Σ_j φ(k_j) v_jᵀ`` (``(r, dv)``) and
    ``z = Σ_j φ(k_j)`` (``(r,)``), the sums over every key, or over ``j <= i`` when ``causal``.
    Because ``(φ(Q) φ(K)ᵀ) V = φ(Q) (φ(K)ᵀ V)``, the sums are formed once: time and memory grow
    as ``L · r · dv`` instead of ``Lq · Lk``.

    Args:
        query: ``(..., Lq, d)``; key: ``(..., Lk, d)``; value: ``(..., Lk, dv)``.
        causal: each query sees keys ``0..i`` (needs ``Lq == Lk``). The running sums are kept
            per chunk of ``chunk_size`` positions: inside a chunk a small ``(chunk, chunk)``
            causal product, across chunks the carried state, so memory stays ``O(L)``.
        feature_map: ``φ``, applied to the last dimension; default ``elu(x) + 1``. It should
            give non-negative features so that the weights are non-negative.
        chunk_size: positions per chunk when ``causal``.

    Returns:
        ``(..., Lq, dv)``; the weights ``φ(q_i)·φ(k_j) / Σ_j φ(q_i)·φ(k_j)`` sum to 1 per query.
    """
    _check_attention_inputs(query, key, value)
    _check_block_size(chunk_size)
    q, k = _features(query, key, feature_map)
    if not causal:
        state = k.transpose(-2, -1) @ value  # (..., r, dv): Σ_j φ(k_j) v_jᵀ
        norm = k.sum(dim=-2).unsqueeze(-1)  # (..., r, 1): Σ_j φ(k_j)
        return _divide(q @ state, q @ norm)  # (..., Lq, dv) / (..., Lq, 1)
    length = query.shape[-2]
    if key.shape[-2] != length:
        raise ValueError(f"causal linear attention needs as many queries as keys: shapes query "
                         f"{tuple(query.shape)}, key {tuple(key.shape)}")
    batch = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], value.shape[:-2])
    state = q.new_zeros(*batch, q.shape[-1], value.shape[-1])  # (..., r, dv): the past chunks' sum
    norm = q.new_zeros(*batch, q.shape[-1], 1)  # (..., r, 1)
    outputs = []
    for start in range(0, length, chunk_size):
        qc, kc, vc = (t[..., start:start + chunk_size, :] for t in (q, k, value))  # (..., C, ·)
        # Inside the chunk: the small causal matrix of φ(q_i)·φ(k_j), j <= i.
        local = (qc @ kc.transpose(-2, -1)) * causal_mask(qc.shape[-2], device=qc.device)  # (..., C, C)
        numerator = qc @ state + local @ vc  # (..., C, dv)
        denominator = qc @ norm + local.sum(dim=-1, keepdim=True)  # (..., C, 1)
        outputs.append(_divide(numerator, denominator))
        state = state + kc.transpose(-2, -1) @ vc
        norm = norm + kc.sum(dim=-2).unsqueeze(-1)
    return torch.cat(outputs, dim=-2)  # (..., L, dv)


def linear_attention_recurrent(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, *,
                               feature_map: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
    """Causal ``linear_attention``, one position at a time: a recurrent network with a matrix state.

    At step ``t`` the state ``S_t = S_{t-1} + φ(k_t) v_tᵀ`` (``(r, dv)``) and the normaliser
    ``z_t = z_{t-1} + φ(k_t)`` (``(r,)``) are updated, and ``y_t = φ(q_t)ᵀ S_t / φ(q_t)ᵀ z_t``.
    Nothing else is carried: the state's size does not depend on the length.

    Shapes as in ``linear_attention`` with ``Lq == Lk``; returns ``(..., L, dv)``.
    """
    _check_attention_inputs(query, key, value)
    if key.shape[-2] != query.shape[-2]:
        raise ValueError(f"the recurrence reads one query per key: shapes query {tuple(query.shape)}, "
                         f"key {tuple(key.shape)}")
    q, k = _features(query, key, feature_map)
    batch = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], value.shape[:-2])
    state = q.new_zeros(*batch, q.shape[-1], value.shape[-1])  # (..., r, dv)
    norm = q.new_zeros(*batch, q.shape[-1])  # (..., r)
    outputs = []
    for t in range(query.shape[-2]):
        state = state + k[..., t, :, None] * value[..., t, None, :]  # + φ(k_t) v_tᵀ
        norm = norm + k[..., t, :]
        numerator = (q[..., t, :, None] * state).sum(dim=-2)  # (..., dv): φ(q_t)ᵀ S_t
        denominator = (q[..., t, :] * norm).sum(dim=-1, keepdim=True)  # (..., 1): φ(q_t)ᵀ z_t
        outputs.append(_divide(numerator, denominator))
    return torch.stack(outputs, dim=-2)  # (..., L, dv)


# --------------------------------------------------------------------------------------------
# The delta rule: a state that overwrites instead of adding
# --------------------------------------------------------------------------------------------


def _check_delta_inputs(keys, values, beta):
    for name, t in (("keys", keys), ("values", values), ("beta", beta)):
        check_float(name, t)
    if keys.dim() < 2 or values.dim() != keys.dim() or beta.dim() != keys.dim() - 1:
        raise ValueError(f"expected keys (..., n, d), values (..., n, dv) and beta (..., n): shapes keys "
                         f"{shape_of(keys)}, values {shape_of(values)}, beta {shape_of(beta)}")
    if keys.shape[:-1] != values.shape[:-1] or keys.shape[:-1] != beta.shape:
        raise ValueError(f"keys, values and beta must agree on (..., n): shapes keys {shape_of(keys)}, "
                         f"values {shape_of(values)}, beta {shape_of(beta)}")


def delta_rule_recurrent(keys: torch.Tensor, values: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """The delta rule's final state, one write per step: ``S_t = S_{t-1} + β_t k_t (v_t - S_{t-1}ᵀ k_t)ᵀ``.

    Each step reads what the state holds under the key, ``S_{t-1}ᵀ k_t``, and writes only the
    difference to the new value, scaled by ``β_t``. With a unit-length key and ``β_t = 1`` the key
    then retrieves exactly ``v_t``: the rule overwrites (Schlag et al., 2021, "Linear Transformers
    are secretly fast weight programmers"; DeltaNet).

    Shape:
        keys ``(..., n, d)`` (unit length for the overwrite to be exact), values ``(..., n, dv)``,
        beta ``(..., n)``; returns the state ``(..., d, dv)``, starting from zeros.
    """
    _check_delta_inputs(keys, values, beta)
    state = keys.new_zeros(*keys.shape[:-2], keys.shape[-1], values.shape[-1])  # (..., d, dv)
    for t in range(keys.shape[-2]):
        k, v = keys[..., t, :], values[..., t, :]  # (..., d), (..., dv)
        stored = (k[..., :, None] * state).sum(dim=-2)  # (..., dv): Sᵀk, what the state holds under k
        state = state + beta[..., t, None, None] * k[..., :, None] * (v - stored)[..., None, :]
    return state


def delta_rule(keys: torch.Tensor, values: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """``delta_rule_recurrent``'s state from one triangular solve (the "UT transform" of DeltaNet).

    Write ``u_t = β_t (v_t - S_{t-1}ᵀ k_t)`` for what step ``t`` adds, so ``S_n = Σ_t k_t u_tᵀ =
    Kᵀ U``. Since ``S_{t-1} = Σ_{s<t} k_s u_sᵀ``, the definition reads
    ``u_t + β_t Σ_{s<t} (k_t · k_s) u_s = β_t v_t``: for all steps at once,
    ``(I + diag(β) tril(K Kᵀ, -1)) U = diag(β) V``, a unit lower-triangular system solved by
    forward substitution in one call. Yang et al. (2024), "Parallelizing linear transformers with
    the delta rule over sequence length", train DeltaNet this way, chunk by chunk.

    Shapes as ``delta_rule_recurrent``; every tensor is created on the inputs' device.
    """
    _check_delta_inputs(keys, values, beta)
    n = keys.shape[-2]
    overlap = (keys @ keys.transpose(-2, -1)).tril(-1)  # (..., n, n): k_t · k_s for s < t
    system = torch.eye(n, dtype=keys.dtype, device=keys.device) + beta[..., None] * overlap  # (..., n, n)
    writes = torch.linalg.solve_triangular(system, beta[..., None] * values, upper=False,
                                           unitriangular=True)  # (..., n, dv): U
    return keys.transpose(-2, -1) @ writes  # (..., d, dv)


# --------------------------------------------------------------------------------------------
# The rolling key/value cache of sliding-window decoding
# --------------------------------------------------------------------------------------------


class RollingKVCache:
    """The keys and values that sliding-window attention keeps while decoding: ``window`` slots, reused.

    With a window of ``w`` keys (``helpers.attention.sliding_window_mask``), position ``p`` never
    looks at a key older than ``p - w + 1``, so a cache needs only the last ``w`` positions.
    Mistral 7B (Jiang et al., 2023) keeps them in a *rolling buffer*: position ``p`` is written
    to slot ``p mod w``, over the key that has just left every later query's window. The memory
    is ``w`` slots whatever the length, where ``helpers.attention.KVCache`` grows by one position
    per token. The order of the slots does not matter: attention is a weighted sum over keys,
    and positions (RoPE) are applied to the keys before they are cached.

    ``append`` takes ``T`` new positions (one when decoding, a chunk of a prompt when
    prefilling) and returns the keys and values those queries attend over, the ``w`` slots
    followed by the ``T`` new positions, with a mask that keeps, for each new query, exactly the
    keys of its window (True = may attend). The slots are then overwritten with the newest
    positions. The mask is ``T x (w + T)``: feed a long prompt in chunks of about ``w`` positions,
    as Mistral does, not all at once. ``scaled_dot_product_attention(query, keys, values, mask)`` equals windowed
    attention over the whole sequence (``tests/test_efficient.py``).

    Shape:
        key, value: ``(..., T, head_dim)``, e.g. ``(batch, kv_heads, T, head_dim)``; the leading
        dimensions must stay the same between calls. The returned keys and values are
        ``(..., w + T, head_dim)``; the mask is ``(T, w + T)``.
    """

    def __init__(self, window: int):
        check_positive_int("window", window, "keys each query may see, itself included")
        self.window = window
        self.key: torch.Tensor | None = None  # (..., w, hd): slot p mod w holds position p
        self.value: torch.Tensor | None = None
        self.positions: torch.Tensor | None = None  # (w,): the position in each slot, -1 while empty
        self.length = 0  # positions appended so far

    @property
    def nbytes(self) -> int:
        """Bytes held by the cached keys and values (the ``w`` slots; the slot positions are not counted)."""
        if self.key is None:
            return 0
        return self.key.numel() * self.key.element_size() + self.value.numel() * self.value.element_size()

    def append(self, key: torch.Tensor, value: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Add ``T`` new positions; return ``(keys, values, mask)`` for the new queries to attend over."""
        check_float("key", key)
        check_float("value", value)
        if key.dim() < 2 or key.shape[:-1] != value.shape[:-1]:
            raise ValueError(f"key and value must be (..., T, head_dim) with the same (..., T): shapes key "
                             f"{shape_of(key)}, value {shape_of(value)}")
        lead, new = key.shape[:-2], key.shape[-2]
        if self.key is None:
            self.key = key.new_zeros(*lead, self.window, key.shape[-1])  # (..., w, hd)
            self.value = value.new_zeros(*lead, self.window, value.shape[-1])  # (..., w, hd_v)
            self.positions = torch.full((self.window,), -1, dtype=torch.long, device=key.device)
        elif (key.shape[:-2], key.shape[-1], value.shape[-1]) != (self.key.shape[:-2], self.key.shape[-1],
                                                                  self.value.shape[-1]):
            raise ValueError(f"the cache holds keys {shape_of(self.key)} and values {shape_of(self.value)}; "
                             f"new key {shape_of(key)} and value {shape_of(value)} must match them but for T")
        new_positions = torch.arange(self.length, self.length + new, device=key.device)  # (T,)
        keys = torch.cat([self.key, key], dim=-2)  # (..., w + T, hd)
        values = torch.cat([self.value, value], dim=-2)  # (..., w + T, hd_v)
        positions = torch.cat([self.positions, new_positions])  # (w + T,)
        distance = new_positions[:, None] - positions[None, :]  # (T, w + T): query position - key position
        mask = (positions[None, :] >= 0) & (distance >= 0) & (distance < self.window)  # (T, w + T)
        # Overwrite the slots with the newest positions (at most w of them): position p -> slot p mod w.
        keep = min(new, self.window)
        slots = new_positions[-keep:] % self.window  # (keep,)
        self.key[..., slots, :] = key[..., new - keep:, :]
        self.value[..., slots, :] = value[..., new - keep:, :]
        self.positions[slots] = new_positions[-keep:]
        self.length += new
        return keys, values, mask


# --------------------------------------------------------------------------------------------
# Measuring memory
# --------------------------------------------------------------------------------------------


class _LiveTensorBytes(TorchDispatchMode):
    """Counts the bytes of every tensor storage created inside the mode while it is alive."""

    def __init__(self):
        super().__init__()
        self.live = 0
        self.peak = 0
        self._seen = set()

    def _release(self, ptr, nbytes):
        self.live -= nbytes
        self._seen.discard(ptr)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        # A view or an in-place result shares an input's storage: no new memory.
        inputs = {t.untyped_storage().data_ptr() for t in pytree.tree_leaves((args, kwargs))
                  if isinstance(t, torch.Tensor) and t.layout == torch.strided}
        for t in pytree.tree_leaves(out):
            if isinstance(t, torch.Tensor) and t.layout == torch.strided:
                storage = t.untyped_storage()
                ptr = storage.data_ptr()
                if ptr in inputs or ptr in self._seen or storage.nbytes() == 0:
                    continue
                self._seen.add(ptr)
                self.live += storage.nbytes()
                self.peak = max(self.peak, self.live)
                weakref.finalize(storage, self._release, ptr, storage.nbytes())
        return out


def peak_memory(fn: Callable[[], object], *, device=None) -> int:
    """Peak bytes of tensors that ``fn()`` creates and holds at once, its result included.

    By default every tensor created by a PyTorch operation inside ``fn`` (on any device) is
    counted from its creation until it is freed; the count is the same on every machine. Scratch
    space that a fused kernel allocates internally, not as a tensor, is not seen: for fused
    ``scaled_dot_product_attention`` on the CPU that is a few small per-thread tiles. With a CUDA
    ``device``, the CUDA allocator's own peak counter is used instead, which sees everything.
    Run ``fn`` under ``torch.no_grad()`` to measure inference alone.
    """
    if device is not None and torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        result = fn()
        torch.cuda.synchronize(device)
        peak = torch.cuda.max_memory_allocated(device) - before
        del result
        return int(peak)
    counter = _LiveTensorBytes()
    with counter:
        result = fn()
    del result
    return int(counter.peak)
