"""Reference solutions for notebook 11's exercises (and wrong answers the checks must reject)."""

import torch


def patchify_images(images, patch_size):
    batch, channels, height, width = images.shape
    p = patch_size
    x = images.reshape(batch, channels, height // p, p, width // p, p)  # (B, C, r, p, c, p)
    x = x.permute(0, 2, 4, 1, 3, 5)  # (B, r, c, C, p, p)
    return x.reshape(batch, -1, channels * p * p)


def patchify_plain_reshape(images, patch_size):
    batch, channels = images.shape[:2]
    return images.reshape(batch, -1, channels * patch_size * patch_size)


def patchify_columns_first(images, patch_size):
    batch, channels, height, width = images.shape
    p = patch_size
    x = images.reshape(batch, channels, height // p, p, width // p, p).permute(0, 4, 2, 1, 3, 5)
    return x.reshape(batch, -1, channels * p * p)


def rollout(weights):
    eye = torch.eye(weights.shape[-1])
    result = None
    for layer in weights:
        mixing = 0.5 * layer + 0.5 * eye
        mixing = mixing / mixing.sum(-1, keepdim=True)
        result = mixing if result is None else mixing @ result
    return result


def rollout_without_residual(weights):
    result = weights[0]
    for layer in weights[1:]:
        result = layer @ result
    return result


def rollout_wrong_order(weights):
    eye = torch.eye(weights.shape[-1])
    result = None
    for layer in weights:
        mixing = 0.5 * layer + 0.5 * eye
        mixing = mixing / mixing.sum(-1, keepdim=True)
        result = mixing if result is None else result @ mixing
    return result


def occlude(image, index, patch_size, background):
    out = image.clone()
    row, col = divmod(index, image.shape[-1] // patch_size)
    out[:, row * patch_size:(row + 1) * patch_size, col * patch_size:(col + 1) * patch_size] = background
    return out


def occlude_with_zero(image, index, patch_size, background):
    out = image.clone()
    row, col = divmod(index, image.shape[-1] // patch_size)
    out[:, row * patch_size:(row + 1) * patch_size, col * patch_size:(col + 1) * patch_size] = 0
    return out


def occlude_transposed(image, index, patch_size, background):
    out = image.clone()
    col, row = divmod(index, image.shape[-1] // patch_size)
    out[:, row * patch_size:(row + 1) * patch_size, col * patch_size:(col + 1) * patch_size] = background
    return out


def occlude_in_place(image, index, patch_size, background):
    row, col = divmod(index, image.shape[-1] // patch_size)
    image[:, row * patch_size:(row + 1) * patch_size, col * patch_size:(col + 1) * patch_size] = background
    return image


CASES = {
    "patchify_images": {
        "right": (patchify_images,),
        "wrong": [(patchify_plain_reshape,), (patchify_columns_first,)],
    },
    "rollout": {
        "right": (rollout,),
        "wrong": [(rollout_without_residual,), (rollout_wrong_order,)],
    },
    "occlude": {
        "right": (occlude,),
        "wrong": [(occlude_with_zero,), (occlude_transposed,), (occlude_in_place,)],
    },
}
