"""Attention over image patches: a tiny Vision Transformer and two ways to ask what it looked at (notebook 11).

An image becomes a sequence by cutting it into square patches: each flattened patch is one token.
A learned *class token* is put in front, a learned *positional embedding* is added (a patch
knows nothing of where it came from otherwise), and the Transformer encoder of notebook 08
(``helpers.transformer.EncoderLayer``) mixes the tokens. The class token's final state is the
image's summary, and a linear head classifies it.

Reads top to bottom:

- ``patchify``: ``(batch, channels, H, W)`` -> ``(batch, patches, channels * p * p)``;
- ``PatchEmbedding``: patchify, then a linear projection (the same as a stride-``p`` convolution);
- ``VisionTransformer``: class token + positions + encoder layers + head, with ``attention_maps``;
- ``attention_rollout``: attention composed across layers, residual connections included;
- ``occlusion``: how much the model's belief in the label drops when each patch is replaced;
- ``rank_correlation``: Spearman's correlation between two maps (average ranks for ties);
- ``inked_patches``: which patches hold ink (``helpers.pooling.INK_THRESHOLD``, the series' one ink level).

Shapes: images are ``(batch, channels, height, width)``; patches are numbered row by row.
"""

import torch
import torch.nn.functional as F
from torch import nn

from helpers.pooling import INK_THRESHOLD
from helpers.transformer import EncoderLayer

__all__ = ["patchify", "PatchEmbedding", "VisionTransformer", "attention_rollout", "occlusion", "average_ranks",
           "rank_correlation", "inked_patches"]


def _check_images(images, patch_size):
    if not isinstance(images, torch.Tensor) or not images.is_floating_point():
        got = getattr(images, "dtype", type(images).__name__)
        raise TypeError(f"images must be a floating-point tensor, got {got}")
    if images.dim() != 4:
        raise ValueError(f"images must be (batch, channels, height, width), got shape {tuple(images.shape)}")
    height, width = images.shape[-2:]
    if height % patch_size or width % patch_size:
        raise ValueError(f"the image size {height}x{width} is not divisible by the patch size {patch_size}: "
                         f"images of shape {tuple(images.shape)}")


# --------------------------------------------------------------------------------------------
# Patches as tokens
# --------------------------------------------------------------------------------------------


def patchify(images: torch.Tensor, patch_size: int) -> torch.Tensor:
    """Cut images into non-overlapping ``patch_size x patch_size`` squares, flattened, row by row.

    Shape:
        - images: ``(batch, channels, H, W)`` with ``H`` and ``W`` multiples of ``patch_size``
        - output: ``(batch, (H // p) * (W // p), channels * p * p)``; patch ``i`` sits at row
          ``i // (W // p)``, column ``i % (W // p)`` of the patch grid.
    """
    _check_images(images, patch_size)
    batch, channels, height, width = images.shape
    rows, cols = height // patch_size, width // patch_size
    x = images.reshape(batch, channels, rows, patch_size, cols, patch_size)  # (B, C, r, p, c, p)
    x = x.permute(0, 2, 4, 1, 3, 5)  # (B, r, c, C, p, p): the patch grid first, each patch's pixels last
    return x.reshape(batch, rows * cols, channels * patch_size * patch_size)  # (B, N, C*p*p)


class PatchEmbedding(nn.Module):
    """``patchify`` then one linear layer: every patch becomes a ``embed_dim``-dimensional token.

    This is exactly a ``Conv2d(in_channels, embed_dim, kernel_size=p, stride=p)`` (notebook 11
    checks it), written as a reshape and a matmul so that "a patch is a token" stays visible.

    Shape:
        - images: ``(batch, in_channels, H, W)``; output: ``(batch, (H // p) * (W // p), embed_dim)``
    """

    def __init__(self, patch_size: int, in_channels: int, embed_dim: int):
        super().__init__()
        self.patch_size = patch_size
        self.projection = nn.Linear(in_channels * patch_size * patch_size, embed_dim)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.projection(patchify(images, self.patch_size))  # (B, N, embed_dim)


# --------------------------------------------------------------------------------------------
# The Vision Transformer
# --------------------------------------------------------------------------------------------


class VisionTransformer(nn.Module):
    """A ViT: patch tokens, a class token, learned positions, pre-norm encoder layers, a linear head.

    Args:
        image_size: side of the (square) input images.
        patch_size: side of a patch; must divide ``image_size``.
        in_channels: channels of the images (1 for the digits).
        num_classes: outputs of the head.
        embed_dim, num_heads, num_layers, dim_feedforward, dropout: the encoder, as
            ``helpers.transformer.EncoderLayer`` (pre-norm, GELU, as in the ViT paper).

    Shape:
        - images: ``(batch, in_channels, image_size, image_size)``
        - output: logits ``(batch, num_classes)``, read from the class token's final state.
    """

    def __init__(self, image_size: int = 8, patch_size: int = 2, in_channels: int = 1, num_classes: int = 10, *,
                 embed_dim: int = 64, num_heads: int = 4, num_layers: int = 2, dim_feedforward: int = 128,
                 dropout: float = 0.0):
        super().__init__()
        if image_size % patch_size:
            raise ValueError(f"patch_size ({patch_size}) must divide image_size ({image_size})")
        self.image_size, self.patch_size, self.in_channels = image_size, patch_size, in_channels
        self.grid = image_size // patch_size  # patches per row and per column
        self.num_patches = self.grid * self.grid
        self.patch_embedding = PatchEmbedding(patch_size, in_channels, embed_dim)
        # One extra learned token whose final state summarises the image (position 0).
        self.class_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        # A learned vector per position (class token included), added to the tokens.
        self.positions = nn.Parameter(torch.zeros(1, 1 + self.num_patches, embed_dim))
        nn.init.normal_(self.class_token, std=0.02)
        nn.init.normal_(self.positions, std=0.02)
        self.layers = nn.ModuleList(
            EncoderLayer(embed_dim, num_heads, dim_feedforward, dropout, norm_first=True, activation="gelu")
            for _ in range(num_layers))
        self.norm = nn.LayerNorm(embed_dim)
        self.head = nn.Linear(embed_dim, num_classes)

    def tokens(self, images: torch.Tensor) -> torch.Tensor:
        """The encoder's input: class token then patch tokens, positions added, ``(B, 1 + N, embed_dim)``."""
        if images.dim() != 4 or tuple(images.shape[1:]) != (self.in_channels, self.image_size, self.image_size):
            raise ValueError(f"images must be (batch, {self.in_channels}, {self.image_size}, {self.image_size}), "
                             f"got shape {tuple(images.shape)}")
        patches = self.patch_embedding(images)  # (B, N, E)
        cls = self.class_token.expand(len(images), -1, -1)  # (B, 1, E)
        return torch.cat([cls, patches], dim=1) + self.positions  # (B, 1 + N, E)

    def forward(self, images: torch.Tensor, *, need_weights: bool = False) -> torch.Tensor:
        x = self.tokens(images)  # (B, 1 + N, E)
        for layer in self.layers:
            x = layer(x, need_weights=need_weights)
        return self.head(self.norm(x[:, 0]))  # (B, classes): the class token only

    @torch.no_grad()
    def attention_maps(self, images: torch.Tensor) -> torch.Tensor:
        """Every layer's attention weights, ``(layers, batch, heads, 1 + N, 1 + N)``.

        Token 0 is the class token; row 0 says where the class token looked. The model is put in
        ``eval()`` mode for the call and restored after.
        """
        was_training = self.training
        self.eval()
        self(images, need_weights=True)
        self.train(was_training)
        return torch.stack([layer.attention_weights for layer in self.layers])


# --------------------------------------------------------------------------------------------
# What did it look at? Attention rollout and occlusion
# --------------------------------------------------------------------------------------------


def attention_rollout(weights: torch.Tensor, *, residual: bool = True) -> torch.Tensor:
    """Attention composed over layers (Abnar & Zuidema, 2020).

    Layer ``l`` mixes tokens by its weights averaged over heads, ``A_l``; the residual connection
    passes each token on unchanged as well, modelled as ``0.5 * A_l + 0.5 * I`` (rows renormalised).
    The product over layers, first layer on the right, says how much of each input token ends up
    in each output token, *if* the layers mixed tokens only through these weights (they do not:
    the MLPs, norms and value vectors are ignored).

    Args:
        weights: ``(layers, batch, heads, T, T)``, as ``VisionTransformer.attention_maps`` returns.
        residual: add the identity for the residual path (False: multiply raw head-averaged weights).

    Returns:
        ``(batch, T, T)``; each row sums to 1. Row 0, columns ``1:``, is the class token's map over
        the patches.
    """
    if weights.dim() != 5 or weights.shape[-1] != weights.shape[-2]:
        raise ValueError(f"weights must be (layers, batch, heads, T, T), got shape {tuple(weights.shape)}")
    mixing = weights.mean(dim=2)  # (layers, B, T, T): average the heads
    if residual:
        eye = torch.eye(mixing.shape[-1], dtype=mixing.dtype, device=mixing.device)
        mixing = 0.5 * mixing + 0.5 * eye
        mixing = mixing / mixing.sum(dim=-1, keepdim=True)
    rollout = mixing[0]  # (B, T, T)
    for layer in mixing[1:]:
        rollout = layer @ rollout  # later layers act on what earlier ones produced
    return rollout


@torch.no_grad()
def occlusion(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, patch_size: int, *,
              fill: float | torch.Tensor = 0.0, measure: str = "probability") -> torch.Tensor:
    """How much the model's belief in ``labels`` drops when each patch is replaced by ``fill``.

    A direct test of what the prediction *depends on*, with no reference to attention: replace
    one patch, run the model again, compare. Positive = the patch supported the label.

    Args:
        fill: what an occluded patch shows: a number, or an image ``(channels, H, W)`` (for
            example the mean training image) whose pixels replace the patch's. A blank (0) fill
            ties occlusion to ink: blanking an empty patch changes nothing.
        measure: ``"probability"`` (drop in the label's softmax probability; it saturates near 1
            for a confident model), ``"log_prob"`` (drop in its log-probability) or ``"logit"``
            (drop in its logit).

    Shape:
        - images: ``(batch, channels, H, W)``; labels: ``(batch,)``
        - output: ``(batch, (H // p) * (W // p))``, patches numbered as in ``patchify``.
    """
    _check_images(images, patch_size)
    if labels.shape != images.shape[:1]:
        raise ValueError(f"labels must be (batch,) = ({len(images)},), got shape {tuple(labels.shape)}")
    readers = {"probability": lambda logits: F.softmax(logits, dim=-1), "log_prob": lambda logits:
               F.log_softmax(logits, dim=-1), "logit": lambda logits: logits}
    if measure not in readers:
        raise ValueError(f"measure must be one of {sorted(readers)}, got {measure!r}")
    read = readers[measure]
    batch, channels, height, width = images.shape
    fill = torch.as_tensor(fill, dtype=images.dtype, device=images.device)
    if fill.dim() not in (0, 3) or (fill.dim() == 3 and tuple(fill.shape) != (channels, height, width)):
        raise ValueError(f"fill must be a number or an image ({channels}, {height}, {width}), "
                         f"got shape {tuple(fill.shape)}")
    fill = fill.expand(channels, height, width)
    was_training = model.training
    model.eval()
    cols = width // patch_size
    num_patches = (height // patch_size) * cols
    base = read(model(images)).gather(1, labels[:, None])  # (B, 1)
    occluded = images.repeat_interleave(num_patches, dim=0).clone()  # (B*N, C, H, W): one copy per patch
    for index in range(num_patches):
        row, col = divmod(index, cols)
        rows, columns = slice(row * patch_size, (row + 1) * patch_size), slice(col * patch_size, (col + 1) * patch_size)
        occluded[index::num_patches, :, rows, columns] = fill[:, rows, columns]
    values = read(model(occluded)).view(batch, num_patches, -1)  # (B, N, classes)
    model.train(was_training)
    return base - values.gather(2, labels[:, None, None].expand(batch, num_patches, 1)).squeeze(-1)  # (B, N)


def average_ranks(values: torch.Tensor) -> torch.Tensor:
    """Ranks along the last dimension, 0 for the smallest, ties sharing their average rank.

    ``[3., 1., 1., 2.]`` -> ``[3.0, 0.5, 0.5, 2.0]``: the two 1s would take ranks 0 and 1, so each
    gets 0.5. (``argsort().argsort()`` would break the tie arbitrarily.)
    """
    values = values.detach().float()
    smaller = (values[..., None, :] < values[..., :, None]).sum(-1).float()  # (..., n): how many are below
    equal = (values[..., None, :] == values[..., :, None]).sum(-1).float()  # (..., n): ties, itself included
    return smaller + (equal - 1) / 2


def rank_correlation(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Spearman's rank correlation between the rows of ``a`` and ``b``, with average ranks for ties.

    Args:
        a, b: ``(n, items)``.
        mask: optional bool ``(n, items)``: rank and correlate only the True items of each row
            (say, the inked patches). A row with fewer than 2 items, or with all ranks tied, gives NaN.

    Returns:
        ``(n,)``: 1 = the same order, 0 = unrelated, -1 = reversed.
    """
    if a.shape != b.shape or a.dim() != 2:
        raise ValueError(f"a and b must both be (n, items), got shapes {tuple(a.shape)} and {tuple(b.shape)}")
    if mask is None:
        mask = torch.ones_like(a, dtype=torch.bool)
    if mask.shape != a.shape:
        raise ValueError(f"mask must be {tuple(a.shape)}, got {tuple(mask.shape)}")
    out = []
    for row_a, row_b, keep in zip(a, b, mask, strict=True):
        ranks = [average_ranks(row[keep]) for row in (row_a, row_b)]
        ranks = [r - r.mean() for r in ranks]
        denominator = ranks[0].norm() * ranks[1].norm()
        out.append((ranks[0] * ranks[1]).sum() / denominator if denominator > 0 else torch.tensor(float("nan")))
    return torch.stack(out)


def inked_patches(images: torch.Tensor, patch_size: int, threshold: float = INK_THRESHOLD) -> torch.Tensor:
    """Which patches hold ink: at least one pixel at or above ``threshold`` (the series' ink level).

    Notebook 04 measures ink per pixel with ``helpers.pooling.INK_THRESHOLD``; a patch is inked
    when any of its pixels is, so notebook 11's patches and notebook 04's pixels share one rule.

    Shape:
        - images: ``(batch, channels, H, W)``
        - output: bool ``(batch, patches)``, patches numbered row by row as in ``patchify``
    """
    return (patchify(images, patch_size) >= threshold).any(dim=-1)
