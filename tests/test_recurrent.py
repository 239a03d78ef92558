"""The GRU encoder-decoder: shapes, masking of padding, teacher forcing vs greedy decoding, accuracy."""

import pytest
import torch

from helpers import data, recurrent, train
from helpers.data import collate

PAIRS = [("one two three", "123"), ("nine", "9"), ("four four five six", "4456")]


@pytest.fixture(params=["none", "bahdanau", "luong"])
def model(request):
    torch.manual_seed(0)
    return recurrent.Seq2Seq(request.param, embed_dim=8, hidden_size=16).eval()


def test_output_shapes(model):
    batch = collate(PAIRS)
    logits, weights = model(batch.source, batch.source_lengths, batch.target_in)
    assert logits.shape == (3, 5, len(data.TARGET_VOCAB))
    if model.attention == "none":
        assert weights is None
    else:
        assert weights.shape == (3, 5, 4)
        torch.testing.assert_close(weights.sum(-1), torch.ones(3, 5))
    tokens, greedy_weights = model.greedy_decode(batch.source, batch.source_lengths, max_new_tokens=7)
    assert tokens.shape == (3, 7) and tokens.dtype == torch.long
    assert (greedy_weights is None) == (model.attention == "none")


def test_padding_is_never_attended_and_changes_nothing(model):
    batch = collate(PAIRS)
    logits, weights = model(batch.source, batch.source_lengths, batch.target_in)
    if weights is not None:
        lengths = batch.source_lengths
        for row in range(3):
            assert (weights[row, :, lengths[row]:] == 0).all()
    # The short pair alone, unpadded, gives the same logits as inside the padded batch.
    alone = collate(PAIRS[1:2])
    alone_logits, _ = model(alone.source, alone.source_lengths, alone.target_in)
    torch.testing.assert_close(alone_logits[0], logits[1, : alone_logits.shape[1]], atol=1e-5, rtol=1e-4)
    # Whatever id the padding holds, nothing changes.
    noisy = batch.source.clone()
    noisy[batch.source == 0] = 7
    noisy_logits, _ = model(noisy, batch.source_lengths, batch.target_in)
    torch.testing.assert_close(noisy_logits, logits)


def test_greedy_matches_teacher_forcing_on_its_own_output(model):
    batch = collate(PAIRS)
    tokens, weights = model.greedy_decode(batch.source, batch.source_lengths, max_new_tokens=5)
    bos = torch.full((3, 1), data.TARGET_VOCAB.bos_id)
    logits, forced_weights = model(batch.source, batch.source_lengths, torch.cat([bos, tokens[:, :-1]], dim=1))
    assert torch.equal(logits.argmax(-1), tokens)
    if weights is not None:
        torch.testing.assert_close(weights, forced_weights)


def test_loss_and_gradients_reach_every_parameter(model):
    model.train()
    loss = train.seq2seq_loss(model, collate(PAIRS))
    assert loss.ndim == 0 and loss.item() > 0
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_exact_match_and_translate():
    class Oracle(recurrent.Seq2Seq):
        """Copies the source digits: exact match 1, by construction."""

        def greedy_decode(self, source, source_lengths, max_new_tokens=None):
            tokens = torch.where(source > 0, source, torch.full_like(source, data.TARGET_VOCAB.eos_id))
            eos = torch.full((source.shape[0], 1), data.TARGET_VOCAB.eos_id)
            return torch.cat([tokens, eos], dim=1), None

    oracle = Oracle("none", embed_dim=4, hidden_size=4)
    # Source word "zero" has id 3, target digit "0" has id 3: the oracle's copy is a translation.
    assert train.exact_match(oracle, PAIRS) == 1.0
    wrong = [("one two", "13"), ("five", "5")]
    assert train.exact_match(oracle, wrong) == 0.5
    assert train.exact_match(oracle, wrong + PAIRS, by_length=True) == {1: 1.0, 2: 0.0, 3: 1.0, 4: 1.0}
    outputs, weights = train.translate(oracle, ["seven eight"])
    assert outputs == ["78"] and weights is None


def test_translate_returns_alignments():
    torch.manual_seed(0)
    model = recurrent.Seq2Seq("bahdanau", embed_dim=8, hidden_size=16)
    outputs, weights = train.translate(model, ["one two three", "four"])
    assert len(outputs) == 2 and len(weights) == 2
    assert weights[0].shape == (len(outputs[0]) + 1, 3) and weights[1].shape[1] == 1


def test_a_short_training_run_learns():
    torch.manual_seed(0)
    train_pairs, valid = data.translation_split(num_train=500, num_valid=50, min_len=2, max_len=4)
    model = recurrent.Seq2Seq("bahdanau", embed_dim=16, hidden_size=32)
    before = train.exact_match(model, valid)
    history = train.train_seq2seq(model, train_pairs, valid, steps=120, batch_size=64, lr=1e-2, eval_every=60)
    assert history["loss"][-1] < 0.5 * history["loss"][0]
    assert history["eval"][-1] > before + 0.3


def test_errors():
    model = recurrent.Seq2Seq("luong", embed_dim=4, hidden_size=4)
    batch = collate(PAIRS)
    with pytest.raises(ValueError, match="attention must be one of"):
        recurrent.Seq2Seq("dot")
    with pytest.raises(ValueError, match="source_lengths must lie"):
        model(batch.source, torch.tensor([3, 0, 4]), batch.target_in)
    with pytest.raises(ValueError, match=r"source_lengths must be \(batch,\)"):
        model(batch.source, torch.tensor([3, 1]), batch.target_in)
    with pytest.raises(ValueError, match="long ids"):
        model(batch.source.float(), batch.source_lengths, batch.target_in)


def test_a_continued_run_is_the_longer_run():
    train_pairs, _ = data.translation_split(num_train=200, num_valid=20, min_len=2, max_len=4)
    weights = []
    for split in (False, True):
        torch.manual_seed(0)
        model = recurrent.Seq2Seq("luong", embed_dim=8, hidden_size=8)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
        if split:  # the learning-rate schedule spans the whole run: total_steps=5 in both calls
            train.train_seq2seq(model, train_pairs, steps=3, batch_size=16, warmup=2, total_steps=5,
                                optimizer=optimizer)
            history = train.train_seq2seq(model, train_pairs, steps=2, batch_size=16, warmup=2, total_steps=5,
                                          optimizer=optimizer, start_step=3)
            assert history["steps"] == 5
        else:
            train.train_seq2seq(model, train_pairs, steps=5, batch_size=16, warmup=2, optimizer=optimizer)
        weights.append([p.detach().clone() for p in model.parameters()])
    for a, b in zip(*weights, strict=True):
        torch.testing.assert_close(a, b)


def test_notebook_03_size_builds_a_model():
    model = recurrent.Seq2Seq("bahdanau", **recurrent.NOTEBOOK_03_SIZE)
    assert model.encoder.gru.hidden_size == recurrent.NOTEBOOK_03_SIZE["hidden_size"]
    assert set(train.SEQ2SEQ_RECIPE) == {"steps", "batch_size", "lr", "warmup"}


def test_translation_dev_is_disjoint_from_the_split():
    train, valid = data.translation_split(num_train=300, num_valid=100)
    dev = data.translation_dev(num_dev=50, num_train=300, num_valid=100)
    assert len(dev) == 50 and dev == data.translation_dev(num_dev=50, num_train=300, num_valid=100)
    sources = {source for source, _ in dev}
    assert not sources & {source for source, _ in train + valid}
    # The default split is unchanged by the dev set's existence (notebooks 03 and 09 share it).
    assert data.translation_split()[1][:3] == data.make_pairs(1000, 3, 12, seed=1)[:3]


def test_forward_all_is_the_step_loop(model):
    batch = collate(PAIRS)
    logits, weights = model(batch.source, batch.source_lengths, batch.target_in)
    memory, summary, mask = model._encode(batch.source, batch.source_lengths)
    state = model.decoder.start(memory, summary, mask)
    step_logits, step_weights = [], []
    for t in range(batch.target_in.shape[1]):
        out, state, w = model.decoder.step(batch.target_in[:, t], state, memory, mask)
        step_logits.append(out)
        step_weights.append(w)
    torch.testing.assert_close(logits, torch.stack(step_logits, 1))
    if weights is not None:
        torch.testing.assert_close(weights, torch.stack(step_weights, 1))
