"""helpers.train: fit learns and reproduces; fit_seeds equals fit run once per seed."""

import copy

import pytest
import torch
from torch import nn

from helpers import train


def make_problem(seed=0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(64, 4, generator=generator)
    y = (x @ torch.tensor([1.0, -2.0, 0.5, 3.0]) > 0).long()
    return [(x[i:i + 16], y[i:i + 16]) for i in range(0, 64, 16)]


def build():
    return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.LayerNorm(8), nn.Linear(8, 2))


def loss_fn(model, batch):
    x, y = batch
    return nn.functional.cross_entropy(model(x), y)


def test_fit_lowers_the_loss_and_is_silent_under_tests(capsys, monkeypatch):
    monkeypatch.setenv("HELPERS_QUIET", "1")
    torch.manual_seed(0)
    model = build()
    history = train.fit(model, make_problem(), loss_fn, steps=80, lr=1e-2)
    assert history["steps"] == 80 and len(history["loss"]) == 80
    assert sum(history["loss"][-8:]) / 8 < 0.5 * sum(history["loss"][:8]) / 8
    assert not model.training
    assert capsys.readouterr().out == ""


def test_fit_reproduces_with_the_same_seed():
    runs = []
    for _ in range(2):
        torch.manual_seed(3)
        runs.append(train.fit(build(), make_problem(), loss_fn, steps=10)["loss"])
    assert runs[0] == runs[1]


def test_fit_stops_early_and_records_evaluations():
    torch.manual_seed(0)
    history = train.fit(build(), make_problem(), loss_fn, steps=100, evaluate=lambda m: 1.0, eval_every=10,
                        stop_at=0.5)
    assert history["steps"] == 10 and history["eval"] == [1.0]


@pytest.mark.parametrize("clip", [None, 0.05])
def test_fit_seeds_equals_fit_once_per_seed(clip, monkeypatch):
    monkeypatch.setenv("HELPERS_QUIET", "1")
    seeds = [0, 1, 2]
    batches = make_problem()
    models, history = train.fit_seeds(build, seeds, batches, loss_fn, steps=15, lr=1e-2, weight_decay=0.01,
                                      clip=clip)
    assert history["loss"].shape == (15, 3)
    for seed, model in zip(seeds, models, strict=True):
        torch.manual_seed(seed)
        reference = build()
        ref_history = train.fit(reference, batches, loss_fn, steps=15, lr=1e-2, weight_decay=0.01, clip=clip)
        torch.testing.assert_close(history["loss"][:, seeds.index(seed)], torch.tensor(ref_history["loss"]),
                                   rtol=1e-4, atol=1e-5)
        for (name, p), q in zip(model.named_parameters(), reference.parameters(), strict=True):
            torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5, msg=name)
        assert not model.training


def test_fit_seeds_needs_a_seed():
    with pytest.raises(ValueError, match="at least one seed"):
        train.fit_seeds(build, [], make_problem(), loss_fn, steps=1)


def test_warmup_cosine_rises_then_falls_to_zero():
    factor = train.warmup_cosine(4, 20)
    values = [factor(step) for step in range(1, 21)]
    assert values[:4] == [0.25, 0.5, 0.75, 1.0]
    assert all(a >= b for a, b in zip(values[3:-1], values[4:], strict=True))
    assert values[-1] == pytest.approx(0.0, abs=1e-12)
    assert train.warmup_cosine(0, 10)(1) < 1.0
    with pytest.raises(ValueError, match="warmup"):
        train.warmup_cosine(10, 10)


def test_fit_schedule_sets_each_steps_learning_rate():
    torch.manual_seed(0)
    model = build()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    seen = []

    def record(model, batch):
        seen.append(optimizer.param_groups[0]["lr"])
        return loss_fn(model, batch)

    train.fit(model, make_problem(), record, steps=4, optimizer=optimizer, schedule=lambda step: 1 / step)
    assert seen == pytest.approx([0.1, 0.05, 0.1 / 3, 0.025])
    # Without a schedule fit leaves the learning rate alone.
    optimizer = torch.optim.SGD(model.parameters(), lr=0.3)
    seen.clear()
    train.fit(model, make_problem(), record, steps=2, optimizer=optimizer)
    assert seen == [0.3, 0.3]


def test_count_parameters():
    assert train.count_parameters(nn.Linear(3, 2)) == 8


def test_adamw_takes_the_same_steps_as_torchs_adamw():
    from helpers.train import adamw

    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    twin = copy.deepcopy(model)
    fast, reference = adamw(model.parameters(), lr=0.1), torch.optim.AdamW(twin.parameters(), lr=0.1)
    for _ in range(5):
        x = torch.randn(8, 4)
        for m, optimizer in ((model, fast), (twin, reference)):
            optimizer.zero_grad()
            m(x).square().mean().backward()
            optimizer.step()
    for a, b in zip(model.parameters(), twin.parameters(), strict=True):
        torch.testing.assert_close(a, b)
