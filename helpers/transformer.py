"""The Transformer encoder-decoder, built from ``helpers.attention.MultiHeadAttention``.

Notebook 08 derives each piece; notebook 09 trains it against the recurrent models of 03;
notebook 10 times its key/value cache; notebook 11 reuses ``EncoderLayer`` for a vision model.
The file reads top to bottom: feed-forward -> encoder layer -> decoder layer -> stacks -> model
-> greedy decoding.

Conventions
-----------
Batch-first everywhere: ``(batch, length, embed_dim)``. Masks follow ``helpers.attention``: bool,
**True = may attend**. Token ids: ``src`` and ``tgt`` are ``(batch, length)`` integer tensors,
right-padded with ``pad_id``; the model masks padded source positions by itself.

Key/value cache
---------------
Decoding one token at a time without a cache runs the decoder over the whole prefix at every
step: step ``t`` recomputes the keys and values of the ``t - 1`` positions it already computed.
With ``cache = model.new_cache()`` and ``model.decode(new_tokens, memory, memory_mask,
cache=cache)``, each decoder layer hands its two attention modules a
``helpers.attention.KVCache``: self-attention appends the new positions' keys/values ``(batch,
heads, t, head_dim)``; cross-attention projects the encoder's output once, on the first call.
``greedy_decode(..., use_cache=True)`` does this and returns exactly the tokens of
``use_cache=False`` (tested). The cache is for inference: use it in ``eval()`` mode.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from helpers.attention import KVCache, MultiHeadAttention
from helpers.checks import check_sequence, check_token_ids
from helpers.positional import sinusoidal_encoding

__all__ = [
    "FeedForward",
    "EncoderLayer",
    "DecoderLayer",
    "Encoder",
    "Decoder",
    "DecoderCache",
    "Transformer",
    "greedy_decode",
    "Seq2SeqTransformer",
    "linear_warmup",
]

_ACTIVATIONS = {"relu": F.relu, "gelu": F.gelu}


def _activation(name):
    if name not in _ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, got {name!r}")
    return name


# --------------------------------------------------------------------------------------------
# Position-wise feed-forward
# --------------------------------------------------------------------------------------------


class FeedForward(nn.Module):
    """Two linear layers with a nonlinearity between, applied to every position on its own.

    Attention mixes information *across* positions; this MLP then transforms each position's
    vector, with the same weights at every position.

    Shape:
        - x: ``(..., embed_dim)``; output: same shape.
    """

    def __init__(self, embed_dim: int, dim_feedforward: int, dropout: float = 0.0, activation: str = "relu"):
        super().__init__()
        self.activation = _activation(activation)
        # Named as in torch.nn.TransformerEncoderLayer, so weights copy across one to one.
        self.linear1 = nn.Linear(embed_dim, dim_feedforward)
        self.linear2 = nn.Linear(dim_feedforward, embed_dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear2(self.dropout(_ACTIVATIONS[self.activation](self.linear1(x))))


# --------------------------------------------------------------------------------------------
# Encoder layer
# --------------------------------------------------------------------------------------------


class EncoderLayer(nn.Module):
    """Self-attention then feed-forward, each wrapped in a residual connection and a LayerNorm.

    Post-norm (``norm_first=False``, the 2017 paper) normalises *after* adding the residual:
    ``x = norm(x + sublayer(x))``. Pre-norm (``norm_first=True``, most models today) normalises
    the sublayer's *input* and leaves the residual path untouched: ``x = x + sublayer(norm(x))``,
    which keeps gradients well-scaled in deep stacks (notebook 08 measures it).

    Args:
        embed_dim: width of every position's vector.
        num_heads: attention heads; must divide ``embed_dim``.
        dim_feedforward: hidden width of the feed-forward MLP.
        dropout: dropout on attention weights, after each sublayer and inside the MLP.
        norm_first: pre-norm when True (the default, as in most models today), post-norm when False
            (the default of ``torch.nn``, whose layers copy across with their own setting).
        activation: ``"relu"`` or ``"gelu"``.

    Shape:
        - x: ``(batch, length, embed_dim)``; output: same shape.
        - mask: bool, broadcastable to ``(batch, heads, length, length)``; True = may attend.
          For padding: ``padding_mask(lengths)[:, None, None, :]``.

    With ``need_weights=True`` the layer keeps its attention weights ``(batch, heads, length,
    length)`` in ``self.attention_weights`` (for plots); otherwise it uses the fused kernel.
    """

    def __init__(self, embed_dim: int, num_heads: int, dim_feedforward: int, dropout: float = 0.0, *,
                 norm_first: bool = True, activation: str = "relu", num_kv_heads: int | None = None,
                 rotary: bool = False):
        super().__init__()
        self.embed_dim = embed_dim
        self.norm_first = norm_first
        self.self_attn = MultiHeadAttention(embed_dim, num_heads, dropout=dropout, num_kv_heads=num_kv_heads,
                                            rotary=rotary)
        self.feed_forward = FeedForward(embed_dim, dim_feedforward, dropout, activation)
        self.norm1 = nn.LayerNorm(embed_dim)
        self.norm2 = nn.LayerNorm(embed_dim)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.attention_weights = None

    def _attend(self, x, mask, causal, cache, need_weights):
        out, weights = self.self_attn(x, mask=mask, causal=causal, cache=cache, need_weights=need_weights)
        self.attention_weights = weights
        return self.dropout1(out)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, *, causal: bool = False,
                cache: KVCache | None = None, need_weights: bool = False):
        if cache is None:  # the cached path runs once per generated token: keep it lean
            check_sequence("x", x, self.embed_dim)
        if self.norm_first:
            x = x + self._attend(self.norm1(x), mask, causal, cache, need_weights)
            x = x + self.dropout2(self.feed_forward(self.norm2(x)))
        else:
            x = self.norm1(x + self._attend(x, mask, causal, cache, need_weights))
            x = self.norm2(x + self.dropout2(self.feed_forward(x)))
        return x

    @classmethod
    def from_torch(cls, layer: nn.TransformerEncoderLayer) -> "EncoderLayer":
        """An ``EncoderLayer`` holding the same weights as a ``torch.nn.TransformerEncoderLayer``.

        The copy is batch-first whatever ``layer.batch_first`` says, and its masks mean True =
        may attend (``torch.nn``'s ``src_mask``/``src_key_padding_mask`` mean the opposite).
        """
        if not isinstance(layer, nn.TransformerEncoderLayer):
            raise TypeError(f"expected a torch.nn.TransformerEncoderLayer, got {type(layer).__name__}")
        new = cls(layer.self_attn.embed_dim, layer.self_attn.num_heads, layer.linear1.out_features,
                  layer.dropout.p, norm_first=layer.norm_first, activation=_torch_activation(layer))
        new.self_attn = MultiHeadAttention.from_torch(layer.self_attn)
        _copy_common(new, layer, ("norm1", "norm2"))
        return new


def _torch_activation(layer):
    activation = layer.activation
    if activation is F.relu or isinstance(activation, nn.ReLU):
        return "relu"
    if activation is F.gelu or isinstance(activation, nn.GELU):
        return "gelu"
    raise ValueError(f"only relu and gelu activations can be copied from a torch.nn layer, got {activation}")


def _copy_common(new, layer, norms):
    new.to(device=layer.linear1.weight.device, dtype=layer.linear1.weight.dtype)
    new.feed_forward.linear1.load_state_dict(layer.linear1.state_dict())
    new.feed_forward.linear2.load_state_dict(layer.linear2.state_dict())
    for name in norms:
        getattr(new, name).load_state_dict(getattr(layer, name).state_dict())
        getattr(new, name).eps = getattr(layer, name).eps


# --------------------------------------------------------------------------------------------
# Decoder layer, with an optional key/value cache
# --------------------------------------------------------------------------------------------


class DecoderLayer(nn.Module):
    """Causal self-attention, cross-attention over the encoder's output, then feed-forward.

    Each of the three sublayers has its residual connection and LayerNorm, post-norm or pre-norm
    as in ``EncoderLayer``. The self-attention is causal: position ``t`` sees targets ``0..t``
    only, so training on a whole target sequence at once cannot peek at the answer.

    Args: as ``EncoderLayer``.

    Shape:
        - x: ``(batch, T, embed_dim)``, the target positions (with a cache: the *new* ones only).
        - memory: ``(batch, S, embed_dim)``, the encoder's output.
        - memory_mask: bool, broadcastable to ``(batch, heads, T, S)``; True = may attend. For
          source padding: ``padding_mask(src_lengths)[:, None, None, :]``.
        - output: ``(batch, T, embed_dim)``.

    With ``need_weights=True`` (no cache) the layer keeps ``self.attention_weights`` ``(batch, heads,
    T, T)`` and ``self.cross_attention_weights`` ``(batch, heads, T, S)`` for plots.
    """

    def __init__(self, embed_dim: int, num_heads: int, dim_feedforward: int, dropout: float = 0.0, *,
                 norm_first: bool = True, activation: str = "relu"):
        super().__init__()
        self.embed_dim = embed_dim
        self.norm_first = norm_first
        self.self_attn = MultiHeadAttention(embed_dim, num_heads, dropout=dropout)
        self.cross_attn = MultiHeadAttention(embed_dim, num_heads, dropout=dropout)
        self.feed_forward = FeedForward(embed_dim, dim_feedforward, dropout, activation)
        self.norm1 = nn.LayerNorm(embed_dim)
        self.norm2 = nn.LayerNorm(embed_dim)
        self.norm3 = nn.LayerNorm(embed_dim)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.dropout3 = nn.Dropout(dropout)
        self.attention_weights = self.cross_attention_weights = None

    def _self_attend(self, x, cache, need_weights):
        out, self.attention_weights = self.self_attn(x, causal=True, need_weights=need_weights,
                                                cache=None if cache is None else cache["self"])
        return self.dropout1(out)

    def _cross_attend(self, x, memory, memory_mask, cache, need_weights):
        out, self.cross_attention_weights = self.cross_attn(x, memory, mask=memory_mask, need_weights=need_weights,
                                                  cache=None if cache is None else cache["cross"])
        return self.dropout2(out)

    def forward(self, x: torch.Tensor, memory: torch.Tensor, memory_mask: torch.Tensor | None = None, *,
                cache: dict | None = None, need_weights: bool = False) -> torch.Tensor:
        if cache is None:  # the cached path runs once per generated token: keep it lean
            check_sequence("x", x, self.embed_dim)
            check_sequence("memory", memory, self.embed_dim)
            if x.shape[0] != memory.shape[0]:
                raise ValueError(f"x and memory must have the same batch size: shapes x {tuple(x.shape)}, "
                                 f"memory {tuple(memory.shape)}")
        if self.norm_first:
            x = x + self._self_attend(self.norm1(x), cache, need_weights)
            x = x + self._cross_attend(self.norm2(x), memory, memory_mask, cache, need_weights)
            x = x + self.dropout3(self.feed_forward(self.norm3(x)))
        else:
            x = self.norm1(x + self._self_attend(x, cache, need_weights))
            x = self.norm2(x + self._cross_attend(x, memory, memory_mask, cache, need_weights))
            x = self.norm3(x + self.dropout3(self.feed_forward(x)))
        return x

    @classmethod
    def from_torch(cls, layer: nn.TransformerDecoderLayer) -> "DecoderLayer":
        """A ``DecoderLayer`` with the weights of a ``torch.nn.TransformerDecoderLayer`` (batch-first,
        True = may attend; its self-attention is always causal)."""
        if not isinstance(layer, nn.TransformerDecoderLayer):
            raise TypeError(f"expected a torch.nn.TransformerDecoderLayer, got {type(layer).__name__}")
        new = cls(layer.self_attn.embed_dim, layer.self_attn.num_heads, layer.linear1.out_features,
                  layer.dropout.p, norm_first=layer.norm_first, activation=_torch_activation(layer))
        new.self_attn = MultiHeadAttention.from_torch(layer.self_attn)
        new.cross_attn = MultiHeadAttention.from_torch(layer.multihead_attn)
        _copy_common(new, layer, ("norm1", "norm2", "norm3"))
        return new


# --------------------------------------------------------------------------------------------
# Stacks
# --------------------------------------------------------------------------------------------


class Encoder(nn.Module):
    """``num_layers`` encoder layers and a final LayerNorm (as ``torch.nn.TransformerEncoder`` in
    ``torch.nn.Transformer``). Arguments and shapes as ``EncoderLayer``."""

    def __init__(self, embed_dim: int, num_heads: int, dim_feedforward: int, num_layers: int, dropout: float = 0.0,
                 *, norm_first: bool = True, activation: str = "relu"):
        super().__init__()
        self.layers = nn.ModuleList(
            EncoderLayer(embed_dim, num_heads, dim_feedforward, dropout, norm_first=norm_first, activation=activation)
            for _ in range(num_layers))
        # Pre-norm leaves the residual stream un-normalised: the final norm does it once at the end.
        self.norm = nn.LayerNorm(embed_dim)

    def forward(self, x, mask=None, *, need_weights=False):
        for layer in self.layers:
            x = layer(x, mask, need_weights=need_weights)
        return self.norm(x)


class DecoderCache:
    """What a ``Decoder`` keeps between decoding steps: two ``helpers.attention.KVCache`` per layer.

    ``layers[i]["self"]`` holds layer ``i``'s self-attention keys/values of every position decoded
    so far, ``(batch, heads, length, head_dim)``; ``layers[i]["cross"]`` the cross-attention
    keys/values of the encoder's output, ``(batch, heads, S, head_dim)``, projected once.
    ``length`` counts the positions cached, so the next token's positional encoding starts there.
    """

    def __init__(self, num_layers: int):
        self.layers = [{"self": KVCache(), "cross": KVCache()} for _ in range(num_layers)]

    @property
    def length(self) -> int:
        return self.layers[0]["self"].length if self.layers else 0


class Decoder(nn.Module):
    """``num_layers`` decoder layers and a final LayerNorm. Arguments and shapes as
    ``DecoderLayer``; ``cache`` is a ``KVCache`` (or None)."""

    def __init__(self, embed_dim: int, num_heads: int, dim_feedforward: int, num_layers: int, dropout: float = 0.0,
                 *, norm_first: bool = True, activation: str = "relu"):
        super().__init__()
        self.layers = nn.ModuleList(
            DecoderLayer(embed_dim, num_heads, dim_feedforward, dropout, norm_first=norm_first, activation=activation)
            for _ in range(num_layers))
        self.norm = nn.LayerNorm(embed_dim)

    def forward(self, x, memory, memory_mask=None, *, cache: DecoderCache | None = None, need_weights=False):
        for index, layer in enumerate(self.layers):
            x = layer(x, memory, memory_mask, cache=None if cache is None else cache.layers[index],
                      need_weights=need_weights)
        return self.norm(x)


# --------------------------------------------------------------------------------------------
# The full encoder-decoder
# --------------------------------------------------------------------------------------------


class Transformer(nn.Module):
    """Embeddings + sinusoidal positions -> encoder and decoder -> a linear head over the target
    vocabulary.

    Args:
        src_vocab_size, tgt_vocab_size: number of token ids on each side.
        embed_dim, num_heads, num_encoder_layers, num_decoder_layers, dim_feedforward, dropout,
            norm_first: as ``torch.nn.Transformer``. The default ``dropout=0.0`` suits the small
            synthetic tasks of the series, which do not overfit in the few hundred steps they train.
        max_len: the longest sequence the positional table covers.
        pad_id: the source padding token; padded source positions are masked out of attention.

    Shape:
        - src: ``(batch, S)`` token ids; tgt: ``(batch, T)`` token ids (the decoder's input,
          starting with BOS).
        - output: logits ``(batch, T, tgt_vocab_size)``; position ``t`` predicts target ``t + 1``
          from ``tgt[:, :t + 1]`` and the whole source.
    """

    def __init__(self, src_vocab_size: int, tgt_vocab_size: int, *, embed_dim: int = 64, num_heads: int = 4,
                 num_encoder_layers: int = 2, num_decoder_layers: int = 2, dim_feedforward: int = 128,
                 dropout: float = 0.0, norm_first: bool = True, max_len: int = 512, pad_id: int = 0):
        super().__init__()
        self.embed_dim, self.max_len, self.pad_id = embed_dim, max_len, pad_id
        self.src_vocab_size, self.tgt_vocab_size = src_vocab_size, tgt_vocab_size
        self.src_embedding = nn.Embedding(src_vocab_size, embed_dim)
        self.tgt_embedding = nn.Embedding(tgt_vocab_size, embed_dim)
        # A fixed table, not a parameter: it is the same sinusoidal encoding as notebook 06's.
        self.register_buffer("positions", sinusoidal_encoding(max_len, embed_dim).float(), persistent=False)
        self.dropout = nn.Dropout(dropout)
        self.encoder = Encoder(embed_dim, num_heads, dim_feedforward, num_encoder_layers, dropout,
                               norm_first=norm_first)
        self.decoder = Decoder(embed_dim, num_heads, dim_feedforward, num_decoder_layers, dropout,
                               norm_first=norm_first)
        self.head = nn.Linear(embed_dim, tgt_vocab_size)
        for embedding in (self.src_embedding, self.tgt_embedding):
            # Entries of size embed_dim^-1/2, so that after the sqrt(embed_dim) scaling in _embed they
            # are of size 1, like the positional encoding's: neither drowns the other.
            nn.init.normal_(embedding.weight, std=embed_dim ** -0.5)

    def _embed(self, embedding, tokens, offset=0):
        # As in the original paper: embeddings scaled by sqrt(embed_dim) (see __init__), plus positions.
        x = embedding(tokens) * math.sqrt(self.embed_dim)  # (B, L, E)
        return self.dropout(x + self.positions[offset:offset + tokens.shape[1]])

    def _check_tokens(self, name, tokens, vocab_size, offset=0):
        check_token_ids(name, tokens, vocab_size)
        if offset + tokens.shape[1] > self.max_len:
            raise ValueError(f"{name} reaches position {offset + tokens.shape[1]} but max_len is {self.max_len}")

    def encode(self, src: torch.Tensor, *, need_weights: bool = False):
        """Return the encoder's output ``(batch, S, embed_dim)`` and the source mask ``(batch, 1, 1, S)``
        (True at real tokens), which the decoder's cross-attention uses."""
        self._check_tokens("src", src, self.src_vocab_size)
        memory_mask = (src != self.pad_id)[:, None, None, :]  # (B, 1, 1, S)
        memory = self.encoder(self._embed(self.src_embedding, src), memory_mask, need_weights=need_weights)
        return memory, memory_mask

    def decode(self, tgt: torch.Tensor, memory: torch.Tensor, memory_mask: torch.Tensor | None = None, *,
               cache: DecoderCache | None = None, need_weights: bool = False) -> torch.Tensor:
        """Logits ``(batch, T, tgt_vocab_size)`` for the target positions in ``tgt``.

        With a ``cache``, ``tgt`` holds only the positions not decoded yet; they are placed after
        the ``cache.length`` cached ones.
        """
        offset = 0 if cache is None else cache.length
        if cache is None:
            self._check_tokens("tgt", tgt, self.tgt_vocab_size)
        elif offset + tgt.shape[1] > self.max_len:
            raise ValueError(f"decoding position {offset + tgt.shape[1]} but max_len is {self.max_len}")
        return self._decode(tgt, memory, memory_mask, cache=cache, need_weights=need_weights)

    def _decode(self, tgt, memory, memory_mask=None, *, cache=None, need_weights=False):
        # decode without the checks on token ids: greedy_decode feeds ids the model produced itself,
        # and checking their range (tokens.min()) would make a GPU wait for the CPU at every step.
        offset = 0 if cache is None else cache.length
        if offset + tgt.shape[1] > self.max_len:
            raise ValueError(f"decoding position {offset + tgt.shape[1]} but max_len is {self.max_len}")
        x = self._embed(self.tgt_embedding, tgt, offset)
        return self.head(self.decoder(x, memory, memory_mask, cache=cache, need_weights=need_weights))

    def forward(self, src: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
        memory, memory_mask = self.encode(src)
        return self.decode(tgt, memory, memory_mask)

    def new_cache(self) -> DecoderCache:
        """An empty key/value cache for ``decode``."""
        return DecoderCache(len(self.decoder.layers))


# --------------------------------------------------------------------------------------------
# Learning-rate warm-up
# --------------------------------------------------------------------------------------------


def linear_warmup(optimizer: torch.optim.Optimizer, warmup_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Raise the learning rate linearly from ``lr / warmup_steps`` to ``lr`` over the first
    ``warmup_steps`` optimizer steps, then hold it (the 2017 paper warmed up, then decayed).

    The returned scheduler steps itself after every ``optimizer.step()`` (a step post-hook), so a
    training loop that knows nothing about schedules, ``helpers.train.fit(...,
    optimizer=optimizer)``, applies it. Step ``k`` (counting from 1) runs at
    ``lr * min(1, k / warmup_steps)``.

    Why warm up: at initialization a post-norm stack's gradients are badly scaled (Xiong et al.,
    2020), and Adam's first updates, taken at the full learning rate, can throw the weights where
    training never recovers. Small steps first let the network reach a region where the full
    rate is safe. Notebook 08 measures it.
    """
    if not isinstance(warmup_steps, int) or warmup_steps < 1:
        raise ValueError(f"warmup_steps must be a positive integer, got {warmup_steps!r}")
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda done: min(1.0, (done + 1) / warmup_steps))
    optimizer.register_step_post_hook(lambda *_: scheduler.step())
    return scheduler


# --------------------------------------------------------------------------------------------
# Greedy decoding
# --------------------------------------------------------------------------------------------


@torch.no_grad()
def greedy_decode(model: Transformer, src: torch.Tensor, max_new_tokens: int, *, bos_id: int, eos_id: int | None = None,
                  use_cache: bool = True) -> torch.Tensor:
    """Generate up to ``max_new_tokens`` tokens per source, always taking the most likely next token.

    Args:
        model: a ``Transformer`` (put in ``eval()`` mode by the caller when it has dropout).
        src: ``(batch, S)`` source token ids.
        max_new_tokens: the most tokens to generate.
        bos_id: the token that starts every target.
        eos_id: the token that ends one; after it, a sequence gets ``model.pad_id`` and decoding
            stops once every sequence has ended. None: always generate ``max_new_tokens`` tokens.
        use_cache: keep keys/values between steps (``KVCache``); False recomputes the decoder over
            the whole prefix at every step. Both give the same tokens.

    Returns:
        ``(batch, n)`` generated ids, BOS excluded, ``n <= max_new_tokens``.
    """
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be at least 1, got {max_new_tokens}")
    memory, memory_mask = model.encode(src)
    batch = src.shape[0]
    tokens = torch.full((batch, 1), bos_id, dtype=torch.long, device=src.device)  # (B, 1): BOS
    finished = torch.zeros(batch, dtype=torch.bool, device=src.device)
    cache = model.new_cache() if use_cache else None
    for _ in range(max_new_tokens):
        if use_cache:
            logits = model._decode(tokens[:, -1:], memory, memory_mask, cache=cache)  # (B, 1, V)
        else:
            logits = model._decode(tokens, memory, memory_mask)  # (B, t, V): the whole prefix again
        next_token = logits[:, -1].argmax(dim=-1)  # (B,)
        if eos_id is not None:
            next_token = next_token.masked_fill(finished, model.pad_id)
            finished |= next_token == eos_id
        tokens = torch.cat([tokens, next_token[:, None]], dim=1)  # (B, t + 1)
        if eos_id is not None and bool(finished.all()):
            break
    return tokens[:, 1:]


# --------------------------------------------------------------------------------------------
# Behind the recurrent models' interface (notebook 09)
# --------------------------------------------------------------------------------------------


class Seq2SeqTransformer(nn.Module):
    """A ``Transformer`` with the interface of ``helpers.recurrent.Seq2Seq``.

    Notebook 09 trains and scores the Transformer with exactly the code that trains and scores
    the GRU models (``train.train_seq2seq``, ``train.exact_match``, ``train.translate``),
    so the comparison differs only in the model.

    Args:
        source_vocab, target_vocab: vocabularies with ``len()`` and ``pad_id``, ``bos_id``,
            ``eos_id`` (``helpers.data.Vocab``).
        **options: passed to ``Transformer`` (``embed_dim``, ``num_heads``, ...).

    Shape:
        - source: ``(batch, S)`` ids padded with ``pad_id``; source_lengths: ``(batch,)`` (the
          padding is found from ``pad_id``; the lengths are only checked).
        - target_in: ``(batch, T)`` ids starting with ``<bos>``.
        - output: logits ``(batch, T, target vocab)`` and ``None`` (where ``Seq2Seq`` returns its
          alignment; the Transformer's per-head weights come from ``attention_maps``).
    """

    def __init__(self, source_vocab, target_vocab, **options):
        super().__init__()
        self.source_vocab, self.target_vocab = source_vocab, target_vocab
        self.transformer = Transformer(len(source_vocab), len(target_vocab), pad_id=source_vocab.pad_id, **options)

    def _check_lengths(self, source, source_lengths):
        lengths = (source != self.source_vocab.pad_id).sum(dim=1)
        if not torch.equal(lengths.cpu(), torch.as_tensor(source_lengths).cpu()):
            raise ValueError(f"source_lengths {torch.as_tensor(source_lengths).tolist()} do not match the "
                             f"non-padding tokens of source {lengths.tolist()}")

    def forward(self, source, source_lengths, target_in):
        self._check_lengths(source, source_lengths)
        return self.transformer(source, target_in), None

    @torch.no_grad()
    def greedy_decode(self, source, source_lengths, max_new_tokens: int | None = None):
        """As ``Seq2Seq.greedy_decode``: ``(tokens, None)``; rows end in ``<eos>`` then padding."""
        self._check_lengths(source, source_lengths)
        max_new_tokens = int(torch.as_tensor(source_lengths).max()) + 2 if max_new_tokens is None else max_new_tokens
        tokens = greedy_decode(self.transformer, source, max_new_tokens, bos_id=self.target_vocab.bos_id,
                               eos_id=self.target_vocab.eos_id)
        return tokens, None

    @torch.no_grad()
    def attention_maps(self, source, target_in, layer: int = -1):
        """Cross-attention weights ``(batch, heads, T, S)`` of one decoder layer (default: the last)
        under teacher forcing: row ``t`` is where the prediction of target token ``t`` looked."""
        memory, memory_mask = self.transformer.encode(source)
        self.transformer.decode(target_in, memory, memory_mask, need_weights=True)
        return self.transformer.decoder.layers[layer].cross_attention_weights
