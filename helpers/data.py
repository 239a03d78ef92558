"""Synthetic data sets, generated on the spot (no downloads): notebooks 03, 04, 09 and 11.

Three tasks, each reproducible from a seed:

1. **A toy translation task** (03, 09). The source is a number read out digit by digit in English
   words, the target the same number in digits::

       "three one four one five"  ->  "31415"

   Each source word has exactly one target digit, so the right alignment is the one a person
   would draw, and the length of the input is a knob: ``make_pairs(n, min_len, max_len, seed)``
   draws numbers of any length range (longer than the training range to test generalisation),
   and ``translation_split`` fixes a training and a validation set that share no source;
   ``translation_dev`` draws a third, development set beside them, for the choices made while
   training (watching a curve, stopping early), so the validation set is touched only to report.
   ``SOURCE_VOCAB`` / ``TARGET_VOCAB`` turn tokens into ids and back; ``collate`` pads a list of
   pairs into a ``Seq2SeqBatch``.

2. **A synthetic audio clip** (04): ``tone_burst_clips`` hides a short tone burst or chirp in
   noise at a random time; the label says which kind of event it is.

3. **Handwritten digits** (04, 11): ``digits_split`` loads scikit-learn's bundled 8x8 digits
   (shipped inside the package, no download) and returns a fixed train/validation split.
"""

import math
from dataclasses import dataclass

import torch

from helpers import seeds

__all__ = [
    "PAD", "BOS", "EOS", "DIGIT_WORDS", "Vocab", "SOURCE_VOCAB", "TARGET_VOCAB",
    "tokenize_source", "tokenize_target", "make_pairs", "translation_split", "translation_dev", "Seq2SeqBatch",
    "collate",
    "batch_sampler", "tone_burst_clips", "frames", "CLIP_CLASSES", "SAMPLE_RATE", "CLIP_LENGTH", "EVENT_LENGTH",
    "FRAME_LENGTH", "digits_split",
]

# --------------------------------------------------------------------------------------------
# 1. Toy translation: digit words -> digits
# --------------------------------------------------------------------------------------------

PAD, BOS, EOS = "<pad>", "<bos>", "<eos>"
DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


class Vocab:
    """Token <-> id table. Ids 0, 1, 2 are ``<pad>``, ``<bos>``, ``<eos>`` in every vocabulary.

    Args:
        tokens: the ordinary tokens, in id order after the three special ones.
    """

    def __init__(self, tokens):
        self.itos = [PAD, BOS, EOS, *tokens]
        if len(set(self.itos)) != len(self.itos):
            raise ValueError(f"tokens must be distinct and not special: {list(tokens)}")
        self.stoi = {token: index for index, token in enumerate(self.itos)}
        self.pad_id, self.bos_id, self.eos_id = 0, 1, 2

    def __len__(self) -> int:
        return len(self.itos)

    def __repr__(self) -> str:
        return f"Vocab({len(self)} tokens: {self.itos})"

    def encode(self, tokens) -> list[int]:
        """Ids of ``tokens``; raises ``ValueError`` naming any token not in the vocabulary."""
        unknown = [t for t in tokens if t not in self.stoi]
        if unknown:
            raise ValueError(f"tokens not in the vocabulary: {unknown}; known: {self.itos[3:]}")
        return [self.stoi[t] for t in tokens]

    def decode(self, ids) -> list[str]:
        """Tokens of ``ids`` up to the first ``<eos>``, leaving out ``<pad>`` and ``<bos>``."""
        tokens = []
        for index in (ids.tolist() if isinstance(ids, torch.Tensor) else ids):
            if index == self.eos_id:
                break
            if index not in (self.pad_id, self.bos_id):
                tokens.append(self.itos[index])
        return tokens


SOURCE_VOCAB = Vocab(DIGIT_WORDS)
TARGET_VOCAB = Vocab("0123456789")


def tokenize_source(text: str) -> list[str]:
    """``"three one four"`` -> ``["three", "one", "four"]`` (one token per word)."""
    return text.split()


def tokenize_target(text: str) -> list[str]:
    """``"314"`` -> ``["3", "1", "4"]`` (one token per digit)."""
    return list(text)


def make_pairs(num_examples: int, min_len: int = 3, max_len: int = 12, seed: int = 0,
               exclude=()) -> list[tuple[str, str]]:
    """``num_examples`` distinct (source, target) pairs, lengths uniform in ``[min_len, max_len]``.

    Args:
        num_examples: number of pairs.
        min_len, max_len: the number of digits (= source words = target tokens), inclusive.
        seed: the same seed gives the same pairs, on every machine.
        exclude: sources that must not be drawn (another split's).

    Returns:
        A list of ``("three one four", "314")`` pairs.
    """
    if not 1 <= min_len <= max_len:
        raise ValueError(f"need 1 <= min_len <= max_len, got min_len={min_len}, max_len={max_len}")
    available = sum(10**n for n in range(min_len, max_len + 1)) - len(set(exclude))
    if num_examples > available:
        raise ValueError(f"only {available} distinct numbers have {min_len}-{max_len} digits, asked for {num_examples}")
    rng = seeds.rng(seed)
    seen = set(exclude)
    pairs = []
    while len(pairs) < num_examples:
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(min_len, max_len)))
        source = " ".join(DIGIT_WORDS[int(d)] for d in digits)
        if source not in seen:
            seen.add(source)
            pairs.append((source, digits))
    return pairs


def translation_split(num_train: int = 4000, num_valid: int = 1000, min_len: int = 3, max_len: int = 12,
                      seed: int = 0) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """The fixed training and validation sets of notebooks 03 and 09 (no source in both).

    With the defaults every reader, and notebook 09, gets exactly the split notebook 03 trains
    on. Returns ``(train_pairs, valid_pairs)``.
    """
    valid = make_pairs(num_valid, min_len, max_len, seed=seed + 1)
    train = make_pairs(num_train, min_len, max_len, seed=seed, exclude=[source for source, _ in valid])
    return train, valid


def translation_dev(num_dev: int = 300, num_train: int = 4000, num_valid: int = 1000, min_len: int = 3,
                    max_len: int = 12, seed: int = 0) -> list[tuple[str, str]]:
    """A development set beside ``translation_split``: ``num_dev`` pairs in neither of its two sets.

    Use it for every choice made while training (a curve to watch, a step to stop at, a learning
    rate), so that the validation set is touched only to report. ``num_train``, ``num_valid``,
    ``min_len``, ``max_len`` and ``seed`` name the split it must stay out of (the defaults: the
    split of notebooks 03 and 09). Adding it leaves that split exactly as it was.
    """
    train, valid = translation_split(num_train, num_valid, min_len, max_len, seed)
    taken = [source for source, _ in train + valid]
    return make_pairs(num_dev, min_len, max_len, seed=seed + 2, exclude=taken)


@dataclass
class Seq2SeqBatch:
    """A padded batch of pairs (padding id 0 everywhere).

    Shape:
        - source: ``(batch, S)`` source ids; source_lengths: ``(batch,)`` real lengths
        - target_in: ``(batch, T)``: ``<bos>`` then the target ids (the decoder's inputs under
          teacher forcing)
        - target_out: ``(batch, T)``: the target ids then ``<eos>`` (what it must predict)
    """

    source: torch.Tensor
    source_lengths: torch.Tensor
    target_in: torch.Tensor
    target_out: torch.Tensor

    def to(self, device) -> "Seq2SeqBatch":
        return Seq2SeqBatch(*(t.to(device) for t in (self.source, self.source_lengths, self.target_in,
                                                      self.target_out)))

    def __len__(self) -> int:
        return self.source.shape[0]


def _pad(rows, value=0) -> torch.Tensor:
    width = max(len(row) for row in rows)
    return torch.tensor([row + [value] * (width - len(row)) for row in rows], dtype=torch.long)


def collate(pairs, source_vocab: Vocab = SOURCE_VOCAB, target_vocab: Vocab = TARGET_VOCAB) -> Seq2SeqBatch:
    """Tokenize, encode and pad a list of ``(source, target)`` pairs into a ``Seq2SeqBatch``."""
    if not pairs:
        raise ValueError("collate needs at least one pair")
    sources = [source_vocab.encode(tokenize_source(source)) for source, _ in pairs]
    targets = [target_vocab.encode(tokenize_target(target)) for _, target in pairs]
    return Seq2SeqBatch(
        source=_pad(sources, source_vocab.pad_id),
        source_lengths=torch.tensor([len(s) for s in sources]),
        target_in=_pad([[target_vocab.bos_id, *t] for t in targets], target_vocab.pad_id),
        target_out=_pad([[*t, target_vocab.eos_id] for t in targets], target_vocab.pad_id),
    )


def batch_sampler(pairs, batch_size: int = 64, seed: int = 0):
    """A function ``step -> Seq2SeqBatch`` of ``batch_size`` random pairs, for ``helpers.train.fit``.

    Batch ``k`` depends only on ``seed`` and ``k``, so a run is reproducible.
    """
    pairs = list(pairs)

    def draw(step: int) -> Seq2SeqBatch:
        rng = seeds.rng(seed * 1_000_003 + step)
        return collate(rng.sample(pairs, min(batch_size, len(pairs))))

    return draw


# --------------------------------------------------------------------------------------------
# 2. A synthetic audio clip: a short event hidden in noise
# --------------------------------------------------------------------------------------------

CLIP_CLASSES = ("low tone", "high tone", "rising chirp", "falling chirp")
# The clips' defaults, exported so that a notebook can say them without hard-coding them.
SAMPLE_RATE = 8000  # samples per second
CLIP_LENGTH = 2048  # samples per clip (0.256 s)
EVENT_LENGTH = 192  # samples of the event (24 ms)
FRAME_LENGTH = 64  # samples per frame of ``frames`` (8 ms): CLIP_LENGTH // FRAME_LENGTH = 32 frames


def tone_burst_clips(num_examples: int, *, length: int = CLIP_LENGTH, event_length: int = EVENT_LENGTH,
                     noise: float = 1.0,
                     amplitude: float = 1.0, sample_rate: int = SAMPLE_RATE, seed: int = 0):
    """Clips of noise with one short event at a random time; the label says which event.

    The four events (``CLIP_CLASSES``) all sweep or sit within 800-2400 Hz, so the classes
    differ in the event's few samples only, not in the clip's average loudness.

    Args:
        num_examples: number of clips.
        length: samples per clip (``sample_rate`` samples are one second).
        event_length: samples of the event (Hann-windowed, so it fades in and out).
        noise: standard deviation of the white noise.
        amplitude: peak amplitude of the event.
        seed: the same seed gives the same clips.

    Returns:
        ``signals`` ``(num_examples, length)`` float32, ``labels`` ``(num_examples,)`` long (index into
        ``CLIP_CLASSES``), ``starts`` ``(num_examples,)`` long: the sample where each event begins.
    """
    if event_length > length:
        raise ValueError(f"event_length ({event_length}) must not exceed length ({length})")
    generator = seeds.generator(seed)
    labels = torch.randint(len(CLIP_CLASSES), (num_examples,), generator=generator)
    starts = torch.randint(length - event_length + 1, (num_examples,), generator=generator)
    signals = noise * torch.randn(num_examples, length, generator=generator)
    t = torch.arange(event_length) / sample_rate
    duration = event_length / sample_rate
    low, high = 800.0, 2400.0
    # Instantaneous frequency f(t); the phase is its integral.
    sweeps = {
        0: (low, low), 1: (high, high), 2: (low, high), 3: (high, low),
    }
    window = torch.hann_window(event_length, periodic=False)
    events = []
    for label in range(len(CLIP_CLASSES)):
        f0, f1 = sweeps[label]
        phase = 2 * math.pi * (f0 * t + (f1 - f0) * t**2 / (2 * duration))
        events.append(amplitude * window * torch.sin(phase))
    events = torch.stack(events)  # (classes, event_length)
    index = starts[:, None] + torch.arange(event_length)  # (num_examples, event_length)
    signals.scatter_add_(1, index, events[labels])
    return signals, labels, starts


def frames(signals: torch.Tensor, frame_length: int = FRAME_LENGTH) -> torch.Tensor:
    """Cut ``(batch, samples)`` into the magnitude spectra of non-overlapping frames.

    Returns ``(batch, frames, frame_length // 2 + 1)``: one short spectrum per frame, the
    "spectrogram" a model attends over. Bin ``k`` of a frame is the frequency
    ``k * sample_rate / frame_length`` (0 to half the sample rate: 125 Hz apart at the defaults).
    """
    if signals.dim() != 2 or signals.shape[1] % frame_length:
        raise ValueError(f"signals must be (batch, samples) with samples a multiple of frame_length={frame_length}, "
                         f"got shape {tuple(signals.shape)}")
    chunks = signals.reshape(signals.shape[0], -1, frame_length)  # (B, frames, frame_length)
    return torch.fft.rfft(chunks, dim=-1).abs() / math.sqrt(frame_length)  # (B, frames, frame_length//2+1)


# --------------------------------------------------------------------------------------------
# 3. scikit-learn's bundled 8x8 digits
# --------------------------------------------------------------------------------------------


def digits_split(valid_fraction: float = 0.25, seed: int = 0, canvas: int = 8):
    """scikit-learn's 1,797 handwritten 8x8 digits, split into fixed training and validation sets.

    Pixels are scaled to [0, 1]. The split is a seeded permutation, the same on every machine.

    Args:
        valid_fraction: share of the images held out for validation.
        seed: seed of the permutation (and of the placement when ``canvas > 8``).
        canvas: side of the image; above 8, each digit is pasted at a random position of a
            ``canvas x canvas`` black image, so a model has to find it.

    Returns:
        ``(train_images, train_labels, valid_images, valid_labels)``: images float32
        ``(n, 1, canvas, canvas)``, labels long ``(n,)``.
    """
    from sklearn.datasets import load_digits

    if not 0 < valid_fraction < 1:
        raise ValueError(f"valid_fraction must be between 0 and 1, got {valid_fraction}")
    if canvas < 8:
        raise ValueError(f"canvas must be at least 8 (the digits are 8x8), got {canvas}")
    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32)[:, None] / 16.0  # (n, 1, 8, 8)
    labels = torch.tensor(digits.target, dtype=torch.long)
    generator = seeds.generator(seed)
    # The permutation comes first, so the split is the same whatever the canvas.
    order = torch.randperm(len(images), generator=generator)
    if canvas > 8:
        placed = torch.zeros(len(images), 1, canvas, canvas)
        rows = torch.randint(canvas - 7, (len(images),), generator=generator)
        cols = torch.randint(canvas - 7, (len(images),), generator=generator)
        for i, (r, c) in enumerate(zip(rows.tolist(), cols.tolist(), strict=True)):
            placed[i, :, r: r + 8, c: c + 8] = images[i]
        images = placed
    num_valid = round(valid_fraction * len(images))
    valid, train = order[:num_valid], order[num_valid:]
    return images[train], labels[train], images[valid], labels[valid]
