"""Self-checks for notebook 11 · Vision Transformer."""

import torch

from helpers import seeds
from helpers.exercises import exercise, expect, expect_close
from helpers.vision import attention_rollout, patchify


@exercise("Exercise 1: cut images into patch tokens")
def patchify_images(fn):
    images = torch.arange(2 * 3 * 4 * 6, dtype=torch.float32).reshape(2, 3, 4, 6)  # (B, C, H, W)
    out = fn(images, 2)
    expected = patchify(images, 2)
    expect(isinstance(out, torch.Tensor) and tuple(out.shape) == tuple(expected.shape),
           f"expected shape (batch, patches, channels * p * p) = {tuple(expected.shape)}, "
           f"got {tuple(getattr(out, 'shape', ()))}")
    expect(not torch.equal(out, images.reshape(expected.shape)),
           "a plain reshape mixes rows of different patches: split H and W into (grid, p) and permute first")
    expect_close(out[:, 0], expected[:, 0], "the first token should hold the top-left patch, all channels")
    expect_close(out, expected, "patches are numbered row by row: patch i sits at row i // (W // p), "
                 "column i % (W // p)")


@exercise("Exercise 2: attention rollout for one image")
def rollout(fn):
    generator = seeds.generator(11)
    weights = torch.softmax(torch.randn(3, 5, 5, generator=generator) * 2, dim=-1)  # (layers, T, T), heads averaged
    out = fn(weights)
    expected = attention_rollout(weights[:, None, None])[0]  # (T, T)
    expect(isinstance(out, torch.Tensor) and tuple(out.shape) == (5, 5), "return a (T, T) matrix")
    expect_close(out.sum(-1), torch.ones(5), "each row of the rollout should sum to 1: renormalise 0.5 A + 0.5 I")
    expect_close(out, expected, "compose as later_layer @ earlier_result, each layer being 0.5 * A + 0.5 * I",
                 atol=1e-5, rtol=1e-4)


@exercise("Exercise 3: blank out one patch")
def occlude(fn):
    image = torch.arange(1, 1 + 8 * 8, dtype=torch.float32).reshape(1, 8, 8)
    original = image.clone()
    # 0.0 is blank paper in data.digits_split() (pooling.BACKGROUND); -0.3 is blank paper once the
    # mean pixel (about 0.3) is subtracted: an answer that writes 0 would paint a grey patch there.
    for index, patch_size, background in ((0, 2, 0.0), (6, 2, -0.3), (13, 2, -0.3), (1, 4, 0.5)):
        out = fn(image, index, patch_size, background)
        expect(isinstance(out, torch.Tensor) and tuple(out.shape) == (1, 8, 8), "return an image of the same shape")
        expect(torch.equal(image, original), "return a copy: the original image was changed")
        cols = 8 // patch_size
        row, col = divmod(index, cols)
        expected = original.clone()
        expected[:, row * patch_size:(row + 1) * patch_size, col * patch_size:(col + 1) * patch_size] = background
        changed = out != original
        expect(bool(changed.any()) and bool((out[changed] == background).all()),
               f"the blanked patch must hold the background value you are given ({background}), not 0: "
               "blank paper is 0 only in the digits as digits_split scales them")
        expect(torch.equal(out, expected), f"patch {index} (size {patch_size}) is at grid row {row}, column {col}: "
               "patches are numbered row by row")
