"""Checks at the boundary of every helper: errors a learner can act on.

Every module of ``helpers`` validates its inputs with these functions, so a wrong shape, dtype or
mask reads the same wherever it is caught: what was expected, what arrived, and the shapes
involved, e.g. ``query has 12 features but the module expects 16 (embed_dim): shapes query
(2, 5, 12)``. Wrong types raise ``TypeError``; wrong shapes and values raise ``ValueError``.

Masks are bool tensors where **True means "may attend"** (``helpers.attention`` explains the
convention once, with PyTorch's opposite one).
"""

import torch

__all__ = [
    "shape_of",
    "check_float",
    "check_sequence",
    "check_mask",
    "check_attention_inputs",
    "check_token_ids",
    "check_positive_int",
]


def shape_of(t) -> tuple:
    """``tuple(t.shape)`` for a tensor, the type's name for anything else: printable in a message."""
    return tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__


def check_float(name: str, t) -> None:
    """Raise unless ``t`` is a floating-point tensor."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if not t.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {t.dtype}")


def check_sequence(name: str, x, features: int | None = None, *, what: str = "embed_dim") -> None:
    """Raise unless ``x`` is a float ``(batch, length, features)`` tensor.

    Args:
        name: the argument's name, as the caller knows it.
        features: the width ``x`` must have (None: any).
        what: the name of that width in the caller's arguments, quoted in the message.
    """
    check_float(name, x)
    if x.dim() != 3:
        raise ValueError(f"{name} must be (batch, length, features), got shape {shape_of(x)}")
    if features is not None and x.shape[-1] != features:
        raise ValueError(f"{name} has {x.shape[-1]} features but the module expects {features} ({what}): "
                         f"shape {shape_of(x)}")


def check_mask(mask, target_shape, name: str = "mask") -> None:
    """Raise unless ``mask`` is a bool tensor broadcastable to ``target_shape`` (True = may attend)."""
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"{name} must be a torch.bool tensor (True = may attend), got {type(mask).__name__}")
    if mask.dtype != torch.bool:
        raise TypeError(
            f"{name} must be a bool tensor where True means 'may attend', got dtype {mask.dtype}; "
            "for a 0/1 tensor use mask.bool(), for PyTorch's key_padding_mask use ~key_padding_mask"
        )
    try:
        shape = torch.broadcast_shapes(mask.shape, target_shape)
    except RuntimeError:
        shape = None
    if shape != torch.Size(target_shape):
        raise ValueError(
            f"{name} of shape {shape_of(mask)} does not broadcast to the attention weights' shape "
            f"{tuple(target_shape)}"
        )


def check_attention_inputs(query, key, value, *, need_keys: bool = False) -> torch.Size:
    """Raise unless ``query (..., Lq, d)``, ``key (..., Lk, d)``, ``value (..., Lk, dv)`` fit together.

    They must be floating-point tensors of one dtype with at least 2 dimensions, query and key
    the same width, key and value the same length, and leading (batch) dimensions that
    broadcast; with ``need_keys``, at least one key. Returns the broadcast batch shape.
    """
    for name, t in (("query", query), ("key", key), ("value", value)):
        check_float(name, t)
        if t.dim() < 2:
            raise ValueError(f"{name} needs at least 2 dimensions (..., length, features), got shape {shape_of(t)}")
    shapes = f"shapes query {shape_of(query)}, key {shape_of(key)}, value {shape_of(value)}"
    if not (query.dtype == key.dtype == value.dtype):
        raise TypeError(f"query, key and value must share a dtype, got {query.dtype}, {key.dtype}, {value.dtype}")
    if query.shape[-1] != key.shape[-1]:
        raise ValueError(f"query and key must have the same number of features to be compared: {shapes}")
    if key.shape[-2] != value.shape[-2]:
        raise ValueError(f"key and value must have the same length (one value per key): {shapes}")
    if need_keys and key.shape[-2] == 0:
        raise ValueError(f"there must be at least one key to attend to: {shapes}")
    try:
        return torch.broadcast_shapes(query.shape[:-2], key.shape[:-2], value.shape[:-2])
    except RuntimeError:
        raise ValueError(f"the leading (batch) dimensions do not broadcast: {shapes}") from None


def check_token_ids(name: str, tokens, vocab_size: int | None = None) -> None:
    """Raise unless ``tokens`` is a ``(batch, length)`` integer tensor with ids in ``0..vocab_size - 1``."""
    if not isinstance(tokens, torch.Tensor) or tokens.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"{name} must be an integer tensor of token ids, got "
                        f"{getattr(tokens, 'dtype', type(tokens).__name__)}")
    if tokens.dim() != 2:
        raise ValueError(f"{name} must be (batch, length) token ids, got shape {shape_of(tokens)}")
    if vocab_size is not None and tokens.numel() and (tokens.min() < 0 or tokens.max() >= vocab_size):
        raise ValueError(f"{name} has ids outside 0..{vocab_size - 1}: min {int(tokens.min())}, "
                         f"max {int(tokens.max())}")


def check_positive_int(name: str, value, meaning: str = "") -> None:
    """Raise unless ``value`` is an ``int`` (not a bool) of at least 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        why = f" ({meaning})" if meaning else ""
        raise ValueError(f"{name} must be a positive int{why}, got {value!r}")
