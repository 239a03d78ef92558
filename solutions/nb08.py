"""Reference solutions for notebook 08's exercises (and wrong answers the checks must reject)."""

import torch


def residual_block(x, sublayer, norm, norm_first):
    if norm_first:
        return x + sublayer(norm(x))
    return norm(x + sublayer(x))


def residual_block_swapped(x, sublayer, norm, norm_first):
    return residual_block(x, sublayer, norm, not norm_first)


def residual_block_no_residual(x, sublayer, norm, norm_first):
    return sublayer(norm(x)) if norm_first else norm(sublayer(x))


def cached_causal_mask(num_new, num_cached):
    return torch.ones(num_new, num_cached + num_new, dtype=torch.bool).tril(num_cached)


def cached_causal_mask_top_left(num_new, num_cached):
    return torch.ones(num_new, num_cached + num_new, dtype=torch.bool).tril()


def encoder_layer_parameters(d_model, dim_feedforward):
    attention = 4 * (d_model * d_model + d_model)
    feed_forward = d_model * dim_feedforward + dim_feedforward + dim_feedforward * d_model + d_model
    norms = 2 * 2 * d_model
    return attention + feed_forward + norms


def encoder_layer_parameters_no_biases(d_model, dim_feedforward):
    return 4 * d_model * d_model + 2 * d_model * dim_feedforward + 4 * d_model


CASES = {
    "residual_block": {"right": (residual_block,),
                       "wrong": [(residual_block_swapped,), (residual_block_no_residual,)]},
    "cached_causal_mask": {"right": (cached_causal_mask,), "wrong": [(cached_causal_mask_top_left,)]},
    "encoder_layer_parameters": {"right": (encoder_layer_parameters,),
                                 "wrong": [(encoder_layer_parameters_no_biases,)]},
}
