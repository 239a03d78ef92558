"""Reference solutions for notebook 06's exercises, with plausible wrong answers."""

import torch


def sinusoidal(num_positions, dim):
    position = torch.arange(num_positions, dtype=torch.float64)[:, None]
    angle = position / 10000 ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim)
    return torch.stack([angle.sin(), angle.cos()], dim=-1).flatten(1).float()


def sinusoidal_by_column_index(num_positions, dim):
    position = torch.arange(num_positions, dtype=torch.float64)[:, None]
    angle = position / 10000 ** (2 * torch.arange(dim // 2, dtype=torch.float64) * 2 / dim)  # 4i/dim: too fast
    return torch.stack([angle.sin(), angle.cos()], dim=-1).flatten(1).float()


def sinusoidal_blocks(num_positions, dim):
    position = torch.arange(num_positions, dtype=torch.float64)[:, None]
    angle = position / 10000 ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim)
    return torch.cat([angle.sin(), angle.cos()], dim=-1).float()  # sines then cosines, not interleaved


def rope(x, positions):
    dim = x.shape[-1]
    angle = positions[:, None].double() * 10000 ** (-torch.arange(0, dim, 2, dtype=torch.float64) / dim)
    cos, sin = angle.cos().float(), angle.sin().float()
    a, b = x[..., 0::2], x[..., 1::2]
    return torch.stack([a * cos - b * sin, a * sin + b * cos], dim=-1).flatten(-2)


def rope_wrong_direction(x, positions):
    return rope(x, -positions)


def rope_half_split(x, positions):
    dim = x.shape[-1]
    angle = positions[:, None].double() * 10000 ** (-torch.arange(0, dim, 2, dtype=torch.float64) / dim)
    cos, sin = angle.cos().float(), angle.sin().float()
    a, b = x[..., : dim // 2], x[..., dim // 2:]  # pairs (i, i + dim/2): a valid RoPE, not this one
    return torch.cat([a * cos - b * sin, a * sin + b * cos], dim=-1)


def causal_alibi(slopes, length):
    distance = torch.arange(length)[:, None] - torch.arange(length)  # (L, L): i - j
    bias = -slopes[:, None, None] * distance
    return bias.masked_fill(distance < 0, float("-inf"))


def causal_alibi_symmetric(slopes, length):
    distance = torch.arange(length)[:, None] - torch.arange(length)
    return -slopes[:, None, None] * distance.abs()  # forgets the mask


def causal_alibi_positive(slopes, length):
    distance = torch.arange(length)[:, None] - torch.arange(length)
    return (slopes[:, None, None] * distance).masked_fill(distance < 0, float("-inf"))  # rewards distance


CASES = {
    "sinusoidal": {"right": (sinusoidal,), "wrong": [(sinusoidal_by_column_index,), (sinusoidal_blocks,)]},
    "rope": {"right": (rope,), "wrong": [(rope_wrong_direction,), (rope_half_split,)]},
    "causal_alibi": {"right": (causal_alibi,), "wrong": [(causal_alibi_symmetric,), (causal_alibi_positive,)]},
}
