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
``OrderClassifierStack`` holds many ``OrderClassifier`` s (every encoding, every seed) as one
module, so that they train together in one pass at the cost of little more than one of them.

Shapes follow ``helpers.attention``: modules are batch-first ``(batch, length, embed_dim)``; per-head
tensors are ``(batch, heads, length, head_dim)``; masks are bool with True = may attend.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from helpers.attention import MultiHeadAttention, causal_mask

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
    "OrderClassifierStack",
    "ENCODINGS",
]


def _check_embeddings(x, embed_dim, max_len, who):
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError(f"{who} expects floating-point embeddings, got {getattr(x, 'dtype', type(x).__name__)}")
    if x.dim() != 3 or x.shape[-1] != embed_dim:
        raise ValueError(f"{who} expects embeddings of shape (batch, length, {embed_dim}), got {tuple(x.shape)}")
    if x.shape[1] > max_len:
        raise ValueError(
            f"{who} was built for at most max_len={max_len} positions, got a sequence of length {x.shape[1]}"
        )


# --------------------------------------------------------------------------------------------
# Sinusoidal encoding: fixed, added to the embeddings
# --------------------------------------------------------------------------------------------


def sinusoidal_encoding(num_positions: int, embed_dim: int, *, base: float = 10000.0, device=None,
                        dtype=torch.float32) -> torch.Tensor:
    """The fixed encoding of "Attention Is All You Need", one row per position.

    ``PE[pos, 2i] = sin(pos / base^(2i/embed_dim))`` and ``PE[pos, 2i+1] = cos(pos / base^(2i/embed_dim))``:
    each pair of columns is a clock turning at its own speed, from one turn every ``2*pi``
    positions (columns 0, 1) to one every ``2*pi*base`` positions (the last columns).

    Args:
        num_positions: number of positions (rows), ``0 .. num_positions - 1``.
        embed_dim: width of the encoding (columns); an odd ``embed_dim`` drops the last cosine.
        base: the longest wavelength is ``2 * pi * base``.

    Shape:
        - output: ``(num_positions, embed_dim)``
    """
    if num_positions < 0 or embed_dim <= 0:
        raise ValueError(f"need num_positions >= 0 and embed_dim > 0, got num_positions={num_positions}, "
                         f"embed_dim={embed_dim}")
    position = torch.arange(num_positions, device=device, dtype=torch.float64)[:, None]  # (P, 1)
    # Frequencies in float64 so that large positions keep their phase exactly.
    frequency = base ** (-torch.arange(0, embed_dim, 2, device=device, dtype=torch.float64) / embed_dim)  # (ceil(E/2),)
    angle = position * frequency  # (P, ceil(embed_dim/2))
    encoding = torch.stack([angle.sin(), angle.cos()], dim=-1).flatten(1)  # (P, 2 * ceil(embed_dim/2)), interleaved
    return encoding[:, :embed_dim].to(dtype)


class SinusoidalPositionalEncoding(nn.Module):
    """Add the sinusoidal encoding to a batch of embeddings (nothing to train).

    Args:
        embed_dim: width of the embeddings.
        max_len: longest sequence it accepts (the table is computed once, up to here).
        dropout: dropout applied after the addition during training (0 by default).
        base: see ``sinusoidal_encoding``.

    Shape:
        - x: ``(batch, length, embed_dim)`` with ``length <= max_len``
        - output: ``(batch, length, embed_dim)``, ``x + PE[:length]``
    """

    def __init__(self, embed_dim: int, max_len: int = 2048, dropout: float = 0.0, *, base: float = 10000.0):
        super().__init__()
        self.embed_dim, self.max_len = embed_dim, max_len
        self.dropout = nn.Dropout(dropout)
        # A buffer moves with .to(device) but is not a parameter; not persistent, so it stays
        # out of state_dict (it is recomputed, never learned).
        self.register_buffer("encoding", sinusoidal_encoding(max_len, embed_dim, base=base), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_embeddings(x, self.embed_dim, self.max_len, "SinusoidalPositionalEncoding")
        return self.dropout(x + self.encoding[: x.shape[1]].to(x.dtype))  # (B, L, D)


class LearnedPositionalEmbedding(nn.Module):
    """Add one trained vector per position (as in BERT and GPT-2).

    Positions never seen in training keep their random initial vectors: the model has no reason
    to do anything sensible there, which notebook 06 measures.

    Args:
        embed_dim: width of the embeddings.
        max_len: number of positions that get a vector.
        dropout: dropout after the addition during training (0 by default).
        init_std: standard deviation of the initial vectors. The default 0.02 is GPT-2's; match it
            to the scale of the token embeddings so that neither drowns the other at the start.

    Shape:
        - x: ``(batch, length, embed_dim)`` with ``length <= max_len``
        - output: ``(batch, length, embed_dim)``
    """

    def __init__(self, embed_dim: int, max_len: int = 512, dropout: float = 0.0, *, init_std: float = 0.02):
        super().__init__()
        self.embed_dim, self.max_len = embed_dim, max_len
        self.embedding = nn.Embedding(max_len, embed_dim)
        nn.init.normal_(self.embedding.weight, std=init_std)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_embeddings(x, self.embed_dim, self.max_len, "LearnedPositionalEmbedding")
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


class PositionalSelfAttention(MultiHeadAttention):
    """``helpers.attention.MultiHeadAttention`` with RoPE on the queries/keys or ALiBi on the scores.

    RoPE is the attention module's own ``rotary`` option; ALiBi's per-head distance penalty is
    passed to it as a score ``bias``. Nothing else differs, so notebook 06 compares the two
    places where a position can enter, with the same attention around them.

    Args:
        embed_dim: width of the input and output.
        num_heads: number of heads; must divide ``embed_dim`` (and ``embed_dim // num_heads`` must
            be even for RoPE).
        rotary: rotate queries and keys with ``apply_rotary``.
        alibi: add ``alibi_bias`` to the scores.

    Shape:
        - x: ``(batch, length, embed_dim)``
        - mask: bool, broadcastable to ``(batch, heads, length, length)``; True = may attend
        - output: ``(batch, length, embed_dim)``; weights: ``(batch, heads, length, length)``
    """

    def __init__(self, embed_dim: int, num_heads: int, *, rotary: bool = False, alibi: bool = False):
        super().__init__(embed_dim, num_heads, rotary=rotary)
        self.alibi = alibi

    def _reset_parameters(self):
        """``nn.Linear``'s default initialisation for every projection, drawn as one packed
        ``(3 * embed_dim, embed_dim)`` input projection, then the output projection: the numbers
        notebook 06 measured its encodings with (``MultiHeadAttention`` starts from
        ``torch.nn.MultiheadAttention``'s Xavier draw instead). Only the starting numbers differ."""
        packed = nn.Linear(self.embed_dim, 3 * self.embed_dim, device=self.q_proj.weight.device,
                           dtype=self.q_proj.weight.dtype)
        with torch.no_grad():
            for proj, weight, bias in zip((self.q_proj, self.k_proj, self.v_proj), packed.weight.chunk(3),
                                          packed.bias.chunk(3), strict=True):
                proj.weight.copy_(weight)
                proj.bias.copy_(bias)
        self.out_proj.reset_parameters()

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, *, causal: bool = False,
                need_weights: bool = True):
        bias = alibi_bias(self.num_heads, x.shape[1], device=x.device) if self.alibi else None  # (H, L, L)
        return super().forward(x, mask=mask, causal=causal, need_weights=need_weights, bias=bias)


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
        embed_dim, num_heads: width and heads of the attention layer.
        max_len: longest sequence (for the absolute encodings).
        causal: attend only to earlier positions.

    Shape:
        - tokens: ``(batch, length)`` integer ids
        - mask: optional bool, broadcastable to ``(batch, heads, length, length)``; True = may
          attend (combined with the causal mask when ``causal``)
        - output: ``(batch, num_classes)`` logits
    """

    def __init__(self, vocab_size: int, num_classes: int, encoding: str = "none", *, embed_dim: int = 32,
                 num_heads: int = 4, max_len: int = 256, causal: bool = False):
        super().__init__()
        if encoding not in ENCODINGS:
            raise ValueError(f"encoding must be one of {ENCODINGS}, got {encoding!r}")
        self.encoding, self.causal, self.max_len = encoding, causal, max_len
        self.embed = nn.Embedding(vocab_size, embed_dim)
        if encoding == "sinusoidal":
            self.position = SinusoidalPositionalEncoding(embed_dim, max_len)
        elif encoding == "learned":
            # Same scale as the token embeddings (nn.Embedding starts at standard deviation 1).
            self.position = LearnedPositionalEmbedding(embed_dim, max_len, init_std=1.0)
        else:
            self.position = nn.Identity()
        self.attention = PositionalSelfAttention(embed_dim, num_heads, rotary=encoding == "rope",
                                                 alibi=encoding == "alibi")
        self.norm1, self.norm2 = nn.LayerNorm(embed_dim), nn.LayerNorm(embed_dim)
        self.mlp = nn.Sequential(nn.Linear(embed_dim, 2 * embed_dim), nn.GELU(), nn.Linear(2 * embed_dim, embed_dim))
        self.readout = nn.Linear(embed_dim, num_classes)

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if tokens.dim() != 2 or tokens.is_floating_point():
            raise ValueError(f"tokens must be integer ids of shape (batch, length), got {tuple(tokens.shape)} "
                             f"{tokens.dtype}")
        return self.readout(self.token_states(tokens, mask).mean(dim=1))  # (B, C)

    def token_states(self, tokens: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """What each position holds just before the average: ``(batch, length, embed_dim)``.

        The read-out is linear, so the logits are ``readout(token_states(tokens).mean(1))``: each
        position adds its own term (notebook 06 reads these terms as the positions' votes).
        """
        x = self.position(self.embed(tokens))  # (B, L, D)
        x = x + self.attention(self.norm1(x), mask, causal=self.causal)[0]  # (B, L, D)
        return x + self.mlp(self.norm2(x))  # (B, L, D)


class OrderClassifierStack(nn.Module):
    """Many ``OrderClassifier`` s side by side, as one module that trains them all at once.

    Notebook 06 trains every encoding over several seeds: 35 tiny models. Trained one by one,
    each optimizer step costs mostly Python and dispatch overhead, not arithmetic. Here the
    parameters of all the models are stacked along a new first dimension (model ``m`` owns slice
    ``m`` of every tensor) and one forward pass computes every model's logits with batched
    matrix products. The models share no parameter: the loss is the sum of the models' own
    losses, so each slice receives exactly its own model's gradient, and AdamW (elementwise)
    updates each slice as it would update that model alone. The encoding of each model is data:
    a sinusoidal table, a learned table, a RoPE rotation, an ALiBi bias or a causal mask is
    switched on per model.

    The forward pass equals calling each model in turn (``tests/test_positional.py`` checks it);
    ``unstack()`` copies the trained slices back into the ``OrderClassifier`` s, which are then
    used as usual.

    Args:
        models: ``OrderClassifier`` s with the same vocabulary, classes, width, heads and
            ``max_len``; their encodings and ``causal`` flags may differ.

    Shape:
        - tokens: ``(models, batch, length)`` integer ids, one batch per model (or
          ``(batch, length)``, the same batch for every model)
        - output: ``(models, batch, num_classes)`` logits
    """

    def __init__(self, models):
        super().__init__()
        models = list(models)
        if not models or not all(isinstance(m, OrderClassifier) for m in models):
            raise TypeError("OrderClassifierStack needs a non-empty list of OrderClassifier models")
        sizes = [(m.embed.num_embeddings, m.readout.out_features, m.attention.embed_dim, m.attention.num_heads,
                  m.max_len) for m in models]
        if len(set(sizes)) > 1:
            raise ValueError("every stacked model needs the same (vocab_size, num_classes, embed_dim, num_heads, "
                             f"max_len), got {sorted(set(sizes))}")
        first = models[0]
        self.models = models  # a plain list: the stack's own parameters are the stacked copies
        self.embed_dim, self.num_heads = first.attention.embed_dim, first.attention.num_heads
        self.max_len = first.max_len
        self.head_dim = self.embed_dim // self.num_heads
        for name, _ in first.named_parameters():
            if name != "position.embedding.weight":
                stacked = torch.stack([m.get_parameter(name).detach() for m in models])  # (M, *shape)
                self.register_parameter(name.replace(".", "_"), nn.Parameter(stacked.clone()))
        # Positions added to the embeddings: a trainable table where the model learns one, the
        # sinusoidal table where it uses that, zeros elsewhere (a zero flag keeps those at zero).
        learned = torch.zeros(len(models), self.max_len, self.embed_dim)
        fixed = torch.zeros(len(models), self.max_len, self.embed_dim)
        for index, m in enumerate(models):
            if m.encoding == "learned":
                learned[index] = m.position.embedding.weight.detach()
            elif m.encoding == "sinusoidal":
                fixed[index] = m.position.encoding
        self.learned_positions = nn.Parameter(learned)  # (M, max_len, D)
        self.register_buffer("fixed_positions", fixed, persistent=False)  # (M, max_len, D)
        encodings = [m.encoding for m in models]
        for name, flag in (("is_learned", [e == "learned" for e in encodings]),
                           ("is_rope", [e == "rope" for e in encodings]),
                           ("is_alibi", [e == "alibi" for e in encodings]),
                           ("is_causal", [m.causal for m in models])):
            self.register_buffer(name, torch.tensor(flag), persistent=False)  # (M,) bool: which models use what

    def _linear(self, x, name):
        weight, bias = getattr(self, name + "_weight"), getattr(self, name + "_bias")  # (M, out, in), (M, out)
        out = torch.baddbmm(bias[:, None], x.flatten(1, -2), weight.transpose(1, 2))  # (M, B*L, out)
        return out.view(*x.shape[:-1], -1)  # (M, B, L, out)

    def _norm(self, x, name):
        weight, bias = getattr(self, name + "_weight"), getattr(self, name + "_bias")  # (M, D) each
        return F.layer_norm(x, (self.embed_dim,)) * weight[:, None, None] + bias[:, None, None]

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        num_models = len(self.models)
        if tokens.dim() == 2:
            tokens = tokens.expand(num_models, -1, -1)
        if tokens.dim() != 3 or tokens.shape[0] != num_models or tokens.is_floating_point():
            raise ValueError(f"tokens must be integer ids of shape ({num_models}, batch, length) or (batch, length), "
                             f"got {tuple(tokens.shape)} {tokens.dtype}")
        _, batch, length = tokens.shape
        if length > self.max_len:
            raise ValueError(f"the models were built for at most max_len={self.max_len} positions, got {length}")
        x = self.embed_weight[torch.arange(num_models, device=tokens.device)[:, None, None], tokens]  # (M, B, L, D)
        positions = self.learned_positions * self.is_learned[:, None, None] + self.fixed_positions  # (M, P, D)
        x = x + positions[:, None, :length]  # (M, B, L, D)
        # The attention layer: PositionalSelfAttention with a model dimension in front.
        h = self._norm(x, "norm1")  # (M, B, L, D)
        q, k, v = (self._linear(h, f"attention_{name}_proj").view(num_models, batch, length, self.num_heads,
                                                                   self.head_dim).transpose(2, 3)
                   for name in ("q", "k", "v"))  # (M, B, H, L, hd) each: split_heads with a model dimension
        if self.is_rope.any():  # rotate the queries and keys of the RoPE models only
            rope = self.is_rope.nonzero()[:, 0]
            q, k = q.index_copy(0, rope, apply_rotary(q[rope])), k.index_copy(0, rope, apply_rotary(k[rope]))
        # ALiBi's bias and the causal mask (as -inf) of each model, added to its scores in one go.
        bias = self.is_alibi[:, None, None, None] * alibi_bias(self.num_heads, length, device=x.device)  # (M, H, L, L)
        future = ~causal_mask(length, device=x.device)  # (L, L): True where j > i
        bias = bias.masked_fill(self.is_causal[:, None, None, None] & future, float("-inf")).to(x.dtype)
        scores = q @ k.transpose(-2, -1) / math.sqrt(self.head_dim) + bias[:, None]  # (M, B, H, L, L)
        weights = torch.softmax(scores, dim=-1)  # every query may attend at least to itself: no empty row
        out = (weights @ v).transpose(2, 3).reshape(num_models, batch, length, self.embed_dim)  # (M, B, L, D)
        x = x + self._linear(out, "attention_out_proj")
        # The MLP, then the average over positions and the read-out.
        h = F.gelu(self._linear(self._norm(x, "norm2"), "mlp_0"))  # (M, B, L, 2D)
        x = x + self._linear(h, "mlp_2")  # (M, B, L, D)
        return self._linear(x.mean(dim=2, keepdim=True), "readout")[:, :, 0]  # (M, B, C)

    def unstack(self) -> list:
        """Copy each model's trained slice back into its ``OrderClassifier``; return the models (in eval mode)."""
        with torch.no_grad():
            for index, m in enumerate(self.models):
                for name, p in m.named_parameters():
                    if name == "position.embedding.weight":
                        p.copy_(self.learned_positions[index])
                    else:
                        p.copy_(getattr(self, name.replace(".", "_"))[index])
                m.eval()
        return self.models
