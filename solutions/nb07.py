"""Reference solutions for notebook 07's exercises, with plausible wrong answers."""

from helpers.attention import causal_mask


def split_heads(x, num_heads):
    batch, length, embed_dim = x.shape
    return x.view(batch, length, num_heads, embed_dim // num_heads).transpose(1, 2)


def split_heads_by_view_only(x, num_heads):
    batch, length, embed_dim = x.shape
    return x.view(batch, num_heads, length, embed_dim // num_heads)  # right shape, wrong features


def torch_masks(real, causal):
    return ~real, (~causal_mask(real.shape[1]) if causal else None)


def torch_masks_unconverted(real, causal):
    return real, (causal_mask(real.shape[1]) if causal else None)


def torch_masks_causal_unconverted(real, causal):
    return ~real, (causal_mask(real.shape[1]) if causal else None)


def mha_parameter_count(embed_dim, num_heads):
    return 4 * embed_dim * embed_dim + 4 * embed_dim


def mha_parameter_count_per_head(embed_dim, num_heads):
    head_dim = embed_dim // num_heads
    return num_heads * (3 * (embed_dim * head_dim + head_dim)) + embed_dim * embed_dim  # forgets the output bias


CASES = {
    "split_heads": {"right": (split_heads,), "wrong": [(split_heads_by_view_only,)]},
    "torch_masks": {"right": (torch_masks,),
                    "wrong": [(torch_masks_unconverted,), (torch_masks_causal_unconverted,)]},
    "mha_parameter_count": {"right": (mha_parameter_count,), "wrong": [(mha_parameter_count_per_head,)]},
}
