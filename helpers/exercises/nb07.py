"""Self-checks for notebook 07 (multi-head attention)."""

import torch
from torch import nn

from helpers import seeds
from helpers.attention import MultiHeadAttention, padding_mask
from helpers.exercises import exercise, expect, expect_close
from helpers.train import count_parameters

__all__ = ["split_heads", "torch_masks", "mha_parameter_count"]


@exercise("Exercise 1: split the width into heads")
def split_heads(fn):
    x = torch.arange(2 * 3 * 8, dtype=torch.float32).view(2, 3, 8)
    expected = x.view(2, 3, 4, 2).transpose(1, 2)  # (B, H, L, hd)
    got = fn(x, 4)
    expect(isinstance(got, torch.Tensor), f"return a tensor, got {type(got).__name__}")
    expect(tuple(got.shape) == (2, 4, 3, 2), f"expected shape (batch, heads, length, head_dim) = (2, 4, 3, 2), "
           f"got {tuple(got.shape)}")
    expect_close(got, expected, "view as (batch, length, heads, head_dim) first, then transpose(1, 2); "
                 "a view straight to (batch, heads, length, head_dim) mixes positions into the heads")


@exercise("Exercise 2: masks for torch.nn.MultiheadAttention")
def torch_masks(fn):
    seeds.manual_seed(3)
    torch_mha = nn.MultiheadAttention(8, 2, batch_first=True)
    ours = MultiHeadAttention.from_torch(torch_mha)
    x = torch.randn(2, 5, 8)
    real = padding_mask(torch.tensor([5, 3]))
    for causal in (False, True):
        key_padding_mask, attn_mask = fn(real, causal)
        expect(key_padding_mask is not None and key_padding_mask.dtype == torch.bool,
               "key_padding_mask must be a bool tensor of shape (batch, length)")
        expect(causal or attn_mask is None, "without causal, return None for attn_mask")
        expected, _ = ours(x, mask=real[:, None, None, :], causal=causal)
        got, _ = torch_mha(x, x, x, key_padding_mask=key_padding_mask, attn_mask=attn_mask)
        expect(not got.isnan().any(), f"with causal={causal} PyTorch returned NaN: some query has every key "
               "blocked. In PyTorch's masks True means 'blocked'")
        expect_close(got, expected, f"with causal={causal} the outputs differ: PyTorch's True means 'blocked', "
                     "ours means 'may attend'; invert with ~ (and the causal mask blocks keys j > i)")


@exercise("Exercise 3: parameters of multi-head attention")
def mha_parameter_count(fn):
    for embed_dim, num_heads in ((8, 1), (8, 2), (64, 8), (12, 3)):
        expected = count_parameters(MultiHeadAttention(embed_dim, num_heads))
        got = fn(embed_dim, num_heads)
        expect(got == expected, f"for embed_dim={embed_dim}, num_heads={num_heads} you gave {got}: count four "
               "embed_dim x embed_dim projections and their biases; the head count does not enter")
