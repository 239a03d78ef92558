"""Write notebooks/12_local_and_linear_attention.ipynb from the cells below (then run tools/run_notebooks.py)."""

import sys
from pathlib import Path

import nbformat

IGNORE = ["nbval-ignore-output"]
cells = []


def md(text):
    cells.append(nbformat.v4.new_markdown_cell(text.strip("\n")))


def code(text, tags=None):
    cell = nbformat.v4.new_code_cell(text.strip("\n"))
    if tags:
        cell.metadata["tags"] = list(tags)
    cells.append(cell)


md(r"""
# 12 · Local and linear attention

*Part IV: attention as today's models use it* · Previous: [11 · Vision Transformer](11_vision_transformer.ipynb) · Next: [the syllabus](../README.md#syllabus)

Every attention layer so far let each query see every key it was allowed to: $L^2$ scores for a
sequence of length $L$. Notebook 10 made that cheaper to *hold* (tiled attention never stores the
$L \times L$ matrix) but not cheaper to *compute*. Models since 2020 pay less in two ways. **Local**
attention lets each token see only a window of recent tokens, so the work grows as $L \cdot w$.
**Linear** attention replaces the softmax by a dot product of feature maps; associativity then
turns attention into a running sum, a recurrent network whose state is a fixed $d \times d_v$
matrix. That closes a circle: Part I contrasted recurrent networks with attention, and causal
linear attention *is* a recurrent network. Its fixed state brings back the bottleneck of
notebook 03, and this notebook measures where it runs out.

**What you will learn**
- the sliding-window mask, what it costs against the length (measured), and how stacking windowed
  layers widens what the last token can see (counted through its gradient);
- the sparse patterns built on windows: global tokens (Longformer) and random links (BigBird);
- linear attention derived from the softmax as a kernel, and the associativity that makes it linear;
- causal linear attention as a recurrence $S_t = S_{t-1} + \phi(k_t) v_t^\top$, asserted equal;
- what the softmax bought, on an associative-recall task over seeds: softmax attention, linear
  attention, and the delta rule (DeltaNet), at the same width.

**What you need first:** notebooks 01 (masks, scaled dot-product attention), 03 (the recurrent
encoder's fixed-size summary), 07 (multi-head attention) and 10 (tiled attention, peak memory).
""")

md(r"""
Every notebook starts the same way: `helpers.setup()` seeds every generator, pins PyTorch to one
thread and returns the device.
""")

code(r"""
import math

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import helpers
from helpers import attention, claims, efficient, plot, timing, train
from helpers.exercises import nb12 as check

device = helpers.setup()
""")

md(r"""
## 1 · Sliding windows

A **sliding window** of $w$ keys lets query $i$ attend to keys $i-w+1, \dots, i$: itself and the
$w-1$ tokens before it. It is a causal mask with the distant past cut away, True where
$0 \le i - j < w$. Mistral 7B (window 4,096) and Gemma 2 and 3 (local layers of 4,096 and 1,024
tokens) use it in some or all of their layers. `helpers.attention.sliding_window_mask` builds it;
here it is next to the causal mask, drawn as the uniform attention each mask allows (grey: may not
attend).
""")

code(r"""
length, window = 10, 3
causal = attention.causal_mask(length)
band = attention.sliding_window_mask(length, length, window)

# The definition, checked entry by entry.
i, j = torch.arange(length)[:, None], torch.arange(length)[None, :]
assert torch.equal(band, (i - j >= 0) & (i - j < window))
assert torch.equal(attention.sliding_window_mask(length, length, length), causal)  # a window as long as the sequence

print("pairs a causal mask allows:  ", int(causal.sum()), "= L(L+1)/2")
print("pairs a window of 3 allows:  ", int(band.sum()), "= about L·w")

uniform = attention.masked_softmax(torch.zeros(2, length, length), torch.stack([causal, band]))
fig = plot.heatmaps(uniform, masks=torch.stack([causal, band]), titles=["causal mask", f"sliding window, w = {window}"],
                    size=2.8, xlabels=range(length), ylabels=range(length))
plt.show()
""")

md(r"""
Windowed attention is ordinary attention with this mask, so it must equal PyTorch's fused
attention given the same band (PyTorch's `attn_mask` is True = may attend, as here). Notebook 10's
`tiled_attention` gains a `window=` argument: it skips every tile that lies entirely outside the
band, not only the tiles above the diagonal.
""")

code(r"""
generator = torch.Generator().manual_seed(0)
query, key, value = (torch.randn(2, 4, 96, 16, generator=generator, dtype=torch.float64) for _ in range(3))
band = attention.sliding_window_mask(96, 96, 20)

explicit, _ = attention.scaled_dot_product_attention(query, key, value, band)
torch.testing.assert_close(explicit, F.scaled_dot_product_attention(query, key, value, attn_mask=band))
torch.testing.assert_close(efficient.tiled_attention(query, key, value, window=20, block_size=16), explicit)
print("windowed attention: explicit = PyTorch fused = tiled with window=20")


def tiles_computed(length, block_size, window=None):
    # The tiles tiled_attention reads: key blocks from the window's start to the diagonal.
    count = 0
    for q_start in range(0, length, block_size):
        q_end = min(q_start + block_size, length)
        first = max(0, q_start - window + 1) // block_size if window else 0
        count += -(-q_end // block_size) - first
    return count


for length in (1024, 4096, 16384):
    print(f"L = {length:>5}, blocks of 128: causal {tiles_computed(length, 128):>5} tiles, "
          f"window 256 {tiles_computed(length, 128, 256):>4} tiles")
""")

md(r"""
The causal count grows as $L^2$ (it quadruples when $L$ doubles); the windowed count grows as
$L$ (it doubles). Time and memory follow the tiles. Below, peak memory is counted by
`efficient.peak_memory` (every tensor PyTorch creates, the same count on every machine) and time
is measured, for explicit attention with a band mask (which still forms all $L^2$ scores), causal
tiled attention and windowed tiled attention, at a fixed window of 128. The slope of a line on
log–log axes is the exponent $p$ in cost $\propto L^p$.
""")

code(r"""
lengths = [512, 1024, 2048, 4096]
window, width = 128, 32
contenders = {
    "explicit, band mask": lambda x, band: attention.scaled_dot_product_attention(x, x, x, band)[0],
    "tiled, causal": lambda x, band: efficient.tiled_attention(x, x, x, causal=True, block_size=128),
    "tiled, window 128": lambda x, band: efficient.tiled_attention(x, x, x, window=window, block_size=128),
}
memory = {name: [] for name in contenders}
seconds = {name: [] for name in contenders}
for length in lengths:
    x = torch.randn(1, length, width, generator=generator)
    band = attention.sliding_window_mask(length, length, window)
    for name, fn in contenders.items():
        with torch.no_grad():
            memory[name].append(efficient.peak_memory(lambda fn=fn: fn(x, band)))
            seconds[name].append(timing.median_time(lambda fn=fn: fn(x, band), repeat=3))


def slope(xs, ys):
    return float(np.polyfit(np.log(xs), np.log(ys), 1)[0])


memory_slope = {name: slope(lengths, memory[name]) for name in contenders}
time_slope = {name: slope(lengths, seconds[name]) for name in contenders}
for name in contenders:
    print(f"{name:<20} memory ∝ L^{memory_slope[name]:.2f}   time ∝ L^{time_slope[name]:.2f} (timed)")
""", IGNORE)

md(r"""
The claims this section makes, checked on this run: memory of explicit attention grows
quadratically even when the band allows only $L \cdot w$ pairs, while the windowed tiles keep it
close to linear. (Time is shown, not claimed: it follows the tile counts above, but a busy
machine bends a timing curve more than a memory count.)
""")

code(r"""
claims.above("explicit attention's peak memory grows quadratically with L, band mask or not (exponent above 1.8)",
             memory_slope["explicit, band mask"], 1.8)
claims.below("windowed tiled attention's peak memory grows about linearly (exponent below 1.2)",
             memory_slope["tiled, window 128"], 1.2)
""")

md(r"""
The figure shows both measurements; the time panel is this machine's and changes with the CPU.
""")

code(r"""
markers = {"explicit, band mask": "o", "tiled, causal": "s", "tiled, window 128": "^"}
fig, (ax_mem, ax_time) = plt.subplots(1, 2, figsize=(9.0, 3.6))
for name in contenders:
    ax_mem.plot(lengths, [m / 1e6 for m in memory[name]], marker=markers[name], label=name)
    ax_time.plot(lengths, [s * 1e3 for s in seconds[name]], marker=markers[name], label=name)
for ax, label in ((ax_mem, "peak memory (MB)"), (ax_time, "time (ms, this CPU)")):
    ax.set(xscale="log", yscale="log", xlabel="sequence length L", ylabel=label)
    ax.set_xticks(lengths, [str(n) for n in lengths])
    ax.minorticks_off()
ax_mem.legend()
ax_mem.set_title("memory: counted")
ax_time.set_title("time: measured")
fig.tight_layout()
plt.show()
""", IGNORE)

md(r"""
### Stacking windows widens the view

One windowed layer lets the last token draw on $w$ positions. A second layer attends to outputs
that each already mixed $w$ positions, so the view grows by $w - 1$ with every layer: after $n$
layers it reaches back $n(w-1)$ positions. This is the receptive field of a stack of
convolutions, and it can be *counted*: the last position's output depends on input $j$ exactly
when its gradient with respect to input $j$ is non-zero. Below, stacks of 1, 2 and 3 windowed
self-attention layers (random projections, untrained) on 24 positions, window 4.
""")

code(r"""
length, window, width = 24, 4, 8
torch.manual_seed(0)
layers = [attention.MultiHeadAttention(width, 2).double() for _ in range(3)]
band = attention.sliding_window_mask(length, length, window)

reach = []
for depth in (1, 2, 3):
    x = torch.randn(1, length, width, dtype=torch.float64, requires_grad=True)
    h = x
    for layer in layers[:depth]:
        h = h + layer(h, mask=band)[0]  # a residual connection, as in a Transformer block
    (grad,) = torch.autograd.grad(h[0, -1].sum(), x)
    reached = grad[0].abs().sum(-1) > 0  # (length,): which inputs the last output depends on
    reach.append(reached)
    print(f"{depth} layer(s): the last position depends on {int(reached.sum()):>2} inputs "
          f"(formula depth·(w-1)+1 = {depth * (window - 1) + 1})")
    assert int(reached.sum()) == depth * (window - 1) + 1

fig, ax = plt.subplots(figsize=(7.5, 1.9))
ax.imshow(torch.stack(reach).float(), cmap="Greys", vmin=0, vmax=1.4, aspect="auto")
ax.set_yticks([0, 1, 2], ["1 layer", "2 layers", "3 layers"])
ax.set_xticks(range(0, length, 2))
ax.set_xlabel("input position (dark: the last position's gradient reaches it)")
ax.set_title(f"receptive field of the last token, window w = {window}")
plt.show()
""")

md(r"""
### Sparse patterns built on windows

A window alone never lets two distant tokens meet within one layer. **Longformer** (Beltagy et
al., 2020) adds a few **global tokens** that attend to everything and are attended to by
everything (a classification token, the question in question answering): any two tokens are then
two steps apart. **BigBird** (Zaheer et al., 2020) adds **random links** as well, a few random
keys per query, which make the attention graph a good expander. Both keep the number of allowed
pairs near $L \cdot (w + g + r)$ instead of $L^2$. The masks, on 32 positions (not causal here:
both were built for encoders):
""")

code(r"""
length, half_window, num_global, num_random = 32, 2, 2, 2
i, j = torch.arange(length)[:, None], torch.arange(length)[None, :]
local = (i - j).abs() <= half_window  # a symmetric window of 2·2 + 1 keys
is_global = torch.arange(length) < num_global
longformer = local | is_global[:, None] | is_global[None, :]
links = torch.zeros(length, length, dtype=torch.bool)
random_keys = torch.rand(length, length, generator=torch.Generator().manual_seed(12)).argsort(-1)[:, :num_random]
links[torch.arange(length)[:, None], random_keys] = True
bigbird = longformer | links

patterns = {"window": local, "window + global (Longformer)": longformer, "+ random links (BigBird)": bigbird}
for name, mask in patterns.items():
    print(f"{name:<30} {int(mask.sum()):>4} of {length * length} pairs")
fig, axes = plt.subplots(1, 3, figsize=(9.0, 3.3), layout="constrained")
for ax, (name, mask) in zip(axes, patterns.items(), strict=True):
    ax.imshow(mask, cmap="Greys", vmin=0, vmax=1.3)
    ax.set(title=name, xlabel="key (dark: may attend)")
axes[0].set_ylabel("query")
plt.show()
""")

md(r"""
## 2 · Linear attention, derived

Attention's weights are a kernel, normalised: with $\kappa(q, k) = \exp(q \cdot k / \sqrt{d})$,

$$y_i = \frac{\sum_j \kappa(q_i, k_j)\, v_j}{\sum_j \kappa(q_i, k_j)}.$$

Nothing in that average needs the exponential: any non-negative $\kappa$ gives weights that sum
to one. **Linear attention** (Katharopoulos et al., 2020) takes $\kappa(q, k) = \phi(q)^\top
\phi(k)$ for a feature map $\phi$ with non-negative outputs, by default $\phi(x) =
\operatorname{elu}(x) + 1$. Then the numerator is $\phi(q_i)^\top \sum_j \phi(k_j) v_j^\top$: the
sum over keys no longer depends on the query, so it is computed once. In matrix form this is just
associativity, $(\phi(Q)\phi(K)^\top)V = \phi(Q)(\phi(K)^\top V)$: the left side forms an
$L_q \times L_k$ matrix, the right side an $r \times d_v$ one ($r$ the feature width).
""")

code(r"""
generator = torch.Generator().manual_seed(1)
query, key, value = (torch.randn(1, 200, 16, generator=generator, dtype=torch.float64) for _ in range(3))
phi_q, phi_k = efficient.elu_feature_map(query), efficient.elu_feature_map(key)  # (1, 200, 16), all positive

left = (phi_q @ phi_k.transpose(-2, -1)) @ value  # (200, 200) matrix first
right = phi_q @ (phi_k.transpose(-2, -1) @ value)  # (16, 16) matrix first
torch.testing.assert_close(left, right)
print("(φ(Q)φ(K)ᵀ)V = φ(Q)(φ(K)ᵀV); intermediate shapes", tuple((phi_q @ phi_k.transpose(-2, -1)).shape[-2:]),
      "against", tuple((phi_k.transpose(-2, -1) @ value).shape[-2:]))

weights = phi_q @ phi_k.transpose(-2, -1)
by_hand = (weights / weights.sum(-1, keepdim=True)) @ value
torch.testing.assert_close(efficient.linear_attention(query, key, value), by_hand)
print("helpers.efficient.linear_attention equals the normalised quadratic form")
""")

md(r"""
What does it cost, against the fused softmax attention PyTorch ships and notebook 10's tiled
attention? All three causal, width 64, at growing lengths. Linear attention's causal form keeps
running sums chunk by chunk (`chunk_size=64`), so it never forms more than a $64 \times 64$ block.
""")

code(r"""
lengths = [256, 512, 1024, 2048, 4096]
width = 64
contenders = {
    "fused softmax (PyTorch)": lambda x: F.scaled_dot_product_attention(x, x, x, is_causal=True),
    "tiled softmax": lambda x: efficient.tiled_attention(x, x, x, causal=True, block_size=256),
    "linear": lambda x: efficient.linear_attention(x, x, x, causal=True),
}
seconds = {name: [] for name in contenders}
linear_memory = []
for length in lengths:
    x = torch.randn(1, 1, length, width, generator=generator)
    with torch.no_grad():
        for name, fn in contenders.items():
            seconds[name].append(timing.median_time(lambda fn=fn: fn(x), repeat=3))
        linear_memory.append(efficient.peak_memory(lambda: efficient.linear_attention(x, x, x, causal=True)))

fused, linear = np.array(seconds["fused softmax (PyTorch)"]), np.array(seconds["linear"])
faster = np.nonzero(linear < fused)[0]
crossover = lengths[faster[0]] if len(faster) and (linear[faster[0]:] < fused[faster[0]:]).all() else None
print("time exponents:", {name: round(slope(lengths, s), 2) for name, s in seconds.items()})
print("linear attention is faster than fused softmax attention from L =", crossover, "on this CPU")
""", IGNORE)

md(r"""
The claims: linear attention's peak memory and time grow about linearly with the length; softmax
attention's time grows faster. Where the two time curves cross depends on the machine (the printed
crossover above is this CPU's; a GPU's fused kernel moves it far to the right), so no crossover
length is claimed here.
""")

code(r"""
claims.below("causal linear attention's peak memory grows about linearly with L (exponent below 1.2)",
             slope(lengths, linear_memory), 1.2)
claims.below("causal linear attention's time grows about linearly with L (exponent below 1.5)",
             slope(lengths[2:], seconds["linear"][2:]), 1.5)
claims.beats("fused softmax attention's time grows faster with L than linear attention's (longer half of the range)",
             slope(lengths[2:], seconds["fused softmax (PyTorch)"][2:]), slope(lengths[2:], seconds["linear"][2:]),
             by=0.3)
""")

code(r"""
fig, ax = plt.subplots(figsize=(6.0, 3.6))
for (name, s), marker in zip(seconds.items(), "os^", strict=True):
    ax.plot(lengths, [t * 1e3 for t in s], marker=marker, label=name)
if crossover is not None:
    ax.axvline(crossover, color="grey", linewidth=0.8)
    ax.annotate("crossover on this CPU", (crossover, ax.get_ylim()[1]), xytext=(4, -12),
                textcoords="offset points", fontsize=8, color="grey")
ax.set(xscale="log", yscale="log", xlabel="sequence length L (causal, width 64)", ylabel="time (ms, this CPU)")
ax.set_xticks(lengths, [str(n) for n in lengths])
ax.minorticks_off()
ax.legend()
plt.show()
""", IGNORE)

md(r"""
## 3 · The recurrent network inside

With a causal mask, query $i$ sums over $j \le i$ only. Write $S_i = \sum_{j \le i} \phi(k_j)
v_j^\top$ (an $r \times d_v$ matrix) and $z_i = \sum_{j \le i} \phi(k_j)$. Then

$$S_i = S_{i-1} + \phi(k_i) v_i^\top, \qquad z_i = z_{i-1} + \phi(k_i), \qquad
y_i = \frac{\phi(q_i)^\top S_i}{\phi(q_i)^\top z_i}.$$

That is a recurrent network: one state, updated once per token, read by the token's query.
`efficient.linear_attention_recurrent` runs it step by step; it must equal the parallel form.
""")

code(r"""
query, key, value = (torch.randn(2, 3, 50, 8, generator=generator, dtype=torch.float64) for _ in range(3))
parallel = efficient.linear_attention(query, key, value, causal=True, chunk_size=16)
recurrent = efficient.linear_attention_recurrent(query, key, value)
torch.testing.assert_close(parallel, recurrent)
print("causal linear attention, parallel (chunks of 16) = recurrent (one step per token):", tuple(parallel.shape))
""")

md(r"""
Set it beside notebook 03's GRU encoder. Both read a sequence one token at a time into a state of
fixed size; the GRU's state is a vector that a learned gate rewrites, linear attention's is a
matrix that each token *adds* an outer product to. Softmax attention has no fixed state: to
produce the next token it keeps every past key and value (the key/value cache of notebook 10),
so its "state" grows with the length. Counted for a width of 64 (one head; the GRU with a hidden
size of 64):
""")

code(r"""
d = 64
print(f"{'length':>7} {'GRU state':>10} {'linear attention state':>23} {'softmax attention cache':>24}")
for length in (16, 256, 4096, 65536):
    print(f"{length:>7} {d:>10,} {d * d + d:>23,} {2 * length * d:>24,}")
""")

md(r"""
## 4 · What the softmax bought: associative recall

A fixed state must eventually forget. **Associative recall** measures when: the model reads $n$
pairs *key → value* (distinct keys from 64, values from 16), then a query key, and must answer the
value stored under it. Softmax attention can look the key up directly, whatever $n$ is. A fixed
$d \times d_v$ state is a linear associative memory: it can hold about $d$ well-separated pairs,
and every further pair interferes with the others.

Each model here is one read of attention, with the same width $d = 16$: embed the keys and values,
project to queries, keys and values, read once with the query key, classify the result.

| model | the read | state between tokens |
| --- | --- | --- |
| softmax | `scaled_dot_product_attention` | every key and value ($2nd$ numbers) |
| linear | `linear_attention`, $\phi = \operatorname{elu} + 1$, normalised | $d \times d_v + d$ |
| linear, unit keys | $\hat q^\top \sum_j \hat k_j v_j^\top$ with $\hat k = k / \lVert k \rVert$, no normaliser | $d \times d_v$ |
| delta rule | $\hat q^\top S_n$ with the delta rule below | $d \times d_v$ |

The **delta rule** (DeltaNet: Schlag et al., 2021; Yang et al., 2024) does not just add each pair
to the state. It first reads what the state already holds under the key and writes only the
difference, scaled by a learned gate $\beta_t \in (0, 1)$:
$S_t = S_{t-1} + \beta_t\, \hat k_t (v_t - S_{t-1}^\top \hat k_t)^\top$. With $\beta_t = 1$ the key
now retrieves exactly $v_t$: the rule *overwrites*. DeltaNet normalises its keys, which lets them
be signed, so the third row is the control that changes only the update rule.

The task first, one example:
""")

code(r"""
NUM_KEYS, NUM_VALUES, WIDTH = 64, 16, 16


def recall_batch(batch_size, num_pairs, generator):
    # keys (B, n): distinct in each sequence; values (B, n); the query is one of the keys.
    keys = torch.rand(batch_size, NUM_KEYS, generator=generator).argsort(-1)[:, :num_pairs]
    values = torch.randint(0, NUM_VALUES, (batch_size, num_pairs), generator=generator)
    pick = torch.randint(0, num_pairs, (batch_size, 1), generator=generator)
    return keys, values, keys.gather(1, pick)[:, 0], values.gather(1, pick)[:, 0]


keys, values, query, answer = recall_batch(1, 5, torch.Generator().manual_seed(3))
print("pairs: ", ", ".join(f"{k}→{v}" for k, v in zip(keys[0].tolist(), values[0].tolist(), strict=True)))
print("query:", query.item(), " answer:", answer.item())
""")

md(r"""
Run step by step, the delta rule needs $n$ sequential updates. Training is faster in parallel,
and the rule allows it: writing $u_t = \beta_t(v_t - S_{t-1}^\top \hat k_t)$ for what step $t$
writes, $S_n = \sum_t \hat k_t u_t^\top$ and the $u_t$ solve a triangular system,
$(I + \operatorname{diag}(\beta)\,\operatorname{tril}(\hat K \hat K^\top, -1))\,U =
\operatorname{diag}(\beta) V$ (the "UT transform" DeltaNet trains with). Both forms, asserted equal:
""")

code(r"""
def delta_rule_recurrent(keys, values, beta):
    # keys (B, n, d) unit length, values (B, n, dv), beta (B, n): one overwrite per step.
    state = keys.new_zeros(keys.shape[0], keys.shape[-1], values.shape[-1])  # (B, d, dv)
    for t in range(keys.shape[1]):
        k, v = keys[:, t], values[:, t]  # (B, d), (B, dv)
        stored = torch.einsum("bd,bdv->bv", k, state)  # what the state holds under k
        state = state + beta[:, t, None, None] * k[:, :, None] * (v - stored)[:, None, :]
    return state


def delta_rule(keys, values, beta):
    # The same state from one triangular solve: (I + diag(β) tril(KKᵀ, -1)) U = diag(β) V, S = Kᵀ U.
    n = keys.shape[1]
    overlap = (keys @ keys.transpose(-2, -1)).tril(-1)  # (B, n, n): k_t · k_s for s < t
    system = torch.eye(n, dtype=keys.dtype) + beta[..., None] * overlap
    writes = torch.linalg.solve_triangular(system, beta[..., None] * values, upper=False, unitriangular=True)
    return keys.transpose(-2, -1) @ writes  # (B, d, dv)


g = torch.Generator().manual_seed(4)
unit_keys = F.normalize(torch.randn(3, 12, 8, generator=g, dtype=torch.float64), dim=-1)
vals, beta = torch.randn(3, 12, 5, generator=g, dtype=torch.float64), torch.rand(3, 12, generator=g, dtype=torch.float64)
torch.testing.assert_close(delta_rule(unit_keys, vals, beta), delta_rule_recurrent(unit_keys, vals, beta))
one = torch.ones(1, 1, dtype=torch.float64)
stored = torch.einsum("bd,bdv->bv", unit_keys[:1, 0], delta_rule(unit_keys[:1, :1], vals[:1, :1], one))
torch.testing.assert_close(stored, vals[:1, 0])
print("delta rule: recurrent = triangular solve; with β = 1 a key retrieves exactly the value last written")
""")

md(r"""
The models and their training: 200 steps of AdamW on fresh batches of 128 sequences, with $n$
drawn from 2 to 32 at each step; 3 seeds per model (the seed sets the initialisation; the batches
are the same for every model and seed). Accuracy is measured on 1,000 new sequences for each $n$.
""")

code(r"""
class Recall(nn.Module):
    # One read of attention at width d; `kind` picks the read (see the table above).
    def __init__(self, kind, width=WIDTH):
        super().__init__()
        self.kind = kind
        self.key_embedding = nn.Embedding(NUM_KEYS, width)
        self.value_embedding = nn.Embedding(NUM_VALUES, width)
        self.q_proj, self.k_proj, self.v_proj = (nn.Linear(width, width) for _ in range(3))
        self.gate = nn.Linear(width, 1)  # β_t, used by the delta rule only
        self.classify = nn.Linear(width, NUM_VALUES)

    def forward(self, keys, values, query):
        x = self.key_embedding(keys)  # (B, n, d)
        q = self.q_proj(self.key_embedding(query))[:, None]  # (B, 1, d)
        k, v = self.k_proj(x), self.v_proj(self.value_embedding(values))  # (B, n, d)
        if self.kind == "softmax":
            read = attention.scaled_dot_product_attention(q, k, v)[0]
        elif self.kind == "linear":
            read = efficient.linear_attention(q, k, v)
        else:
            q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
            if self.kind == "linear, unit keys":
                state = k.transpose(-2, -1) @ v  # (B, d, dv): every pair added
            else:
                state = delta_rule(k, v, torch.sigmoid(self.gate(x))[..., 0])  # (B, d, dv): overwritten
            read = q @ state
        return self.classify(read[:, 0])  # (B, values)


KINDS = ["softmax", "linear", "linear, unit keys", "delta rule"]
SEEDS = [0, 1, 2]
NUM_PAIRS = [2, 4, 8, 16, 24, 32]


def train_recall(kind, seed, pairs_low=2, pairs_high=32, batch=recall_batch, steps=200):
    torch.manual_seed(seed)
    model = Recall(kind).to(device)
    data = torch.Generator().manual_seed(100)  # the same batches for every model and seed

    def draw(step):
        n = int(torch.randint(pairs_low, pairs_high + 1, (1,), generator=data))
        return [t.to(device) for t in batch(128, n, data)]

    train.fit(model, draw, lambda m, b: F.cross_entropy(m(*b[:3]), b[3]), steps=steps, lr=1e-2, clip=None)
    return model


def recall_accuracy(model, num_pairs, batch=recall_batch):
    keys, values, query, answer = (t.to(device) for t in batch(1000, num_pairs, torch.Generator().manual_seed(7)))
    with torch.no_grad():
        return (model(keys, values, query).argmax(-1) == answer).float().mean().item()


accuracy = {}  # kind -> (seeds, len(NUM_PAIRS))
for kind in KINDS:
    models = [train_recall(kind, seed) for seed in SEEDS]
    accuracy[kind] = torch.tensor([[recall_accuracy(model, n) for n in NUM_PAIRS] for model in models])
print("recall accuracy: mean (min–max over 3 seeds)")
print(f"{'pairs n':<18}" + "".join(f"{n:>18}" for n in NUM_PAIRS))
for kind, acc in accuracy.items():
    print(f"{kind:<18}" + "".join(f"{claims.spread(acc[:, c], 2, count=False):>18}"
                                  for c in range(len(NUM_PAIRS))))
""", IGNORE)

md(r"""
What the table shows, checked over the seeds: softmax attention recalls every pair at every $n$;
each fixed-state model is near-perfect for a handful of pairs and falls well behind once $n$ passes
the width $d = 16$; and the positive features of plain linear attention crowd its keys together,
so it falls first.
""")

code(r"""
column = {n: c for c, n in enumerate(NUM_PAIRS)}
claims.above("softmax attention recalls above 0.95 at every n up to 32, on every seed", accuracy["softmax"].min(0).values, 0.95)
for kind in KINDS[1:]:
    claims.above(f"{kind}: above 0.9 with 4 pairs, on every seed", accuracy[kind][:, column[4]], 0.9)
    claims.beats(f"softmax beats {kind} by more than 0.1 at 32 pairs, on every seed",
                 accuracy["softmax"][:, column[32]], accuracy[kind][:, column[32]], by=0.1)
claims.beats("with 16 pairs, linear attention with unit keys beats linear attention with elu + 1 features",
             accuracy["linear, unit keys"][:, column[16]], accuracy["linear"][:, column[16]], by=0.03)
claims.beats("with 16 pairs, the delta rule beats linear attention with elu + 1 features",
             accuracy["delta rule"][:, column[16]], accuracy["linear"][:, column[16]], by=0.03)
gap = (accuracy["delta rule"] - accuracy["linear, unit keys"]).abs().max()
claims.below("the delta rule and the additive rule with the same unit keys stay within 0.1 of each other at every n "
             "(no key repeats here, so there is nothing to overwrite)", gap, 0.1)
""")

code(r"""
fig, ax = plt.subplots(figsize=(6.4, 3.8))
for kind, marker in zip(KINDS, "os^D", strict=True):
    line, = ax.plot(NUM_PAIRS, accuracy[kind].mean(0), marker=marker, label=f"{kind} (mean)")
    for seed_acc in accuracy[kind]:
        ax.plot(NUM_PAIRS, seed_acc, marker=marker, linestyle="none", markersize=3, alpha=0.6, color=line.get_color())
ax.axvline(WIDTH, color="grey", linewidth=0.8)
ax.annotate("n = width d", (WIDTH, 0.12), xytext=(4, 0), textcoords="offset points", fontsize=8, color="grey")
ax.axhline(1 / NUM_VALUES, color="grey", linestyle=":", linewidth=0.8)
ax.annotate("chance", (32, 1 / NUM_VALUES), xytext=(-30, 3), textcoords="offset points", fontsize=8, color="grey")
ax.set(xlabel="pairs to remember, n", ylabel="recall accuracy", ylim=(0, 1.03), xticks=NUM_PAIRS)
ax.set_title("associative recall at width 16 (3 seeds: small points)")
ax.legend(loc="lower left", bbox_to_anchor=(0.0, 0.1))
plt.show()
""", IGNORE)

md(r"""
So on this task the delta rule's advantage over plain linear attention came from its unit keys,
not from overwriting: with every key new, there is nothing to overwrite. Overwriting matters when a
key comes back with a new value, as a variable does in a program or a fact in a changing world. In
the second task every key is written twice, first with an old value and later with a new one, and
the query asks for the **latest** value. An additive state holds old + new, and the sum does not
say which came last: it cannot beat a coin flip between the two. The delta rule reads the old
value out before writing the new one. (Softmax attention without positions cannot tell the order
either; with positions it could, as notebook 06 showed.)
""")

code(r"""
def rewrite_batch(batch_size, num_pairs, generator):
    # Each of num_pairs // 2 keys is written twice, the old values first; the answer is the newer value.
    half = max(num_pairs // 2, 1)
    keys, old, query, _ = recall_batch(batch_size, half, generator)
    order = torch.rand(batch_size, half, generator=generator).argsort(-1)
    new = torch.randint(0, NUM_VALUES, (batch_size, half), generator=generator)
    all_keys = torch.cat([keys, keys.gather(1, order)], dim=1)
    all_values = torch.cat([old, new.gather(1, order)], dim=1)
    answer = new.gather(1, (keys == query[:, None]).float().argmax(1, keepdim=True))[:, 0]
    return all_keys, all_values, query, answer


REWRITE_PAIRS = [4, 8, 16]
rewrite = {}  # kind -> (seeds, len(REWRITE_PAIRS))
for kind in ["linear, unit keys", "delta rule"]:
    models = [train_recall(kind, seed, 4, 16, rewrite_batch, steps=150) for seed in SEEDS]
    rewrite[kind] = torch.tensor([[recall_accuracy(model, n, rewrite_batch) for n in REWRITE_PAIRS] for model in models])
print("latest-value accuracy: mean (min–max over 3 seeds)")
print(f"{'writes':<18}" + "".join(f"{n:>18}" for n in REWRITE_PAIRS))
for kind, acc in rewrite.items():
    print(f"{kind:<18}" + "".join(f"{claims.spread(acc[:, c], 2, count=False):>18}"
                                  for c in range(len(REWRITE_PAIRS))))
""", IGNORE)

code(r"""
claims.below("when keys are rewritten, the additive rule stays below 0.6 (it cannot tell old from new)",
             rewrite["linear, unit keys"].max(), 0.6)
claims.beats("when keys are rewritten, the delta rule beats the additive rule by more than 0.2 at every size, every seed",
             rewrite["delta rule"].min(1).values, rewrite["linear, unit keys"].max(1).values, by=0.2)
""")

md(r"""
This is notebook 03's bottleneck again, measured in pairs instead of digits: a recurrent encoder
that squeezes a sentence into one vector loses what does not fit, and a linear-attention state of
$d \times d_v$ numbers loses what does not fit. Attention over the kept keys and values (the
cache) does not run out, and pays for it with memory that grows with the length.

### Where this line of work went

The delta rule was one answer to the fixed state's limits; **decay** was the other. RetNet (Sun et
al., 2023) multiplies the state by a constant $\gamma < 1$ before each update, so old pairs fade
instead of piling up; Mamba-2 (Dao & Gu, 2024) makes that decay depend on the input, a gate that
chooses what to forget; Gated DeltaNet (Yang et al., 2025) combines a gate with the delta rule's
overwrite. None of them recalls like softmax attention over a long context, so recent open models
mix the two: most layers linear or windowed (cheap, fixed state), and one full-attention layer in
every few, about three linear layers to one full layer in several 2025 releases. Local and linear
layers keep the cost near $L$; the occasional full layer keeps the recall.
""")

md(r"""
## Summary

- A **sliding window** keeps the last $w$ keys per query. Windowed tiled attention skips the
  tiles outside the band, and its memory grows about linearly with $L$ (checked above), while
  explicit attention with the same band still grows quadratically.
- Stacked windows see further: after $n$ layers the last token depends on exactly $n(w-1) + 1$
  inputs (counted through its gradient). Global tokens and random links (Longformer, BigBird)
  shorten the paths further.
- Replacing $\exp(q \cdot k)$ by $\phi(q)^\top \phi(k)$ makes attention **linear** by
  associativity: $(\phi(Q)\phi(K)^\top)V = \phi(Q)(\phi(K)^\top V)$.
- Causal linear attention **is a recurrent network**: $S_t = S_{t-1} + \phi(k_t) v_t^\top$, asserted
  equal to the parallel form. Its state has $d \times d_v$ numbers at any length.
- That fixed state is a bottleneck: on associative recall, softmax attention stays near perfect up
  to 32 pairs while every fixed-state model falls behind once the pairs outnumber the width
  (3 seeds each). The **delta rule** overwrites instead of adding; it wins clearly when keys are
  rewritten, and on this task it matched the additive rule with the same unit keys.

## Exercises

**Exercise 1.** A stack of `layers` causal windowed layers, each with window `window` (the query's
own position included). How many input positions can the last token's output depend on, in a
sequence long enough? Write `receptive_field(window, layers)` and check it against section 1's
count.
""")

code(r"""
def receptive_field(window, layers):
    raise NotImplementedError


check.receptive_field(receptive_field)
""")

md(r"""
**Exercise 2.** Write one step of causal linear attention as a recurrence:
`linear_step(state, norm, query, key, value)` with `state` `(batch, r, dv)`, `norm` `(batch, r)`
and the new token's `query`, `key` `(batch, r)` (features, already through $\phi$) and `value`
`(batch, dv)`. Return `(output, state, norm)`: the token's output `(batch, dv)` and the updated
state and normaliser. Does the token see its own key?
""")

code(r"""
def linear_step(state, norm, query, key, value):
    raise NotImplementedError


check.linear_step(linear_step)
""")

md(r"""
**Exercise 3.** Write one step of the delta rule, `delta_step(state, key, value, beta)`, with
`state` `(batch, d, dv)`, a unit-length `key` `(batch, d)`, `value` `(batch, dv)` and `beta`
`(batch,)`. Return the new state. With `beta = 1`, the key must then retrieve exactly `value`.
""")

code(r"""
def delta_step(state, key, value, beta):
    raise NotImplementedError


check.delta_step(delta_step)
""")

md(r"""
**Next:** the syllabus in the [README](../README.md#syllabus) lists what comes after this notebook:
sharing key/value heads (multi-query and grouped-query attention) to shrink the cache, and a small
language model trained on real data from the series' own parts.
""")

notebook = nbformat.v4.new_notebook(cells=cells)
notebook.metadata = {
    "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
    "language_info": {"name": "python", "pygments_lexer": "ipython3"},
}
out = Path(sys.argv[1] if len(sys.argv) > 1 else "notebooks/12_local_and_linear_attention.ipynb")
nbformat.write(notebook, out)
print("wrote", out)
