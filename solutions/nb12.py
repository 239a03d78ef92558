"""Reference solutions for notebook 12's exercises (and wrong answers the checks must reject)."""

import torch


def receptive_field(window, layers):
    return layers * (window - 1) + 1


def receptive_field_times(window, layers):
    return window * layers


def linear_step(state, norm, query, key, value):
    state = state + key[:, :, None] * value[:, None, :]  # (B, r, dv)
    norm = norm + key  # (B, r)
    output = (query[:, :, None] * state).sum(1) / (query * norm).sum(1, keepdim=True)
    return output, state, norm


def linear_step_read_first(state, norm, query, key, value):
    output = (query[:, :, None] * state).sum(1) / (query * norm).sum(1, keepdim=True)
    return output, state + key[:, :, None] * value[:, None, :], norm + key


def linear_step_no_normaliser(state, norm, query, key, value):
    state = state + key[:, :, None] * value[:, None, :]
    return (query[:, :, None] * state).sum(1), state, norm + key


def delta_step(state, key, value, beta):
    stored = torch.einsum("bd,bdv->bv", key, state)
    return state + beta[:, None, None] * key[:, :, None] * (value - stored)[:, None, :]


def delta_step_additive(state, key, value, beta):
    return state + beta[:, None, None] * key[:, :, None] * value[:, None, :]


CASES = {
    "receptive_field": {"right": (receptive_field,), "wrong": [(receptive_field_times,)]},
    "linear_step": {"right": (linear_step,), "wrong": [(linear_step_read_first,), (linear_step_no_normaliser,)]},
    "delta_step": {"right": (delta_step,), "wrong": [(delta_step_additive,)]},
}
