"""Tests for helpers.tasks: shapes, label definitions, balance, reproducibility, errors."""

import pytest
import torch

from helpers.tasks import IGNORE, order_task, two_lookups_task


def test_order_task_shapes_and_markers():
    tokens, labels = order_task(200, 9, vocab_size=6, generator=torch.Generator().manual_seed(0))
    assert tokens.shape == (200, 9) and labels.shape == (200,)
    assert tokens.dtype == labels.dtype == torch.long
    assert ((tokens == 0).sum(1) == 1).all() and ((tokens == 1).sum(1) == 1).all()
    assert tokens.max() < 6


def test_order_task_labels_say_which_marker_comes_first():
    tokens, labels = order_task(300, 7, generator=torch.Generator().manual_seed(1))
    first_a = (tokens == 0).int().argmax(1)
    first_b = (tokens == 1).int().argmax(1)
    assert torch.equal(labels, (first_a < first_b).long())


def test_order_task_is_balanced_and_ignores_the_token_set():
    tokens, labels = order_task(4000, 12, generator=torch.Generator().manual_seed(2))
    assert 0.45 < labels.float().mean() < 0.55
    # Swapping the two markers flips the label and leaves the multiset of tokens unchanged.
    swapped = tokens.clone()
    swapped[tokens == 0], swapped[tokens == 1] = 1, 0
    assert torch.equal(swapped.sort(1).values, tokens.sort(1).values)


def test_order_task_markers_reach_every_position():
    tokens, _ = order_task(2000, 5, generator=torch.Generator().manual_seed(3))
    assert ((tokens == 0).any(0)).all() and ((tokens == 1).any(0)).all()


def test_tasks_are_reproducible_with_a_generator():
    for task in (order_task, two_lookups_task):
        a = task(10, 6, generator=torch.Generator().manual_seed(4))
        b = task(10, 6, generator=torch.Generator().manual_seed(4))
        c = task(10, 6, generator=torch.Generator().manual_seed(5))
        assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
        assert not torch.equal(a[0], c[0])


def test_two_lookups_task_targets():
    vocab = 5
    tokens, targets = two_lookups_task(100, 8, vocab_size=vocab, generator=torch.Generator().manual_seed(6))
    assert tokens.shape == targets.shape == (100, 8)
    marked = tokens >= vocab
    assert (marked.sum(1) == 1).all()
    assert tokens.max() < 2 * vocab
    value = tokens[marked] - vocab  # (N,) the marked token's plain value
    assert (targets[:, 0] == IGNORE).all()
    assert torch.equal(targets[:, 1:] // vocab, tokens[:, :-1])
    assert torch.equal(targets[:, 1:] % vocab, value[:, None].expand(-1, 7))
    assert targets[:, 1:].max() < 2 * vocab * vocab


def test_two_lookups_marks_every_position_and_value():
    tokens, _ = two_lookups_task(3000, 6, vocab_size=4, generator=torch.Generator().manual_seed(7))
    marked = tokens >= 4
    assert marked.any(0).all()
    assert set((tokens[marked] - 4).tolist()) == {0, 1, 2, 3}


def test_cross_entropy_skips_ignored_targets():
    _, targets = two_lookups_task(4, 5, vocab_size=3)
    logits = torch.randn(4, 5, 18)
    loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=IGNORE)
    expected = torch.nn.functional.cross_entropy(logits[:, 1:].flatten(0, 1), targets[:, 1:].flatten())
    torch.testing.assert_close(loss, expected)


@pytest.mark.parametrize("call, message", [
    (lambda: order_task(0, 5), "num_examples"),
    (lambda: order_task(3, 1), "at least 2"),
    (lambda: order_task(3, 5, vocab_size=2), "vocab_size"),
    (lambda: two_lookups_task(3, 1), "at least 2"),
    (lambda: two_lookups_task(3, 5, vocab_size=1), "vocab_size"),
])
def test_task_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()
