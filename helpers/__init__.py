"""Shared code for the "Attention, derived" notebooks.

Each module maps to a part of the series and reads top to bottom:

- ``attention``: masked softmax, scaled dot-product attention, multi-head attention (01, 07)
- ``scoring``: the scoring functions of generic attention: additive, multiplicative, ... (02)
- ``data``: the synthetic translation task, signals and the digits split (03, 04, 09, 11)
- ``recurrent``: GRU encoder-decoders with and without attention (03, 09)
- ``pooling``: attention pooling over images and audio, squeeze-and-excitation (04, 11)
- ``positional``: sinusoidal, learned, rotary and ALiBi position information (06, 08)
- ``tasks``: small synthetic sequence tasks for self-attention experiments (06, 07, 09)
- ``transformer``: encoder and decoder layers, the encoder-decoder, KV cache (08-11)
- ``efficient``: online softmax and tiled (FlashAttention-style) attention (10)
- ``vision``: patches as tokens, a tiny Vision Transformer, attention rollout (11)
- ``train``: the small training loop every trained model uses, and seeds trained together
- ``claims``: conclusions from trained models, checked over seeds where the prose makes them
- ``timing``: wall-clock measurements printed so the tests can mask them
- ``plot``: the few figure helpers every notebook uses, sliders included
- ``exercises``: self-checks for the exercises at the end of each notebook

Every notebook starts with ``device = helpers.setup()``.
"""

import os
import random

import numpy as np
import torch

__all__ = ["setup", "default_device"]


def default_device() -> torch.device:
    """The GPU when one is present, else the CPU. Every model in the series runs on either."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def setup(seed: int = 0, threads: int | None = 1) -> torch.device:
    """Seed every random generator, fix print precision and figure style; return the device.

    Args:
        seed: seed for Python's, NumPy's and PyTorch's generators.
        threads: CPU threads for PyTorch. The default of 1 keeps the notebooks' timings
            comparable between machines. Nothing compared by the tests depends on it: exact
            outputs are printed rounded, and trained results are checked as claims over seeds
            (``helpers.claims``). ``None`` leaves PyTorch's default. The environment variable
            ``HELPERS_THREADS`` overrides it (``make test-portable`` runs with 2 threads).
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if os.environ.get("HELPERS_THREADS"):
        threads = int(os.environ["HELPERS_THREADS"])
    if threads is not None:
        torch.set_num_threads(threads)
    torch.set_printoptions(precision=4, sci_mode=False, linewidth=100)
    np.set_printoptions(precision=4, suppress=True, linewidth=100)

    from helpers import plot  # matplotlib is imported only when a notebook asks for setup

    plot.use_series_style()
    return default_device()
