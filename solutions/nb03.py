"""Reference solutions for notebook 03's exercises (and wrong answers the checks must reject)."""

import torch

from helpers.attention import masked_softmax


def attention_context(query, memory, mask, score):
    weights = masked_softmax(score(query[:, None, :], memory), mask[:, None, :])[:, 0]  # (B, S)
    return (weights[:, None, :] @ memory)[:, 0], weights


def attention_context_unmasked(query, memory, mask, score):
    weights = torch.softmax(score(query[:, None, :], memory), dim=-1)[:, 0]
    return (weights[:, None, :] @ memory)[:, 0], weights


def attention_context_mean(query, memory, mask, score):
    weights = mask.float() / mask.sum(-1, keepdim=True)
    return (weights[:, None, :] @ memory)[:, 0], weights


def decoder_inputs(target_out, bos_id, eos_id, pad_id):
    inputs = torch.where(target_out == eos_id, torch.full_like(target_out, pad_id), target_out)
    start = torch.full_like(target_out[:, :1], bos_id)
    return torch.cat([start, inputs[:, :-1]], dim=1)


def decoder_inputs_keeps_eos(target_out, bos_id, eos_id, pad_id):
    return torch.cat([torch.full_like(target_out[:, :1], bos_id), target_out[:, :-1]], dim=1)


def decoder_inputs_unshifted(target_out, bos_id, eos_id, pad_id):
    return torch.where(target_out == eos_id, torch.full_like(target_out, bos_id), target_out)


def diagonal_share(alignments):
    hits = rows = 0
    for weights in alignments:
        steps = torch.arange(weights.shape[0])
        hits += (weights.argmax(-1) == steps).sum().item()
        rows += weights.shape[0]
    return hits / rows


def diagonal_share_mean_of_means(alignments):
    return sum((w.argmax(-1) == torch.arange(w.shape[0])).float().mean().item() for w in alignments) / len(alignments)


CASES = {
    "attention_context": {"right": (attention_context,),
                          "wrong": [(attention_context_unmasked,), (attention_context_mean,)]},
    "decoder_inputs": {"right": (decoder_inputs,),
                       "wrong": [(decoder_inputs_keeps_eos,), (decoder_inputs_unshifted,)]},
    "diagonal_share": {"right": (diagonal_share,),
                       "wrong": [(diagonal_share_mean_of_means,)]},
}
