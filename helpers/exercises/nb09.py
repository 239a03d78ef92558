"""Self-checks for notebook 09 · The Transformer against recurrent attention, measured."""

from helpers.exercises import exercise, expect


@exercise("Exercise 1: sequential steps in a training forward pass")
def sequential_steps(fn):
    for source_length, target_length, num_layers in ((5, 6, 1), (12, 13, 2), (40, 3, 6)):
        rnn = fn("rnn", source_length, target_length, num_layers)
        transformer = fn("transformer", source_length, target_length, num_layers)
        expect(rnn == source_length + target_length,
               f"rnn with S={source_length}, T={target_length}: the encoder takes one step per source word, "
               "then the decoder one step per target token")
        expect(transformer == 2 * num_layers,
               f"transformer with {num_layers} layer(s) per stack: each layer handles all positions at once, "
               "so count layers (encoder and decoder), not positions")


@exercise("Exercise 2: how many attention scores")
def attention_scores(fn):
    for S, T, heads, layers in ((4, 5, 1, 1), (10, 11, 4, 2), (7, 3, 2, 3)):
        expect(fn("bahdanau", S, T, heads, layers) == T * S,
               f"bahdanau with S={S}, T={T}: one score per (target step, source position)")
        expected = heads * layers * (S * S + T * T + T * S)
        expect(fn("transformer", S, T, heads, layers) == expected,
               f"transformer with S={S}, T={T}, {heads} heads, {layers} layers: expected {expected}; "
               "every head of every layer scores S*S (encoder), T*T (decoder) and T*S (cross) pairs")


@exercise("Exercise 3: accuracy by length")
def accuracy_by_length(fn):
    pairs = [("one two", "12"), ("three four", "34"), ("five six seven", "567"), ("eight", "8"),
             ("nine nine nine", "999")]
    outputs = ["12", "35", "567", "8", "99"]
    expected = {1: 1.0, 2: 0.5, 3: 0.5}
    got = fn(outputs, pairs)
    expect(isinstance(got, dict), f"return a dict {{length: accuracy}}, got {type(got).__name__}")
    expect(set(got) == set(expected), f"the keys are the numbers of source *words* {sorted(expected)}, "
           f"got {sorted(got)}")
    expect(all(abs(got[n] - expected[n]) < 1e-9 for n in expected),
           "each value is the share of pairs of that length whose output equals the target exactly")
    expect(list(got) == sorted(got), "sort the dict by length")
