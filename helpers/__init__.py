"""Shared code for the "Attention, derived" notebooks.

Each module maps to a part of the series and reads top to bottom:

- ``checks``: the input checks every module runs at its boundary, with errors a learner can act on
- ``attention``: masks, masked softmax, scaled dot-product attention, heads, the key/value cache
  and ``MultiHeadAttention``, the one attention core every model is built on (01, 05, 07, 13)
- ``scoring``: the scoring functions of generic attention: additive, multiplicative, ... (02)
- ``data``: the synthetic translation task, signals and the digits split (03, 04, 09, 11)
- ``recurrent``: GRU encoder-decoders with and without attention (03, 09)
- ``pooling``: attention pooling over images and audio, squeeze-and-excitation (04, 11)
- ``positional``: sinusoidal, learned, rotary and ALiBi position information (06, 08, 14)
- ``tasks``: small synthetic sequence tasks for self-attention experiments (06, 07, 09)
- ``transformer``: encoder and decoder layers, the encoder-decoder, greedy decoding (08-11, 14)
- ``efficient``: online softmax, tiled (FlashAttention-style), windowed and linear attention (10, 12)
- ``vision``: patches as tokens, a tiny Vision Transformer, attention rollout (11)
- ``corpus``: the census surnames read from the installed ``names`` package, split and batched (14)
- ``ngram``: add-α and interpolated Kneser–Ney n-gram counts, the baselines of a language model (14)
- ``train``: the training loop, seeds trained together, accuracy and the seq2seq loss and metrics
- ``claims``: conclusions from trained models, checked over seeds where the prose makes them
- ``seeds``: every seed the series uses, shifted together by ``HELPERS_SEED_OFFSET``
- ``timing``: processor or wall-clock measurements printed so the tests can mask them
- ``plot``: the series' figure style, heatmap grids with one shared colorbar, sliders, and the
  figures two notebooks share
- ``exercises``: self-checks for the exercises at the end of each notebook

What lives here
---------------
A helper holds what two or more notebooks use, or what is verified against PyTorch. A model that
one notebook trains lives in that notebook. Each mechanism is written once: every multi-head
model calls ``attention.MultiHeadAttention``, every causal mask is ``attention.causal_mask``
(``offset`` aligns it bottom-right for cached decoding), every input check is in ``checks``.

One name per idea
-----------------
- ``embed_dim``: the width of a token's vector (PyTorch's ``d_model`` in ``torch.nn.Transformer``);
  ``head_dim = embed_dim // num_heads``; ``num_kv_heads`` key/value heads.
- ``query``, ``key``, ``value``, ``weights``; shapes ``(batch, heads, queries, keys)``.
- ``mask``: bool, True = may attend (``helpers.attention`` explains PyTorch's two conventions).
- ``max_len``: the longest sequence a table or mask covers; ``max_new_tokens``: how many tokens
  a decoding loop generates.
- ``num_examples``: how many examples a data function builds.
- ``seed`` (an int) for a function that builds a fixed data set or model; ``generator`` (a
  ``torch.Generator``, seeded once by the caller) for a sampler called once per training step.
  An int becomes random numbers only through ``helpers.seeds`` (``manual_seed``, ``generator``,
  ``rng``), so one setting moves every seed of the series (``HELPERS_SEED_OFFSET``).
- Attention weights: an attention module returns ``(output, weights)`` (``need_weights=False``:
  ``weights`` is None); a layer keeps its last weights in ``attention_weights``; a model offers
  ``attention_maps(inputs)``.

Every notebook starts with ``device = helpers.setup()``.
"""

import os

import numpy as np
import torch

from helpers.seeds import generator, manual_seed, seed

__all__ = ["setup", "default_device", "seed", "manual_seed", "generator"]


def default_device() -> torch.device:
    """The GPU when one is present, else the CPU. Every model in the series runs on either."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def setup(seed: int = 0, threads: int | None = 2) -> torch.device:
    """Seed NumPy's and PyTorch's global generators, fix print precision and figure style; return the device.

    Args:
        seed: seed for NumPy's and PyTorch's global generators, through ``helpers.seeds.manual_seed``
            (so ``HELPERS_SEED_OFFSET`` shifts it with every other seed; ``helpers`` draws Python's
            own random numbers from ``helpers.seeds.rng`` instances, never from the global one).
        threads: CPU threads for PyTorch, at most the machine's cores. The default of 2: the
            series' tiny models gain up to a third in wall time from a second core (notebook 14:
            66 s with one thread, 46 s with two, on a 2-core machine), and their many tiny
            operations gain little from more. Nothing the tests compare depends on it: exact
            outputs are printed rounded, trained results are checked as claims over seeds
            (``helpers.claims``), and the tests run the notebooks with one thread while their
            committed outputs come from two. ``None`` leaves PyTorch's default. The environment
            variable ``HELPERS_THREADS`` overrides it (``make test`` sets 1: it runs two notebooks
            at once on two cores).
    """
    manual_seed(seed)
    if os.environ.get("HELPERS_THREADS"):
        threads = int(os.environ["HELPERS_THREADS"])
    if threads is not None:
        torch.set_num_threads(max(1, min(threads, os.cpu_count() or 1)))
    torch.set_printoptions(precision=4, sci_mode=False, linewidth=100)
    np.set_printoptions(precision=4, suppress=True, linewidth=100)

    from helpers import plot  # matplotlib is imported only when a notebook asks for setup

    plot.use_series_style()
    return default_device()
