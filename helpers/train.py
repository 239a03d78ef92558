"""A small training loop shared by every notebook that trains a model (03, 04, 06-09, 11).

``fit`` knows nothing about the model: it draws batches, asks ``loss_fn`` for a loss, steps
AdamW, and records the history. ``fit_seeds`` trains several seeds of one small model *together*
(``torch.func``: the seeds' parameters are stacked and one vectorized step trains them all), so a
comparison over seeds costs little more than one run. A one-line progress display shows in JupyterLab; when the
notebook runs under the tests or ``tools/run_notebooks.py`` (``HELPERS_QUIET=1``) it stays
silent, so the committed outputs hold nothing that varies from run to run.
"""

import copy
import itertools
import math
import os
import time
from collections.abc import Callable, Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from helpers.data import Seq2SeqBatch, batch_sampler, collate, tokenize_source
from helpers.seeds import generator as seeded_generator
from helpers.seeds import manual_seed

__all__ = ["adamw", "fit", "fit_seeds", "warmup_cosine", "count_parameters", "quiet", "accuracy", "train_classifier",
           "seq2seq_loss", "exact_match", "translate", "SEQ2SEQ_RECIPE", "train_seq2seq"]


def quiet() -> bool:
    """True when outputs are being recorded or compared (tests, notebook regeneration)."""
    return os.environ.get("HELPERS_QUIET", "") not in ("", "0")


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


class _Progress:
    """A single line that rewrites itself in JupyterLab; nothing at all when ``quiet()``."""

    def __init__(self, total):
        self.total, self.handle = total, None
        if not quiet():
            from IPython.display import display

            self.handle = display("", display_id=True)

    def update(self, step, loss):
        if self.handle is not None:
            self.handle.update(f"step {step}/{self.total}  loss {loss:.4f}")

    def close(self):
        if self.handle is not None:
            self.handle.update("")


def adamw(params, lr: float, weight_decay: float = 0.01) -> torch.optim.AdamW:
    """AdamW with PyTorch's fused kernel where the release has it for these parameters.

    The fused update does every parameter's step in one kernel instead of a Python loop of small
    operations, which for the series' tiny models is a large share of a training step (an 8-layer
    encoder of notebook 08: about a third faster per step on a CPU). The arithmetic is AdamW's
    either way, up to rounding. PyTorch before 2.4 has no fused CPU kernel: then the usual AdamW.
    """
    params = list(params)
    try:
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)


def fit(model: nn.Module, batches: Iterable | Callable[[int], tuple], loss_fn: Callable, *, steps: int,
        lr: float = 3e-3, weight_decay: float = 0.0, clip: float | None = 1.0,
        evaluate: Callable[[nn.Module], float] | None = None, eval_every: int = 0,
        stop_at: float | None = None, optimizer: torch.optim.Optimizer | None = None,
        schedule: Callable[[int], float] | None = None) -> dict:
    """Train ``model`` for ``steps`` optimizer steps; return the history.

    Args:
        model: any module; it is put in ``train()`` mode while training, ``eval()`` after.
        batches: an iterable of batches (cycled when exhausted) or a function ``step -> batch``.
        loss_fn: ``loss_fn(model, batch) -> scalar loss``.
        steps: number of optimizer steps.
        lr, weight_decay: for AdamW (ignored when ``optimizer`` is given).
        clip: clip the gradient norm to this value (None: no clipping).
        evaluate: ``evaluate(model) -> float`` (an accuracy, say), called every ``eval_every``
            steps and at the end, in ``eval()`` mode under ``torch.no_grad()``.
        stop_at: stop early once ``evaluate`` reaches this value.
        schedule: ``schedule(step) -> factor``: at step ``step`` (1-based) every parameter group
            steps at its initial learning rate times the factor (``warmup_cosine`` makes one).
            None: the learning rate stays as it is.

    Returns:
        ``{"loss": [per step], "eval_step": [...], "eval": [...], "steps": steps run,
        "seconds": wall-clock training time}``. The time varies between runs: show it in a
        figure or through ``helpers.timing``, never as plain text.
    """
    optimizer = optimizer or adamw(model.parameters(), lr=lr, weight_decay=weight_decay)
    draw = batches if callable(batches) else _cycle(batches)
    history = {"loss": [], "eval_step": [], "eval": [], "steps": 0, "seconds": 0.0}
    progress = _Progress(steps)
    start = time.perf_counter()

    def run_eval(step):
        model.eval()
        with torch.no_grad():
            value = float(evaluate(model))
        model.train()
        history["eval_step"].append(step)
        history["eval"].append(value)
        return value

    if schedule is not None:
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])  # the peak, kept across continued runs

    model.train()
    for step in range(1, steps + 1):
        if schedule is not None:
            for group in optimizer.param_groups:
                group["lr"] = group["initial_lr"] * schedule(step)
        loss = loss_fn(model, draw(step))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
        history["loss"].append(loss.item())
        history["steps"] = step
        if step % 25 == 0 or step == steps:
            progress.update(step, loss.item())
        if evaluate is not None and eval_every and step % eval_every == 0 and step != steps:
            if run_eval(step) >= (stop_at if stop_at is not None else float("inf")):
                break
    else:
        if evaluate is not None:
            run_eval(steps)
    history["seconds"] = time.perf_counter() - start
    progress.close()
    model.eval()
    return history


def warmup_cosine(warmup: int, total: int) -> Callable[[int], float]:
    """A learning-rate schedule for ``fit``: ``step -> factor`` of the peak learning rate.

    The factor rises linearly from ``1 / warmup`` to 1 over the first ``warmup`` steps (large
    early steps from random weights are what most often sends a small recurrent model astray),
    then falls along a half cosine to 0 at step ``total`` (small final steps settle the weights
    instead of leaving them wherever the last large, noisy step threw them).
    """
    if not 0 <= warmup < total:
        raise ValueError(f"need 0 <= warmup < total, got warmup={warmup}, total={total}")

    def factor(step: int) -> float:
        if step <= warmup:
            return step / warmup
        progress = min(1.0, (step - warmup) / (total - warmup))
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


def _cycle(batches):
    iterator = itertools.cycle(batches)
    return lambda step: next(iterator)


def fit_seeds(build: Callable[[], nn.Module], seeds: Sequence[int], batches: Iterable | Callable[[int], tuple],
              loss_fn: Callable, *, steps: int, lr: float = 3e-3, weight_decay: float = 0.0,
              clip: float | None = 1.0) -> tuple[list[nn.Module], dict]:
    """Train one model per seed, all at once; return the trained models and the history.

    Each seed ``s`` builds its model after ``helpers.seeds.manual_seed(s)``, so the seeds differ in their
    initialization (and in dropout); they see the same batches. Training is the same as ``fit``
    run once per seed: AdamW, and the gradient norm clipped to ``clip`` *per model*. The seeds'
    parameters are stacked (``torch.func.stack_module_state``) and one ``vmap`` over
    ``functional_call`` computes every seed's loss and gradient in a single pass, which for the
    series' tiny models costs little more than one run.

    Args:
        build: ``build() -> nn.Module``; called once per seed. The model must be usable under
            ``torch.func.vmap``: linear, embedding, norm, attention and dropout layers are;
            recurrent layers (``nn.GRU``) and batch norm are not (train those with ``fit`` in a
            loop over seeds).
        seeds: the seeds, one model each.
        batches: as in ``fit``; every seed gets the same batch at a step.
        loss_fn: ``loss_fn(model, batch) -> scalar loss``, where ``model`` is only *called*
            (``model(inputs...)``), never asked for attributes.
        steps, lr, weight_decay, clip: as in ``fit``.

    Attention models train here on ``MultiHeadAttention``'s explicit path (``need_weights=True``):
    PyTorch's fused CPU kernel has no batching rule for ``vmap``, so it warns on stderr and falls
    back to a slow loop. For tiny attention models a plain loop of ``fit`` is often faster anyway
    (notebooks 08, 13 and 14 measured it).

    Returns:
        ``(models, history)``: the trained models in ``eval()`` mode, in the order of ``seeds``,
        and ``{"loss": tensor (steps, seeds), "steps": steps, "seconds": wall-clock time}``.
    """
    from torch.func import functional_call, grad_and_value, stack_module_state, vmap

    if len(seeds) == 0:
        raise ValueError("fit_seeds needs at least one seed")
    models = []
    for seed in seeds:
        manual_seed(seed)
        models.append(build())
    for model in models:
        model.train()
    params, buffers = stack_module_state(models)  # each: name -> (seeds, *shape)
    for p in params.values():
        p.requires_grad_(False)
    skeleton = copy.deepcopy(models[0]).to("meta")  # holds the structure; the numbers come from params

    def one_loss(p, b, batch):
        return loss_fn(lambda *args, **kwargs: functional_call(skeleton, (p, b), args, kwargs), batch)

    step_all = vmap(grad_and_value(one_loss), in_dims=(0, 0, None), randomness="different")
    # The stacked seeds step with the usual AdamW: the fused kernel's different rounding (same
    # arithmetic, tested) tipped notebook 07's four-head runs out of learning within its budget.
    optimizer = torch.optim.AdamW(list(params.values()), lr=lr, weight_decay=weight_decay)
    draw = batches if callable(batches) else _cycle(batches)
    losses = []
    progress = _Progress(steps)
    start = time.perf_counter()
    for step in range(1, steps + 1):
        grads, loss = step_all(params, buffers, draw(step))  # grads: name -> (seeds, *shape); loss: (seeds,)
        if clip is not None:
            # The same rule as nn.utils.clip_grad_norm_, applied to each seed's own gradient.
            norm = torch.stack([g.flatten(1).pow(2).sum(1) for g in grads.values()]).sum(0).sqrt()  # (seeds,)
            scale = (clip / (norm + 1e-6)).clamp(max=1.0)
            for g in grads.values():
                g.mul_(scale.view(-1, *([1] * (g.ndim - 1))))
        for name, p in params.items():
            p.grad = grads[name]
        optimizer.step()
        losses.append(loss.detach())
        if step % 25 == 0 or step == steps:
            progress.update(step, loss.mean().item())
    seconds = time.perf_counter() - start
    progress.close()
    for index, model in enumerate(models):
        with torch.no_grad():
            for name, p in model.named_parameters():
                p.copy_(params[name][index])
            for name, b in model.named_buffers():
                if name in buffers:
                    b.copy_(buffers[name][index])
        model.eval()
    return models, {"loss": torch.stack(losses), "steps": steps, "seconds": seconds}


# --------------------------------------------------------------------------------------------
# Classifiers: accuracy and a training recipe (notebooks 04 and 11)
# --------------------------------------------------------------------------------------------


@torch.no_grad()
def accuracy(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, batch_size: int = 1000) -> float:
    """Share of ``inputs`` whose highest logit is the label (the model in eval mode)."""
    if len(inputs) != len(labels):
        raise ValueError(f"inputs and labels differ in length: {len(inputs)} vs {len(labels)}")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    right = 0
    for start in range(0, len(inputs), batch_size):
        logits = model(inputs[start: start + batch_size].to(device))
        right += (logits.argmax(dim=-1).cpu() == labels[start: start + batch_size]).sum().item()
    model.train(was_training)
    return right / len(inputs)


def train_classifier(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, *, valid_inputs=None,
                     valid_labels=None, steps: int = 400, batch_size: int = 64, lr: float = 3e-3, seed: int = 0,
                     eval_every: int = 100, weight_decay: float = 0.0,
                     schedule: Callable[[int], float] | None = None) -> dict:
    """Train any classifier with cross-entropy and ``helpers.train.fit``; return its history.

    Batch ``k`` is drawn from a generator seeded with ``seed`` and ``k``, so a run is
    reproducible given the model's initial weights. With validation data, the history records
    the validation accuracy every ``eval_every`` steps. ``weight_decay`` and ``schedule`` (e.g.
    ``warmup_cosine``) are passed to ``fit``.
    """
    device = next(model.parameters()).device

    def draw(step):
        index = torch.randint(len(inputs), (batch_size,), generator=seeded_generator(seed * 1_000_003 + step))
        return inputs[index].to(device), labels[index].to(device)

    def loss_fn(m, batch):
        x, y = batch
        return F.cross_entropy(m(x), y)

    evaluate = None
    if valid_inputs is not None:
        evaluate = lambda m: accuracy(m, valid_inputs, valid_labels)  # noqa: E731
    return fit(model, draw, loss_fn, steps=steps, lr=lr, weight_decay=weight_decay, schedule=schedule,
               evaluate=evaluate, eval_every=eval_every if evaluate else 0)


# --------------------------------------------------------------------------------------------
# Sequence-to-sequence: loss, greedy evaluation, training (the GRU models of 03, the Transformer of 09)
# --------------------------------------------------------------------------------------------


def seq2seq_loss(model: nn.Module, batch: Seq2SeqBatch) -> torch.Tensor:
    """Mean cross-entropy of the next target token under teacher forcing (padding ignored)."""
    batch = batch.to(next(model.parameters()).device)
    logits, _ = model(batch.source, batch.source_lengths, batch.target_in)  # (B, T, V)
    return F.cross_entropy(logits.flatten(0, 1), batch.target_out.flatten(), ignore_index=0)


def _predict(model, pairs, batch_size):
    """Greedy outputs (strings) and weights for ``pairs``, in order."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    outputs, weights = [], []
    for start in range(0, len(pairs), batch_size):
        batch = collate(pairs[start: start + batch_size], model.source_vocab, model.target_vocab).to(device)
        tokens, w = model.greedy_decode(batch.source, batch.source_lengths)
        for row in range(len(batch)):
            outputs.append("".join(model.target_vocab.decode(tokens[row])))
            if w is not None:
                n_out = len(outputs[-1]) + 1  # the digits and the <eos> step
                weights.append(w[row, :n_out, : int(batch.source_lengths[row])].cpu())
    model.train(was_training)
    return outputs, (weights or None)


def exact_match(model: nn.Module, pairs, *, by_length: bool = False, batch_size: int = 500):
    """Share of ``pairs`` whose greedy translation equals the target exactly.

    Args:
        pairs: ``(source, target)`` strings, e.g. a validation split.
        by_length: if True, return ``{number of source words: accuracy}`` instead of one number.
    """
    pairs = list(pairs)
    outputs, _ = _predict(model, pairs, batch_size)
    if not by_length:
        return sum(out == target for out, (_, target) in zip(outputs, pairs, strict=True)) / len(pairs)
    totals, right = {}, {}
    for out, (source, target) in zip(outputs, pairs, strict=True):
        length = len(tokenize_source(source))
        totals[length] = totals.get(length, 0) + 1
        right[length] = right.get(length, 0) + (out == target)
    return {length: right[length] / totals[length] for length in sorted(totals)}


def translate(model: nn.Module, sources):
    """Greedy translations of source strings, with the alignment each one used.

    Returns:
        ``outputs``: list of target strings; ``weights``: list of ``(output tokens + 1, source
        words)`` tensors (the last row is the ``<eos>`` step), or ``None`` without attention.
    """
    pairs = [(source, "") for source in sources]
    return _predict(model, pairs, batch_size=500)


# Notebook 03's training recipe: the defaults of ``train_seq2seq`` (notebook 09 reads them from here).
SEQ2SEQ_RECIPE = {"steps": 150, "batch_size": 64, "lr": 1e-2, "warmup": 10}


def train_seq2seq(model: nn.Module, train_pairs, valid_pairs=None, *, steps: int = SEQ2SEQ_RECIPE["steps"],
                  batch_size: int = SEQ2SEQ_RECIPE["batch_size"], lr: float = SEQ2SEQ_RECIPE["lr"],
                  warmup: int = SEQ2SEQ_RECIPE["warmup"], total_steps: int | None = None, seed: int = 0,
                  eval_every: int = 25, eval_size: int = 300, optimizer: torch.optim.Optimizer | None = None,
                  start_step: int = 0) -> dict:
    """Train with teacher forcing and ``helpers.train.fit``; return its history.

    AdamW (peak learning rate ``lr``; with ``optimizer``, that optimizer's own) under
    ``warmup_cosine(warmup, total_steps)``: a linear warm-up over ``warmup`` steps, then a
    cosine decay to 0 at ``total_steps`` (default: ``start_step + steps``, the end of this call).

    Every ``eval_every`` steps the history records the exact-match accuracy on the first
    ``eval_size`` pairs of ``valid_pairs`` (when given; pass a development set such as
    ``data.translation_dev()``, not the set you report on). Batches depend only on ``seed`` and
    the step, so a run is reproducible given the model's initial weights.

    To *continue* a run, pass the same ``optimizer`` both times, the same ``total_steps`` (the
    whole run's length) and ``start_step`` = the steps already run: the continuation draws the
    batches, and steps at the learning rates, that a single longer run would have.
    """
    evaluate = None
    if valid_pairs is not None:
        subset = list(valid_pairs)[:eval_size]
        evaluate = lambda m: exact_match(m, subset)  # noqa: E731
    total_steps = start_step + steps if total_steps is None else total_steps
    schedule = warmup_cosine(warmup, total_steps)
    draw = batch_sampler(train_pairs, batch_size, seed)
    history = fit(model, lambda step: draw(start_step + step), seq2seq_loss, steps=steps, lr=lr,
                  evaluate=evaluate, eval_every=eval_every if evaluate else 0, optimizer=optimizer,
                  schedule=lambda step: schedule(start_step + step))
    history["eval_step"] = [start_step + step for step in history["eval_step"]]
    history["steps"] += start_step
    return history
