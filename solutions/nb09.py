"""Reference solutions for notebook 09's exercises (and wrong answers the checks must reject)."""


def sequential_steps(kind, source_length, target_length, num_layers):
    if kind == "rnn":
        return source_length + target_length
    return 2 * num_layers


def sequential_steps_per_position(kind, source_length, target_length, num_layers):
    return source_length + target_length if kind == "rnn" else num_layers * (source_length + target_length)


def attention_scores(kind, source_length, target_length, num_heads, num_layers):
    if kind == "bahdanau":
        return target_length * source_length
    per_head = source_length ** 2 + target_length ** 2 + target_length * source_length
    return num_heads * num_layers * per_head


def attention_scores_no_cross(kind, source_length, target_length, num_heads, num_layers):
    if kind == "bahdanau":
        return target_length * source_length
    return num_heads * num_layers * (source_length ** 2 + target_length ** 2)


def accuracy_by_length(outputs, pairs):
    totals, right = {}, {}
    for output, (source, target) in zip(outputs, pairs, strict=True):
        length = len(source.split())
        totals[length] = totals.get(length, 0) + 1
        right[length] = right.get(length, 0) + (output == target)
    return {n: right[n] / totals[n] for n in sorted(totals)}


def accuracy_by_target_characters(outputs, pairs):
    totals, right = {}, {}
    for output, (source, target) in zip(outputs, pairs, strict=True):
        length = len(source)
        totals[length] = totals.get(length, 0) + 1
        right[length] = right.get(length, 0) + (output == target)
    return {n: right[n] / totals[n] for n in sorted(totals)}


CASES = {
    "sequential_steps": {"right": (sequential_steps,), "wrong": [(sequential_steps_per_position,)]},
    "attention_scores": {"right": (attention_scores,), "wrong": [(attention_scores_no_cross,)]},
    "accuracy_by_length": {"right": (accuracy_by_length,), "wrong": [(accuracy_by_target_characters,)]},
}
