"""Attention beyond text: pooling over image positions, over channels, over audio frames (notebook 04).

Attention pooling is the attention of notebooks 01-03 with one learned query: the keys and values
are a model's features at every position (pixels of a feature map, frames of a clip), a scoring
function compares the query with each key, and the softmax-weighted sum of the values replaces
the plain average. Squeeze-and-excitation is the same idea turned sideways: it weighs feature
*channels* instead of positions (with a sigmoid per channel rather than a softmax across them).

Reads top to bottom: what is ink and what is paper in the digits (``INK_THRESHOLD``,
``BACKGROUND``: one definition for notebooks 04 and 11), the pooling modules, the two small
models of notebook 04 (``DigitCNN`` for the 8x8 digits of ``helpers.data.digits_split``,
``FrameClassifier`` for the clips of ``helpers.data.tone_burst_clips``), then the training recipe
(``train_scheduled``: ``helpers.train.fit`` with warm-up and cosine decay). Notebook 11 imports
``DigitCNN`` and ``train_digit_cnn`` to compare a tiny ViT with the CNN on the same split::

    from helpers import data, pooling, train
    split = data.digits_split()
    model, history = pooling.train_digit_cnn(split, pool="attention")
    train.accuracy(model, split[2], split[3])
"""


import torch
import torch.nn.functional as F
from torch import nn

from helpers import seeds
from helpers.attention import masked_softmax
from helpers.scoring import AdditiveScore
from helpers.train import train_classifier, warmup_cosine

__all__ = [
    "BACKGROUND", "INK_THRESHOLD", "inked",
    "AttentionPool", "AttentionPool2d", "SqueezeExcitation", "DigitCNN", "FrameClassifier",
    "train_scheduled", "train_digit_cnn",
]


# --------------------------------------------------------------------------------------------
# The digits' pixels: what is paper, what is ink (one definition for notebooks 04 and 11)
# --------------------------------------------------------------------------------------------

#: The value of a pixel with no ink in ``helpers.data.digits_split()``: scikit-learn stores each
#: pixel as a count 0-16 of ink and the split divides by 16, so blank paper is exactly 0.0.
BACKGROUND = 0.0

#: A pixel is *ink* when its value is at least this: 4 of scikit-learn's 16 levels. The digits
#: were scanned at 32x32 and each 8x8 pixel counts the inked pixels of a 4x4 block, so a pixel at
#: or above 4/16 has at least a quarter of its area covered: a stroke, not the faint edge of one.
#: Notebooks 04 and 11 use this one value for every measurement and every outline they draw.
INK_THRESHOLD = 0.25


def inked(images: torch.Tensor) -> torch.Tensor:
    """Bool mask of the ink pixels (``>= INK_THRESHOLD``), same shape as ``images``."""
    if not isinstance(images, torch.Tensor) or not images.is_floating_point():
        raise TypeError(f"images must be a floating-point tensor, got {getattr(images, 'dtype', type(images))}")
    return images >= INK_THRESHOLD


# --------------------------------------------------------------------------------------------
# Pooling modules
# --------------------------------------------------------------------------------------------


class AttentionPool(nn.Module):
    """Weighted average of a sequence of feature vectors, the weights given by attention.

    One learned query scores every position with additive scoring (``helpers.scoring``); the
    softmax over positions gives the weights; the output is the weighted sum of the features
    (keys and values are the features themselves).

    Args:
        features: width of each position's feature vector.
        hidden_dim: width of the additive scorer's hidden layer.

    Shape:
        - x: ``(batch, positions, features)``; mask: optional bool ``(batch, positions)``,
          True = may attend
        - output: pooled ``(batch, features)`` and weights ``(batch, positions)`` (rows sum to 1)
    """

    def __init__(self, features: int, hidden_dim: int = 32):
        super().__init__()
        self.features = features
        self.query = nn.Parameter(torch.zeros(features))
        self.score = AdditiveScore(features, features, hidden_dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None):
        if x.dim() != 3 or x.shape[-1] != self.features:
            raise ValueError(f"x must be (batch, positions, {self.features}), got shape {tuple(x.shape)}")
        query = self.query.expand(x.shape[0], 1, self.features)  # (B, 1, F)
        scores = self.score(query, x)  # (B, 1, N)
        weights = masked_softmax(scores, None if mask is None else mask[:, None, :])  # (B, 1, N)
        return (weights @ x).squeeze(1), weights.squeeze(1)  # (B, F), (B, N)


class AttentionPool2d(nn.Module):
    """``AttentionPool`` over the positions of a feature map.

    Shape:
        - x: ``(batch, channels, height, width)``
        - output: pooled ``(batch, channels)`` and weights ``(batch, height, width)``
    """

    def __init__(self, channels: int, hidden_dim: int = 32):
        super().__init__()
        self.pool = AttentionPool(channels, hidden_dim)

    def forward(self, x: torch.Tensor):
        if x.dim() != 4:
            raise ValueError(f"x must be (batch, channels, height, width), got shape {tuple(x.shape)}")
        batch, channels, height, width = x.shape
        positions = x.flatten(2).transpose(1, 2)  # (B, H*W, C)
        pooled, weights = self.pool(positions)  # (B, C), (B, H*W)
        return pooled, weights.view(batch, height, width)  # (B, C), (B, H, W)


class SqueezeExcitation(nn.Module):
    """Channel attention (Hu et al., 2018): reweigh each channel by a gate computed from all of them.

    Squeeze: average each channel over the positions. Excite: a two-layer network maps those
    averages to one gate in (0, 1) per channel. The output is the input with each channel
    multiplied by its gate.

    Shape:
        - x: ``(batch, channels, height, width)``
        - output: ``(batch, channels, height, width)`` and the gates ``(batch, channels)``
    """

    def __init__(self, channels: int, reduction: int = 4):
        super().__init__()
        self.channels = channels
        self.down = nn.Linear(channels, max(1, channels // reduction))
        self.up = nn.Linear(max(1, channels // reduction), channels)

    def forward(self, x: torch.Tensor):
        if x.dim() != 4 or x.shape[1] != self.channels:
            raise ValueError(f"x must be (batch, {self.channels}, height, width), got shape {tuple(x.shape)}")
        squeezed = x.mean(dim=(2, 3))  # (B, C)
        gates = torch.sigmoid(self.up(F.relu(self.down(squeezed))))  # (B, C)
        return x * gates[:, :, None, None], gates


# --------------------------------------------------------------------------------------------
# The models of notebook 04
# --------------------------------------------------------------------------------------------


class DigitCNN(nn.Module):
    """Two 3x3 convolutions, optional channel attention, then a pooling over positions, then a linear layer.

    The convolutions keep the image size, so the feature map has one position per pixel and the
    spatial weights can be drawn over the input. Each position sees a 5x5 window of pixels (the
    receptive field of two 3x3 convolutions); the pooling is global, over all positions. With
    ``pool="mean"`` this is a small global-average-pooling CNN.

    Args:
        pool: ``"attention"`` (``AttentionPool2d``) or ``"mean"`` (global average pooling).
        channel_attention: insert ``SqueezeExcitation`` before the pooling.
        channels: feature channels of the last convolution.
        num_classes: number of classes (10 digits).

    Shape:
        - images: ``(batch, 1, height, width)``, any size (8x8 for the digits)
        - output: logits ``(batch, num_classes)``; ``attention_maps`` gives the weights
    """

    def __init__(self, pool: str = "attention", channel_attention: bool = False, channels: int = 32,
                 num_classes: int = 10):
        super().__init__()
        if pool not in ("attention", "mean"):
            raise ValueError(f"pool must be 'attention' or 'mean', got {pool!r}")
        self.pool_kind = pool
        self.conv1 = nn.Conv2d(1, channels // 2, 3, padding=1)
        self.conv2 = nn.Conv2d(channels // 2, channels, 3, padding=1)
        self.channel_attention = SqueezeExcitation(channels) if channel_attention else None
        self.pool = AttentionPool2d(channels) if pool == "attention" else None
        self.head = nn.Linear(channels, num_classes)

    def _forward(self, images):
        if images.dim() != 4 or images.shape[1] != 1:
            raise ValueError(f"images must be (batch, 1, height, width), got shape {tuple(images.shape)}")
        x = F.relu(self.conv2(F.relu(self.conv1(images))))  # (B, C, H, W)
        gates = None
        if self.channel_attention is not None:
            x, gates = self.channel_attention(x)  # (B, C, H, W), (B, C)
        if self.pool is not None:
            pooled, weights = self.pool(x)  # (B, C), (B, H, W)
        else:
            pooled, weights = x.mean(dim=(2, 3)), None  # (B, C)
        return self.head(pooled), weights, gates

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self._forward(images)[0]

    @torch.no_grad()
    def attention_maps(self, images: torch.Tensor):
        """``(spatial weights (batch, H, W) or None, channel gates (batch, channels) or None)``."""
        _, weights, gates = self._forward(images)
        return weights, gates


class FrameClassifier(nn.Module):
    """Classify a clip from its frames: a small network per frame, a pooling over frames, a linear layer.

    A 1-D convolution over time (kernel 3) turns each frame's spectrum into features that also see
    its two neighbours, so a chirp's direction is visible in a single position.

    Args:
        in_features: numbers per frame (spectrum bins).
        hidden: feature width per frame.
        num_classes: number of classes.
        pool: ``"attention"`` (``AttentionPool``) or ``"mean"`` (average over frames).

    Shape:
        - frames: ``(batch, num_frames, in_features)``
        - output: logits ``(batch, num_classes)``; ``attention_maps`` gives ``(batch, num_frames)``
    """

    def __init__(self, in_features: int, hidden: int = 32, num_classes: int = 4, pool: str = "attention"):
        super().__init__()
        if pool not in ("attention", "mean"):
            raise ValueError(f"pool must be 'attention' or 'mean', got {pool!r}")
        self.in_features = in_features
        self.conv = nn.Conv1d(in_features, hidden, 3, padding=1)
        self.frame = nn.Linear(hidden, hidden)
        self.pool = AttentionPool(hidden) if pool == "attention" else None
        self.head = nn.Linear(hidden, num_classes)

    def _forward(self, frames):
        if frames.dim() != 3 or frames.shape[-1] != self.in_features:
            raise ValueError(f"frames must be (batch, num_frames, {self.in_features}), got shape {tuple(frames.shape)}")
        x = F.relu(self.conv(frames.transpose(1, 2))).transpose(1, 2)  # (B, T, hidden)
        x = F.relu(self.frame(x))  # (B, T, hidden)
        if self.pool is not None:
            pooled, weights = self.pool(x)  # (B, hidden), (B, T)
        else:
            pooled, weights = x.mean(dim=1), None  # (B, hidden)
        return self.head(pooled), weights

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self._forward(frames)[0]

    @torch.no_grad()
    def attention_maps(self, frames: torch.Tensor):
        """Weights over frames ``(batch, num_frames)``, or ``None`` with mean pooling."""
        return self._forward(frames)[1]


# --------------------------------------------------------------------------------------------
# Training: warm-up and cosine decay (notebooks 04 and 11)
# --------------------------------------------------------------------------------------------


def train_scheduled(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, *, valid_inputs=None,
                    valid_labels=None, steps: int = 400, batch_size: int = 64, lr: float = 1e-2,
                    warmup: int | None = None, seed: int = 0, eval_every: int = 100) -> dict:
    """Train a classifier with cross-entropy, AdamW and a warm-up + cosine schedule; return the history.

    The same loop as ``helpers.train.train_classifier`` (``helpers.train.fit``, batch ``k`` drawn
    from a generator seeded with ``seed`` and ``k``), with ``helpers.train.warmup_cosine``: the
    learning rate rises linearly to ``lr`` over ``warmup`` steps (large early updates from a random
    initialisation are what throw a run off), then falls along half a cosine to 0 (small late
    updates let the run settle, so the final accuracy does not hinge on the last batches).
    ``warmup`` defaults to a tenth of the steps. Notebook 04 trains its CNNs and its clip
    classifiers this way, and notebook 11 its ViT and the same CNN, so every comparison between
    them changes the model only.

    Shape:
        - inputs: ``(examples, ...)``, labels: ``(examples,)`` long; the same for the validation data
    Returns:
        ``fit``'s history; ``history["eval"][-1]`` is the final validation accuracy.
    """
    if len(inputs) != len(labels):
        raise ValueError(f"inputs and labels must have one row per example, got {len(inputs)} and {len(labels)}")
    warmup = steps // 10 if warmup is None else warmup
    # AdamW's default weight decay (0.01), as ``helpers.train.adamw``.
    return train_classifier(model, inputs, labels, valid_inputs=valid_inputs, valid_labels=valid_labels, steps=steps,
                            batch_size=batch_size, lr=lr, seed=seed, eval_every=eval_every, weight_decay=0.01,
                            schedule=warmup_cosine(warmup, steps))


def train_digit_cnn(split=None, *, pool: str = "attention", channel_attention: bool = False, steps: int = 800,
                    lr: float = 1e-2, seed: int = 0, device=None, eval_every: int = 100):
    """Build a ``DigitCNN`` (seeded) and train it on ``helpers.data.digits_split()`` with ``train_scheduled``.

    Args:
        split: ``(train_images, train_labels, valid_images, valid_labels)``; default
            ``helpers.data.digits_split()``.
        pool, channel_attention: as in ``DigitCNN``.
        steps: optimizer steps (batches of 64); lr: AdamW's peak learning rate (warm-up over the
            first tenth of the steps, cosine decay to 0).
        seed: seeds the initial weights and the batches.
        device: where to train (default: the CPU).
        eval_every: record the validation accuracy every this many steps (and at the end).

    Notebook 11 trains this CNN with these defaults, beside its ViT on the same schedule: 800 steps
    (about 38 passes over the 1,348 training digits), because at 400 some seeds had not converged
    (one ended 15 points below the others). Notebook 04 compares poolings at 400 steps, where
    every model is well above chance but not every seed has converged.

    Returns:
        ``(model, history)``; ``history["eval"][-1]`` is the final validation accuracy.
    """
    from helpers.data import digits_split

    train_images, train_labels, valid_images, valid_labels = digits_split() if split is None else split
    seeds.manual_seed(seed)
    model = DigitCNN(pool=pool, channel_attention=channel_attention)
    if device is not None:
        model = model.to(device)
    history = train_scheduled(model, train_images, train_labels, valid_inputs=valid_images,
                              valid_labels=valid_labels, steps=steps, lr=lr, seed=seed, eval_every=eval_every)
    return model, history
