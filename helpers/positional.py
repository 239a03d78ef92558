"""Positional encodings: giving self-attention back the order it cannot see (notebook 06).

Self-attention is permutation-equivariant: shuffle the tokens and the outputs shuffle the same
way. Order has to be put in by hand, and there are two places to put it:

- **in the embeddings**, before attention: ``sinusoidal_encoding`` / ``SinusoidalPositionalEncoding``
  (fixed, Vaswani et al. 2017) and ``LearnedPositionalEmbedding`` (one trained vector per position);
- **in the scores**, inside attention: ``apply_rotary`` (RoPE, Su et al. 2021) rotates queries and
  keys so that their dot product depends only on the offset between two positions, and
  ``alibi_bias`` (ALiBi, Press et al. 2022) adds a per-head penalty proportional to the distance.

``PositionalSelfAttention`` is one self-attention layer that can use either score-side method,
and ``OrderClassifier`` the tiny model notebook 06 trains with each encoding in turn.

Shapes follow ``helpers.attention``: modules are batch-first ``(batch, length, dim)``; per-head
tensors are ``(batch, heads, length, head_dim)``; masks are bool with True = may attend.
"""

import math

import torch
from torch import nn

from helpers.attention import causal_mask, check_mask, masked_softmax

__all__ = [
    "sinusoidal_encoding",
    "SinusoidalPositionalEncoding",
    "LearnedPositionalEmbedding",
    "rotary_angles",
    "apply_rotary",
    "alibi_slopes",
    "alibi_bias",
    "PositionalSelfAttention",
    "OrderClassifier",
    "ENCODINGS",
]


def _check_embeddings(x, dim, max_len, who):
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError(f"{who} expects floating-point embeddings, got {getattr(x, 'dtype', type(x).__name__)}")
    if x.dim() != 3 or x.shape[-1] != dim:
        raise ValueError(f"{who} expects embeddings of shape (batch, length, {dim}), got {tuple(x.shape)}")
    if x.shape[1] > max_len:
        raise ValueError(
            f"{who} was built for at most max_len={max_len} positions, got a sequence of length {x.shape[1]}"
        )


# --------------------------------------------------------------------------------------------
# Sinusoidal encoding: fixed, added to the embeddings
# --------------------------------------------------------------------------------------------


def sinusoidal_encoding(num_positions: int, dim: int, *, base: float = 10000.0, device=None,
                        dtype=torch.float32) -> torch.Tensor:
    """The fixed encoding of "Attention Is All You Need", one row per position.

    ``PE[pos, 2i] = sin(pos / base^(2i/dim))`` and ``PE[pos, 2i+1] = cos(pos / base^(2i/dim))``:
    each pair of columns is a clock turning at its own speed, from one turn every ``2*pi``
    positions (columns 0, 1) to one every ``2*pi*base`` positions (the last columns).

    Args:
        num_positions: number of positions (rows), ``0 .. num_positions - 1``.
        dim: width of the encoding (columns); an odd ``dim`` drops the last cosine.
        base: the longest wavelength is ``2 * pi * base``.

    Shape:
        - output: ``(num_positions, dim)``
    """
    if num_positions < 0 or dim <= 0:
        raise ValueError(f"need num_positions >= 0 and dim > 0, got num_positions={num_positions}, dim={dim}")
    position = torch.arange(num_positions, device=device, dtype=torch.float64)[:, None]  # (P, 1)
    # Frequencies in float64 so that large positions keep their phase exactly.
    frequency = base ** (-torch.arange(0, dim, 2, device=device, dtype=torch.float64) / dim)  # (ceil(dim/2),)
    angle = position * frequency  # (P, ceil(dim/2))
    encoding = torch.stack([angle.sin(), angle.cos()], dim=-1).flatten(1)  # (P, 2 * ceil(dim/2)), interleaved
    return encoding[:, :dim].to(dtype)


class SinusoidalPositionalEncoding(nn.Module):
    """Add the sinusoidal encoding to a batch of embeddings (nothing to train).

    Args:
        dim: width of the embeddings.
        max_len: longest sequence it accepts (the table is computed once, up to here).
        dropout: dropout applied after the addition during training (0 by default).
        base: see ``sinusoidal_encoding``.

    Shape:
        - x: ``(batch, length, dim)`` with ``length <= max_len``
        - output: ``(batch, length, dim)``, ``x + PE[:length]``
    """

    def __init__(self, dim: int, max_len: int = 2048, dropout: float = 0.0, *, base: float = 10000.0):
        super().__init__()
        self.dim, self.max_len = dim, max_len
        self.dropout = nn.Dropout(dropout)
        # A buffer moves with .to(device) but is not a parameter; not persistent, so it stays
        # out of state_dict (it is recomputed, never learned).
        self.register_buffer("encoding", sinusoidal_encoding(max_len, dim, base=base), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_embeddings(x, self.dim, self.max_len, "SinusoidalPositionalEncoding")
        return self.dropout(x + self.encoding[: x.shape[1]].to(x.dtype))  # (B, L, D)


class LearnedPositionalEmbedding(nn.Module):
    """Add one trained vector per position (as in BERT and GPT-2).

    Positions never seen in training keep their random initial vectors: the model has no reason
    to do anything sensible there, which notebook 06 measures.

    Args:
        dim: width of the embeddings.
        max_len: number of positions that get a vector.
        dropout: dropout after the addition during training (0 by default).
        init_std: standard deviation of the initial vectors. The default 0.02 is GPT-2's; match it
            to the scale of the token embeddings so that neither drowns the other at the start.

    Shape:
        - x: ``(batch, length, dim)`` with ``length <= max_len``
        - output: ``(batch, length, dim)``
    """

    def __init__(self, dim: int, max_len: int = 512, dropout: float = 0.0, *, init_std: float = 0.02):
        super().__init__()
        self.dim, self.max_len = dim, max_len
        self.embedding = nn.Embedding(max_len, dim)
        nn.init.normal_(self.embedding.weight, std=init_std)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_embeddings(x, self.dim, self.max_len, "LearnedPositionalEmbedding")
        positions = torch.arange(x.shape[1], device=x.device)  # (L,)
        return self.dropout(x + self.embedding(positions))  # (B, L, D)


# --------------------------------------------------------------------------------------------
# RoPE: rotate queries and keys by an angle proportional to their position
# --------------------------------------------------------------------------------------------


def rotary_angles(positions: torch.Tensor, dim: int, *, base: float = 10000.0) -> torch.Tensor:
    """Angle by which RoPE turns each pair of features at each position.

    Pair ``i`` (features ``2i`` and ``2i+1``) turns by ``position * base^(-2i/dim)``: the same
    frequencies as the sinusoidal encoding.

    Shape:
        - positions: ``(..., length)`` integers or floats
        - output: ``(..., length, dim // 2)``
    """
    if dim <= 0 or dim % 2:
        raise ValueError(f"RoPE rotates pairs of features, so dim must be even and positive, got {dim}")
    positions = torch.as_tensor(positions)
    frequency = base ** (-torch.arange(0, dim, 2, device=positions.device, dtype=torch.float64) / dim)  # (dim/2,)
    return positions.to(torch.float64)[..., None] * frequency  # (..., L, dim/2)


def apply_rotary(x: torch.Tensor, positions: torch.Tensor | None = None, *, base: float = 10000.0) -> torch.Tensor:
    """Rotary position embedding (RoPE): rotate each pair of features of ``x`` by its position's angle.

    Apply it to the queries and to the keys (never the values), after their projections and
    before the dot product. A rotation by ``a`` then ``-b`` is a rotation by ``a - b``, so

        ``apply_rotary(q, m) . apply_rotary(k, n)`` depends on ``m`` and ``n`` only through ``m - n``:

    the scores see relative offsets, though each vector was rotated by its absolute position.

    Args:
        x: queries or keys, ``(..., length, dim)`` with an even ``dim``; pairs are features
            ``(0, 1), (2, 3), ...`` as in the paper.
        positions: the position of each row, broadcastable to ``(..., length)``;
            default ``0 .. length - 1``.
        base: see ``rotary_angles``.

    Shape:
        - output: same as ``x``
    """
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError(f"apply_rotary expects a floating-point tensor, got {getattr(x, 'dtype', type(x).__name__)}")
    if x.dim() < 2:
        raise ValueError(f"apply_rotary expects (..., length, dim), got shape {tuple(x.shape)}")
    length, dim = x.shape[-2], x.shape[-1]
    if positions is None:
        positions = torch.arange(length, device=x.device)
    positions = torch.as_tensor(positions, device=x.device)
    if positions.dim() == 0 or positions.shape[-1] != length:
        raise ValueError(
            f"positions must give one position per row: expected (..., {length}), got shape {tuple(positions.shape)}"
        )
    angle = rotary_angles(positions, dim, base=base)  # (..., L, dim/2)
    cos, sin = angle.cos().to(x.dtype), angle.sin().to(x.dtype)
    pairs = x.unflatten(-1, (dim // 2, 2))  # (..., L, dim/2, 2)
    even, odd = pairs[..., 0], pairs[..., 1]  # (..., L, dim/2) each
    rotated = torch.stack([even * cos - odd * sin, even * sin + odd * cos], dim=-1)  # (..., L, dim/2, 2)
    return rotated.flatten(-2)  # (..., L, dim)


# --------------------------------------------------------------------------------------------
# ALiBi: a linear penalty on the scores, steeper for some heads than others
# --------------------------------------------------------------------------------------------


def alibi_slopes(num_heads: int) -> torch.Tensor:
    """The ALiBi slope of each head: the geometric sequence ``2^(-8/n), 2^(-16/n), ..., 2^-8``.

    Steep heads look only nearby; shallow heads see far. For a head count that is not a power
    of two, the paper's recipe: the slopes of the nearest power of two below, then every other
    slope of the next power of two.

    Shape:
        - output: ``(num_heads,)``
    """
    if num_heads <= 0:
        raise ValueError(f"num_heads must be positive, got {num_heads}")
    closest = 2 ** math.floor(math.log2(num_heads))
    slopes = [2 ** (-8 * (i + 1) / closest) for i in range(closest)]
    slopes += [2 ** (-4 * (2 * i + 1) / closest) for i in range(num_heads - closest)]
    return torch.tensor(slopes)


def alibi_bias(num_heads: int, num_queries: int, num_keys: int | None = None, device=None) -> torch.Tensor:
    """The ALiBi bias to add to the attention scores: ``-slope[h] * |i - j|``.

    Query ``i`` pays ``slope`` per position of distance to key ``j``. With a causal mask (the
    setting ALiBi was designed for) only keys ``j <= i`` survive and the bias is
    ``-slope * (i - j)``; without one, the bias is symmetric, so on its own it tells distance but
    not direction (notebook 06 measures what that costs).

    Shape:
        - output: ``(num_heads, num_queries, num_keys)``, broadcastable to ``(batch, heads, queries, keys)``
    """
    num_keys = num_queries if num_keys is None else num_keys
    distance = (torch.arange(num_queries, device=device)[:, None] - torch.arange(num_keys, device=device)).abs()
    return -alibi_slopes(num_heads).to(device)[:, None, None] * distance  # (H, Lq, Lk)


# --------------------------------------------------------------------------------------------
# A self-attention layer that can take RoPE and ALiBi, and the tiny model of notebook 06
# --------------------------------------------------------------------------------------------


class PositionalSelfAttention(nn.Module):
    """Multi-head self-attention with optional RoPE on the queries/keys and ALiBi on the scores.

    The same computation as ``helpers.attention.MultiHeadAttention`` (whose masked softmax it
    reuses), with the two places where a position can enter written out.

    Args:
        dim: width of the input and output.
        num_heads: number of heads; must divide ``dim`` (and ``dim // num_heads`` must be even for RoPE).
        rotary: rotate queries and keys with ``apply_rotary``.
        alibi: add ``alibi_bias`` to the scores.

    Shape:
        - x: ``(batch, length, dim)``
        - mask: bool, broadcastable to ``(batch, heads, length, length)``; True = may attend
        - output: ``(batch, length, dim)``; weights: ``(batch, heads, length, length)``
    """

    def __init__(self, dim: int, num_heads: int, *, rotary: bool = False, alibi: bool = False):
        super().__init__()
        if num_heads <= 0 or dim % num_heads:
            raise ValueError(f"dim ({dim}) must be divisible by num_heads ({num_heads})")
        if rotary and (dim // num_heads) % 2:
            raise ValueError(f"RoPE needs an even head_dim, got dim // num_heads = {dim // num_heads}")
        self.dim, self.num_heads, self.head_dim = dim, num_heads, dim // num_heads
        self.rotary, self.alibi = rotary, alibi
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out_proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, *, causal: bool = False):
        if x.dim() != 3 or x.shape[-1] != self.dim:
            raise ValueError(f"expected x of shape (batch, length, {self.dim}), got {tuple(x.shape)}")
        batch, length, _ = x.shape
        if mask is not None:
            check_mask(mask, (batch, self.num_heads, length, length))
        if causal:
            future = causal_mask(length, device=x.device)
            mask = future if mask is None else mask & future
        q, k, v = self.qkv(x).view(batch, length, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        # q, k, v: (B, H, L, hd) each
        if self.rotary:
            q, k = apply_rotary(q), apply_rotary(k)
        scores = q @ k.transpose(-2, -1) / math.sqrt(self.head_dim)  # (B, H, L, L)
        if self.alibi:
            scores = scores + alibi_bias(self.num_heads, length, device=x.device).to(scores.dtype)
        weights = masked_softmax(scores, mask)  # (B, H, L, L)
        out = (weights @ v).transpose(1, 2).reshape(batch, length, self.dim)  # (B, L, D)
        return self.out_proj(out), weights


ENCODINGS = ("none", "sinusoidal", "learned", "rope", "alibi")


class OrderClassifier(nn.Module):
    """A tiny one-layer model that reads a sequence and predicts one label: notebook 06's testbed.

    Embed the tokens, add an absolute encoding (``"sinusoidal"``, ``"learned"``) or let the
    attention layer use a relative one (``"rope"``, ``"alibi"``), or nothing (``"none"``); one
    residual self-attention layer and an MLP; average over positions; a linear read-out. Only the
    encoding changes between the variants, so their accuracies compare.

    Args:
        vocab_size: number of token ids.
        num_classes: number of labels.
        encoding: one of ``ENCODINGS``.
        dim, num_heads: width and heads of the attention layer.
        max_len: longest sequence (for the absolute encodings).
        causal: attend only to earlier positions.

    Shape:
        - tokens: ``(batch, length)`` integer ids
        - output: ``(batch, num_classes)`` logits
    """

    def __init__(self, vocab_size: int, num_classes: int, encoding: str = "none", *, dim: int = 32,
                 num_heads: int = 4, max_len: int = 256, causal: bool = False):
        super().__init__()
        if encoding not in ENCODINGS:
            raise ValueError(f"encoding must be one of {ENCODINGS}, got {encoding!r}")
        self.encoding, self.causal = encoding, causal
        self.embed = nn.Embedding(vocab_size, dim)
        if encoding == "sinusoidal":
            self.position = SinusoidalPositionalEncoding(dim, max_len)
        elif encoding == "learned":
            # Same scale as the token embeddings (nn.Embedding starts at standard deviation 1).
            self.position = LearnedPositionalEmbedding(dim, max_len, init_std=1.0)
        else:
            self.position = nn.Identity()
        self.attention = PositionalSelfAttention(dim, num_heads, rotary=encoding == "rope", alibi=encoding == "alibi")
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))
        self.readout = nn.Linear(dim, num_classes)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        if tokens.dim() != 2 or tokens.is_floating_point():
            raise ValueError(f"tokens must be integer ids of shape (batch, length), got {tuple(tokens.shape)} "
                             f"{tokens.dtype}")
        x = self.position(self.embed(tokens))  # (B, L, D)
        x = x + self.attention(self.norm1(x), causal=self.causal)[0]  # (B, L, D)
        x = x + self.mlp(self.norm2(x))  # (B, L, D)
        return self.readout(x.mean(dim=1))  # (B, C)
