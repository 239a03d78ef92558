"""A GRU encoder-decoder, without and with attention (notebook 03; reused by notebook 09).

Reads top to bottom: the encoder, three decoders that differ only in where their context
vector comes from, and the model that joins them, with greedy decoding.

- ``PlainDecoder``: one fixed context vector, the encoder's summary of the whole input, at every
  step (Cho et al., 2014). Everything the decoder knows about the input must fit in it.
- ``BahdanauDecoder``: a new context at every step, attention over all encoder states with the
  decoder's *previous* state as the query and additive scoring (Bahdanau et al., 2015).
- ``LuongDecoder``: attention with the decoder's *current* state as the query and bilinear
  ("general") scoring, mixed into an attentional state that predicts the word (Luong et al.,
  2015, without input feeding, so that training runs all steps in parallel).

Masks follow the package convention (``helpers.attention``): True = may attend; padding in the
source is never attended to.

Typical use (notebooks 03 and 09; the loss, greedy evaluation and training loop are in
``helpers.train``, shared with the Transformer of notebook 09)::

    from helpers import data, recurrent, train
    train_pairs, valid = data.translation_split()
    dev = data.translation_dev()                          # for curves and choices; valid only reports
    model = recurrent.Seq2Seq(attention="bahdanau")
    history = train.train_seq2seq(model, train_pairs, dev)
    train.exact_match(model, valid)                       # one number: the share translated exactly
    train.exact_match(model, valid, by_length=True)       # {3: ..., 4: ..., ..., 12: ...}
"""

import torch
from torch import nn

from helpers.attention import masked_softmax, padding_mask
from helpers.data import SOURCE_VOCAB, TARGET_VOCAB, Vocab
from helpers.scoring import AdditiveScore, GeneralScore

__all__ = [
    "GRUEncoder", "PlainDecoder", "BahdanauDecoder", "LuongDecoder", "Seq2Seq", "NOTEBOOK_03_SIZE",
]

# The size notebook 03 trains (``Seq2Seq(attention, **NOTEBOOK_03_SIZE)``); its training recipe is
# ``helpers.train.SEQ2SEQ_RECIPE``. Notebook 09 reads both from here to describe notebook 03's models.
NOTEBOOK_03_SIZE = {"embed_dim": 16, "hidden_size": 32}


# --------------------------------------------------------------------------------------------
# Encoder
# --------------------------------------------------------------------------------------------


class GRUEncoder(nn.Module):
    """Embeds the source and reads it with a bidirectional GRU.

    Each position's state sees the whole input (left to right and right to left), so it can
    say both *what* the token is and *where* it sits.

    Args:
        vocab_size: source vocabulary size; id 0 is padding.
        embed_dim: width of the token embeddings.
        hidden_size: width of each direction's GRU state.

    Shape:
        - source: ``(batch, S)`` ids; lengths: ``(batch,)``
        - outputs ``memory``: ``(batch, S, 2 * hidden_size)`` (zeros at padding) and
          ``summary``: ``(batch, 2 * hidden_size)``, the last state of each direction.
    """

    def __init__(self, vocab_size: int, embed_dim: int, hidden_size: int):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.gru = nn.GRU(embed_dim, hidden_size, batch_first=True, bidirectional=True)

    def forward(self, source: torch.Tensor, lengths: torch.Tensor):
        embedded = self.embedding(source)  # (B, S, E)
        # Packing makes the backward direction start at each sequence's last real token.
        packed = nn.utils.rnn.pack_padded_sequence(embedded, lengths.cpu(), batch_first=True, enforce_sorted=False)
        packed_memory, last = self.gru(packed)  # last: (2, B, H)
        memory, _ = nn.utils.rnn.pad_packed_sequence(packed_memory, batch_first=True,
                                                     total_length=source.shape[1])  # (B, S, 2H)
        summary = torch.cat([last[0], last[1]], dim=-1)  # (B, 2H)
        return memory, summary


# --------------------------------------------------------------------------------------------
# Decoders: one step at a time. ``start`` makes the first state from the encoder's output;
# ``step`` returns (logits, next state, weights or None). A state is whatever the decoder
# carries from step to step (a tuple of tensors). Every decoder also has ``forward_all``: all
# steps under teacher forcing, the same numbers as ``step`` in a loop, arranged to run faster
# (Plain and Luong run their GRU over the whole target in one call; Bahdanau still loops).
# --------------------------------------------------------------------------------------------


class PlainDecoder(nn.Module):
    """GRU decoder with one fixed context vector: the encoder's summary, fed at every step.

    The context never changes, so under teacher forcing the whole target runs through the GRU
    in one call (``forward_all``); greedy decoding uses ``step``, one token at a time.

    Shape (of ``step``):
        - token: ``(batch,)`` previous output ids
        - state: ``((batch, hidden_size), (batch, memory_dim))``: the GRU state and the context
        - memory: ``(batch, S, memory_dim)``, ignored; mask: ``(batch, S)``, ignored
        - returns logits ``(batch, vocab_size)``, the next state, and ``None`` (no weights)
    """

    def __init__(self, vocab_size: int, embed_dim: int, hidden_size: int, memory_dim: int):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.init_state = nn.Linear(memory_dim, hidden_size)
        self.gru = nn.GRU(embed_dim + memory_dim, hidden_size, batch_first=True)
        self.out = nn.Linear(hidden_size + memory_dim + embed_dim, vocab_size)

    def start(self, memory, summary, mask):
        # The state carries the context along: it is the same at every step.
        return torch.tanh(self.init_state(summary)), summary  # (B, H), (B, 2H)

    def forward_all(self, target_in, state, memory, mask):
        """All steps at once under teacher forcing: logits ``(batch, T, vocab)`` and ``None``."""
        hidden, context = state
        embedded = self.embedding(target_in)  # (B, T, E)
        context = context[:, None, :].expand(-1, target_in.shape[1], -1)  # (B, T, 2H)
        outputs, _ = self.gru(torch.cat([embedded, context], dim=-1), hidden[None])  # (B, T, H)
        return self.out(torch.cat([outputs, context, embedded], dim=-1)), None  # (B, T, V)

    def step(self, token, state, memory, mask):
        hidden, context = state
        embedded = self.embedding(token)  # (B, E)
        _, hidden = self.gru(torch.cat([embedded, context], dim=-1)[:, None, :], hidden[None])  # (1, B, H)
        hidden = hidden[0]  # (B, H)
        logits = self.out(torch.cat([hidden, context, embedded], dim=-1))  # (B, V)
        return logits, (hidden, context), None


class BahdanauDecoder(nn.Module):
    """GRU decoder that attends over the encoder states before each step (additive scoring).

    The query is the decoder's previous state: "given what I have written so far, which source
    positions matter for the next word?" The context (a weighted sum of encoder states) is fed to
    the GRU and to the output layer. Because each step's query depends on the previous step,
    the steps must run one after another, in training too.

    Shape (of ``step``): as ``PlainDecoder``, with state ``((batch, hidden_size), (batch, S,
    hidden_size))`` (the GRU state and the keys, projected once) and weights ``(batch, S)``.
    """

    def __init__(self, vocab_size: int, embed_dim: int, hidden_size: int, memory_dim: int):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.init_state = nn.Linear(memory_dim, hidden_size)
        self.score = AdditiveScore(hidden_size, memory_dim, hidden_size)
        self.cell = nn.GRUCell(embed_dim + memory_dim, hidden_size)
        self.out = nn.Linear(hidden_size + memory_dim + embed_dim, vocab_size)

    def start(self, memory, summary, mask):
        # The keys are the same at every step: project them once and carry them along.
        return torch.tanh(self.init_state(summary)), self.score.project_keys(memory)  # (B, H), (B, S, H)

    def step(self, token, state, memory, mask):
        hidden, keys = state
        embedded = self.embedding(token)  # (B, E)
        scores = self.score(hidden[:, None, :], memory, projected_key=keys)  # (B, 1, S)
        weights = masked_softmax(scores, mask[:, None, :])  # (B, 1, S)
        context = (weights @ memory).squeeze(1)  # (B, 2H)
        hidden = self.cell(torch.cat([embedded, context], dim=-1), hidden)  # (B, H)
        logits = self.out(torch.cat([hidden, context, embedded], dim=-1))  # (B, V)
        return logits, (hidden, keys), weights.squeeze(1)

    def forward_all(self, target_in, state, memory, mask):
        """All steps under teacher forcing: logits ``(batch, T, vocab)``, weights ``(batch, T, S)``.

        The same computation as calling ``step`` once per target position (the scores and the
        GRU cell still run step by step: each query is the previous step's state), arranged for
        speed: the embeddings are looked up once, and the output layer runs once over all steps.
        """
        hidden, keys = state
        embedded = self.embedding(target_in)  # (B, T, E)
        blocked = ~mask[:, None, :]  # (B, 1, S) True at padding
        states, contexts, all_weights = [], [], []
        for t in range(target_in.shape[1]):
            scores = self.score(hidden[:, None, :], memory, projected_key=keys)  # (B, 1, S)
            # Every source has at least one word, so no row is fully masked: a plain softmax suffices.
            weights = scores.masked_fill(blocked, float("-inf")).softmax(dim=-1)  # (B, 1, S)
            context = (weights @ memory).squeeze(1)  # (B, 2H)
            hidden = self.cell(torch.cat([embedded[:, t], context], dim=-1), hidden)  # (B, H)
            states.append(hidden)
            contexts.append(context)
            all_weights.append(weights)
        outputs = torch.cat([torch.stack(states, 1), torch.stack(contexts, 1), embedded], dim=-1)  # (B, T, H+2H+E)
        return self.out(outputs), torch.cat(all_weights, dim=1)  # (B, T, V), (B, T, S)


class LuongDecoder(nn.Module):
    """GRU decoder that steps first, then attends with its new state (bilinear "general" scoring).

    The context and the state are mixed into an attentional state ``tanh(W [context; state])``
    that predicts the word. The GRU never sees the context (Luong's variant without "input
    feeding"), so under teacher forcing the GRU runs over the whole target in one call and all
    steps attend at once, one ``(T, S)`` score matrix per example (``forward_all``): a first
    taste of the parallelism the Transformer takes all the way.

    Shape (of ``step``): as ``BahdanauDecoder``, with state ``((batch, hidden_size), (batch, S,
    hidden_size))``.
    """

    def __init__(self, vocab_size: int, embed_dim: int, hidden_size: int, memory_dim: int):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.init_state = nn.Linear(memory_dim, hidden_size)
        self.gru = nn.GRU(embed_dim, hidden_size, batch_first=True)
        self.score = GeneralScore(hidden_size, memory_dim)
        self.mix = nn.Linear(memory_dim + hidden_size, hidden_size, bias=False)
        self.out = nn.Linear(hidden_size, vocab_size)

    def start(self, memory, summary, mask):
        return torch.tanh(self.init_state(summary)), self.score.project_keys(memory)  # (B, H), (B, S, H)

    def _attend(self, outputs, memory, keys, mask):
        """Queries ``(B, T, H)`` -> logits ``(B, T, V)`` and weights ``(B, T, S)``."""
        scores = self.score(outputs, memory, projected_key=keys)  # (B, T, S)
        weights = masked_softmax(scores, mask[:, None, :])  # (B, T, S)
        context = weights @ memory  # (B, T, 2H)
        attentional = torch.tanh(self.mix(torch.cat([context, outputs], dim=-1)))  # (B, T, H)
        return self.out(attentional), weights

    def forward_all(self, target_in, state, memory, mask):
        """All steps at once under teacher forcing: logits ``(batch, T, vocab)``, weights ``(batch, T, S)``."""
        hidden, keys = state
        outputs, _ = self.gru(self.embedding(target_in), hidden[None])  # (B, T, H)
        return self._attend(outputs, memory, keys, mask)

    def step(self, token, state, memory, mask):
        hidden, keys = state
        output, _ = self.gru(self.embedding(token)[:, None, :], hidden[None])  # (B, 1, H)
        logits, weights = self._attend(output, memory, keys, mask)  # (B, 1, V), (B, 1, S)
        return logits.squeeze(1), (output.squeeze(1), keys), weights.squeeze(1)


DECODERS = {"none": PlainDecoder, "bahdanau": BahdanauDecoder, "luong": LuongDecoder}


# --------------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------------


class Seq2Seq(nn.Module):
    """Encoder-decoder for ``helpers.data``'s translation task.

    Args:
        attention: ``"none"`` (fixed context vector), ``"bahdanau"`` (additive) or ``"luong"``
            (general/bilinear).
        embed_dim: width of the token embeddings.
        hidden_size: width of the decoder state and of each encoder direction.
        source_vocab, target_vocab: the vocabularies (default: the task's).

    Shape:
        - source: ``(batch, S)`` ids, padded with 0; source_lengths: ``(batch,)``
        - target_in: ``(batch, T)`` ids starting with ``<bos>`` (teacher forcing)
        - output: logits ``(batch, T, target vocab)`` and weights ``(batch, T, S)`` (``None``
          for ``attention="none"``): row ``t`` is where output ``t`` looked.
    """

    def __init__(self, attention: str = "bahdanau", embed_dim: int = 32, hidden_size: int = 64,
                 source_vocab: Vocab = SOURCE_VOCAB, target_vocab: Vocab = TARGET_VOCAB):
        super().__init__()
        if attention not in DECODERS:
            raise ValueError(f"attention must be one of {sorted(DECODERS)}, got {attention!r}")
        self.attention = attention
        self.source_vocab, self.target_vocab = source_vocab, target_vocab
        self.encoder = GRUEncoder(len(source_vocab), embed_dim, hidden_size)
        self.decoder = DECODERS[attention](len(target_vocab), embed_dim, hidden_size, 2 * hidden_size)

    def _encode(self, source, source_lengths):
        if source.dim() != 2 or source.dtype != torch.long:
            raise ValueError(f"source must be (batch, S) long ids, got shape {tuple(source.shape)} {source.dtype}")
        source_lengths = torch.as_tensor(source_lengths, device=source.device)
        if source_lengths.shape != (source.shape[0],):
            raise ValueError(f"source_lengths must be (batch,) = ({source.shape[0]},), "
                             f"got shape {tuple(source_lengths.shape)}")
        if source_lengths.min() < 1 or source_lengths.max() > source.shape[1]:
            raise ValueError(f"source_lengths must lie in [1, {source.shape[1]}] (the padded length), "
                             f"got {source_lengths.tolist()}")
        mask = padding_mask(source_lengths, source.shape[1])  # (B, S) True at real tokens
        memory, summary = self.encoder(source, source_lengths)
        return memory, summary, mask

    def forward(self, source, source_lengths, target_in):
        """Teacher forcing: step ``t`` reads the *true* previous token ``target_in[:, t]``."""
        memory, summary, mask = self._encode(source, source_lengths)
        state = self.decoder.start(memory, summary, mask)
        if hasattr(self.decoder, "forward_all"):  # all steps at once, where the decoder can
            return self.decoder.forward_all(target_in, state, memory, mask)
        all_logits, all_weights = [], []
        for t in range(target_in.shape[1]):
            logits, state, weights = self.decoder.step(target_in[:, t], state, memory, mask)
            all_logits.append(logits)
            all_weights.append(weights)
        logits = torch.stack(all_logits, dim=1)  # (B, T, V)
        weights = None if all_weights[0] is None else torch.stack(all_weights, dim=1)  # (B, T, S)
        return logits, weights

    @torch.no_grad()
    def greedy_decode(self, source, source_lengths, max_new_tokens: int | None = None):
        """Greedy decoding: each step reads the model's *own* previous choice.

        Args:
            max_new_tokens: steps to run (default: the longest source + 2, room for ``<eos>``).

        Returns:
            ``tokens`` ``(batch, max_new_tokens)`` (cut each row at its first ``<eos>`` with
            ``Vocab.decode``) and ``weights`` ``(batch, max_new_tokens, S)`` (``None`` without attention).
        """
        memory, summary, mask = self._encode(source, source_lengths)
        max_new_tokens = int(torch.as_tensor(source_lengths).max()) + 2 if max_new_tokens is None else max_new_tokens
        state = self.decoder.start(memory, summary, mask)
        token = torch.full((source.shape[0],), self.target_vocab.bos_id, dtype=torch.long, device=source.device)
        tokens, all_weights = [], []
        for _ in range(max_new_tokens):
            logits, state, weights = self.decoder.step(token, state, memory, mask)
            token = logits.argmax(dim=-1)  # (B,)
            tokens.append(token)
            all_weights.append(weights)
        weights = None if all_weights[0] is None else torch.stack(all_weights, dim=1)  # (B, T, S)
        return torch.stack(tokens, dim=1), weights
