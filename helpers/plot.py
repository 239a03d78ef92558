"""Figure helpers shared by the notebooks: one look for the series, heatmaps of attention
weights, seeds drawn around their mean, axes in the series' style, and sliders that redraw a figure.

Figures are PNG (strict nbval skips PNG but compares SVG, which embeds dates and ids).

The series' conventions (``notebooks/README.md`` says them in words; the helpers draw them):

- grey (``MASKED_COLOR``) = masked / forbidden; allowed pairs, when drawn, in ``ALLOWED_COLOR``;
- signed values on ``RdBu_r`` centred at 0: red = positive, blue = negative;
- each line gets an Okabe-Ito colour together with its own line style and marker (``style(i)``);
  passing only ``color=`` to ``ax.plot`` advances the colour+linestyle cycle, so pass both;
- seeds as thin lines, points or a min-max band, their mean as a thick line (``seed_spread``);
- memory in MiB (``mib``), time in ms; log axes with decimal ticks 1, 2, 5, 10 (``log_axis``);
- figures at most ``MAX_WIDTH_IN`` = 9 in wide (990 px at 110 dpi), four or more panels on two rows;
- legends outside the data (``legend_outside``) where the lines fill the axes.
"""

import matplotlib.pyplot as plt
import numpy as np
import torch
from cycler import cycler
from matplotlib import transforms
from matplotlib.colors import ListedColormap
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from helpers import seeds

__all__ = ["use_series_style", "heatmap", "heatmaps", "score_scaling", "digit_overlays", "slider", "style",
           "seed_spread", "twin_axis", "log_axis", "legend_outside", "mib", "subplots", "mask_pattern",
           "shade_ink", "DPI", "MIN_FONT_SIZE", "MASKED_COLOR", "ALLOWED_COLOR", "INK_THRESHOLD",
           "MAX_WIDTH_IN", "MAX_WIDTH_PX", "FIGURE_WIDTH_IN", "MIB", "MS"]

# The resolution and smallest text size of every figure in the series (tests/test_plot.py holds
# the series to them): at 110 dots per inch, 8-point text is about 12 pixels tall.
DPI = 110
MIN_FONT_SIZE = 8
# Entries a mask forbids are drawn in this grey, never in the colour of a near-zero weight.
MASKED_COLOR = "#b0b0b0"
# The widest figure a notebook column shows at full size: 9 inches, 990 pixels at 110 dpi
# (tests/test_figures.py holds every committed PNG to it).
MAX_WIDTH_IN = 9.0
MAX_WIDTH_PX = round(MAX_WIDTH_IN * DPI)
# The widest figure to ask for: a notebook saves its figures with a tight bounding box and a 0.1-in
# margin on each side (``savefig.pad_inches``), so a figure filled to its edges comes out 0.2 in wider.
FIGURE_WIDTH_IN = MAX_WIDTH_IN - 0.2
# A pixel of a digit image (values 0 to 1) is "ink" at or above this value: the stroke outlines
# drawn over attention maps and any measure of "weight on ink" use this one threshold.
INK_THRESHOLD = 0.25
# Units: memory in MiB (bytes / MIB), time in milliseconds (seconds * MS).
MIB = 2**20
MS = 1e3

# Okabe-Ito colours, each with its own line style and marker, so that lines stay apart in
# greyscale and for colour-blind readers.
_COLORS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"]
_STYLES = ["-", "--", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1, 1, 1)), (0, (1, 2))]
_MARKERS = ["o", "s", "^", "D", "v", "P", "X"]
# Pairs a mask allows, where a figure draws the mask itself (grey stays "masked").
ALLOWED_COLOR = _COLORS[0]


def use_series_style():
    """Legible PNG figures with the same look in every notebook."""
    plt.rcParams.update({
        "figure.figsize": (6.0, 3.6),
        "figure.dpi": DPI,
        "savefig.dpi": DPI,
        "savefig.pad_inches": 0.1,  # the margin FIGURE_WIDTH_IN leaves room for
        "legend.loc": "best",  # never over data when it can avoid it; plot.legend_outside when it cannot
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.grid": False,
        "axes.prop_cycle": cycler(color=_COLORS) + cycler(linestyle=_STYLES),
        "font.size": 10,
        "axes.titlesize": 10,
        "axes.labelsize": 10,
        "xtick.labelsize": 9,
        "ytick.labelsize": 9,
        "legend.fontsize": 9,
        "legend.title_fontsize": 9,
        "figure.titlesize": 11,
        "image.cmap": "viridis",
        # Notebooks must not write to stderr: a missing glyph would warn there.
        "font.family": "DejaVu Sans",
    })


def style(i: int = 0, *, marker: bool = True) -> dict:
    """The series' ``i``-th line look: ``{"color", "linestyle", "marker"}`` (Okabe-Ito colour ``Ci``).

    ``ax.plot(x, y, **plot.style(i))`` sets colour and line style together, so the axes'
    colour+linestyle cycle does not advance (passing only ``color=`` advances it, and the next
    line gets a shifted colour with a style meant for another).
    """
    if not isinstance(i, (int, np.integer)):
        raise TypeError(f"style takes an integer index, got {type(i).__name__}")
    look = {"color": _COLORS[i % len(_COLORS)], "linestyle": _STYLES[i % len(_STYLES)]}
    if marker:
        look["marker"] = _MARKERS[i % len(_MARKERS)]
    return look


def seed_spread(ax, x, runs, *, label=None, i: int = 0, show: str = "band", linewidth: float = 2.0,
                marker: bool = True):
    """Seeds around their mean: the mean of ``runs`` as a thick line in ``style(i)``, the seeds as
    a min-max band (``show="band"``), thin lines (``"lines"``), small points (``"points"``), or a
    combination (``"lines+band"``). Only the mean enters the legend, under ``label``. Colour and
    line style are always passed together, so nothing drawn here advances the axes' cycle.

    Args:
        x: ``(n,)`` positions.
        runs: ``(seeds, n)`` values (nested lists, array or tensor); one run is ``(n,)``.

    Returns the mean's ``Line2D``.
    """
    x = np.asarray(_as_array(x), dtype=np.float64)
    runs = _as_array(runs).astype(np.float64)
    if runs.ndim == 1:
        runs = runs[None]
    if runs.ndim != 2 or x.ndim != 1 or runs.shape[1] != x.shape[0]:
        raise ValueError(f"runs must be (seeds, n) with n = len(x) = {x.shape[0] if x.ndim else x.size}, "
                         f"got runs {tuple(runs.shape)} and x {tuple(x.shape)}")
    kinds = set(show.split("+"))
    if not kinds or not kinds <= {"band", "lines", "points"}:
        raise ValueError(f"show is 'band', 'lines', 'points' or a combination such as 'lines+band', got {show!r}")
    look = style(i)
    color = look["color"]
    if "band" in kinds:
        ax.fill_between(x, runs.min(axis=0), runs.max(axis=0), color=color, alpha=0.2, linewidth=0,
                        label="_nolegend_")
    if "lines" in kinds:
        for run in runs:
            ax.plot(x, run, color=color, linestyle="-", linewidth=0.8, alpha=0.5, label="_nolegend_")
    if "points" in kinds:
        ax.plot(np.tile(x, runs.shape[0]), runs.ravel(), color=color, linestyle="none", marker=look["marker"],
                markersize=3.5, alpha=0.6, label="_nolegend_")
    (mean,) = ax.plot(x, runs.mean(axis=0), color=color, linestyle=look["linestyle"], linewidth=linewidth,
                      marker=look["marker"] if marker else None, markersize=5,
                      markevery=max(1, x.shape[0] // 12), label=label)
    return mean


def twin_axis(ax, axis: str = "y"):
    """``ax.twinx()`` (or ``twiny()`` for ``axis="x"``) with its own spine drawn: the series style hides
    the right and top spines, which would leave the twin's ticks floating. Returns the twin axes."""
    if axis not in ("x", "y"):
        raise ValueError(f"axis is 'x' or 'y', got {axis!r}")
    twin = ax.twinx() if axis == "y" else ax.twiny()
    twin.spines["right" if axis == "y" else "top"].set_visible(True)
    return twin


def _decimal(value, _position=None) -> str:
    """A log-axis tick as a plain decimal: 0.5, 1, 20, 1000 (10^k only outside 1e-4 to 1e7)."""
    if not np.isfinite(value) or value <= 0:
        return ""
    if 1e-4 <= value < 1e7:
        if value >= 1 and abs(value - round(value)) < 1e-9 * value:
            return f"{round(value)}"
        return f"{value:.4g}"
    exponent = int(np.floor(np.log10(value) + 1e-9))
    mantissa = value / 10.0**exponent
    return f"$10^{{{exponent}}}$" if abs(mantissa - 1) < 1e-6 else f"${mantissa:.0f}\\times10^{{{exponent}}}$"


def log_axis(ax, axis: str = "y", *, base: int = 10):
    """The series' one log-axis style: a log scale with decimal ticks 1, 2, 5, 10, 20, 50 ... labelled
    as plain numbers (no 10^k), unlabelled minor ticks. ``base=2`` puts the ticks at powers of two
    (sequence lengths 256, 512, 1024). ``axis`` is "x", "y" or "both". Returns ``ax``."""
    if axis not in ("x", "y", "both"):
        raise ValueError(f"axis is 'x', 'y' or 'both', got {axis!r}")
    if base not in (2, 10):
        raise ValueError(f"base is 10 (ticks 1, 2, 5, 10) or 2 (powers of two), got {base}")
    for name in ("x", "y") if axis == "both" else (axis,):
        getattr(ax, f"set_{name}scale")("log", base=base)
        which = getattr(ax, f"{name}axis")
        which.set_major_locator(LogLocator(base=base, subs=(1.0, 2.0, 5.0) if base == 10 else (1.0,)))
        which.set_major_formatter(FuncFormatter(_decimal))
        which.set_minor_locator(LogLocator(base=10, subs=tuple(range(2, 10))))
        which.set_minor_formatter(NullFormatter())
    return ax


def legend_outside(ax, where: str = "right", **kwargs):
    """The axes' legend outside the data: to the right of the axes (``where="right"``) or under the x
    axis label (``"below"``, entries side by side). Extra keywords go to ``ax.legend``. Returns it.

    The figure grows by the legend's size when saved (the notebooks save with a tight bounding
    box): keep the figure narrow enough to stay under ``MAX_WIDTH_IN`` with it."""
    if where == "right":
        kwargs.setdefault("loc", "upper left")
        return ax.legend(bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, **kwargs)
    if where == "below":
        handles, _ = ax.get_legend_handles_labels()
        kwargs.setdefault("ncol", max(1, min(len(handles), 3)))
        kwargs.setdefault("loc", "upper center")
        # Under the tick labels (about 20 pt) and the axis label (about 16 pt more), whatever the axes' size.
        drop = 22 + (16 if ax.get_xlabel() else 0)
        below = transforms.offset_copy(ax.transAxes, fig=ax.figure, y=-drop, units="points")
        return ax.legend(bbox_to_anchor=(0.5, 0.0), bbox_transform=below, borderaxespad=0.0, **kwargs)
    raise ValueError(f"where is 'right' or 'below', got {where!r}")


def mib(nbytes):
    """Bytes in MiB (2**20 bytes), the series' memory unit: a float for a number, an array otherwise."""
    values = np.asarray(_as_array(nbytes), dtype=np.float64) / MIB
    return float(values) if values.ndim == 0 else values


def subplots(nrows: int = 1, ncols: int = 1, *, figsize=None, **kwargs):
    """``plt.subplots`` with ``layout="constrained"`` and the width capped at ``FIGURE_WIDTH_IN`` (8.8 in:
    saved with its 0.1-in margins, at most ``MAX_WIDTH_IN``); the height shrinks by the same factor,
    so panels keep their shape. Returns ``(fig, axes)``."""
    width, height = plt.rcParams["figure.figsize"] if figsize is None else figsize
    if width > FIGURE_WIDTH_IN:
        width, height = FIGURE_WIDTH_IN, height * FIGURE_WIDTH_IN / width
    kwargs.setdefault("layout", "constrained")
    return plt.subplots(nrows, ncols, figsize=(width, height), **kwargs)


def mask_pattern(mask, *, ax=None, title=None, xlabel="keys", ylabel="queries", legend=False):
    """A bool ``(queries, keys)`` mask (True = may attend) as a picture: allowed pairs in
    ``ALLOWED_COLOR``, forbidden ones in ``MASKED_COLOR`` (grey means masked everywhere in the
    series). ``legend=True`` adds a "may attend / masked" key under the axes. Returns the axes."""
    if mask.dtype not in (torch.bool, np.bool_):
        raise TypeError(f"mask must be boolean (True = may attend), got {mask.dtype}")
    mask = mask.cpu().numpy() if isinstance(mask, torch.Tensor) else np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask_pattern draws a 2-D (queries, keys) mask, got shape {tuple(mask.shape)}")
    if ax is None:
        _, ax = plt.subplots(figsize=(3.2, 3.2))
    colormap = ListedColormap([MASKED_COLOR, ALLOWED_COLOR])
    ax.imshow(mask.astype(np.float32), cmap=colormap, vmin=0, vmax=1, interpolation="nearest")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    if legend:
        handles = [Patch(color=ALLOWED_COLOR, label="may attend"), Patch(color=MASKED_COLOR, label="masked")]
        ax.legend(handles=handles, ncol=2, loc="upper center", bbox_to_anchor=(0.5, 0.0), frameon=False,
                  bbox_transform=transforms.offset_copy(ax.transAxes, fig=ax.figure, y=-38, units="points"))
    return ax


def _as_array(weights) -> np.ndarray:
    if isinstance(weights, torch.Tensor):
        weights = weights.detach().float().cpu().numpy()
    return np.asarray(weights)


def _default_colorbar_label(weights: np.ndarray, mask=None) -> str:
    """"attention weight" only for matrices whose rows are distributions (>= 0, summing to 1 over
    the allowed entries), "value" for anything else: a default must not name the wrong quantity."""
    values = np.asarray(weights, dtype=np.float64)
    if mask is not None:
        values = np.where(np.broadcast_to(np.asarray(mask, dtype=bool), values.shape), values, 0.0)
    if values.size == 0 or not np.all(np.isfinite(values)) or values.min() < -1e-6:
        return "value"
    sums = values.sum(axis=-1)
    return "attention weight" if np.allclose(sums, 1.0, atol=1e-3) else "value"


def heatmap(weights, *, ax=None, xlabels=None, ylabels=None, title=None, xlabel="keys", ylabel="queries",
            colorbar=True, colorbar_label=None, vmin=0.0, vmax=None, annotate=False, mask=None,
            cmap=None):
    """Draw a ``(queries, keys)`` weight matrix; returns the axes.

    Args:
        weights: ``(queries, keys)``.
        xlabels, ylabels: names of the keys and queries (tokens, positions).
        colorbar, colorbar_label: draw a colorbar beside the axes, labelled with the quantity shown
            ("ink (0 to 1)", "score (query · key)"). Pass the label: without one it reads
            "attention weight" only if every row is >= 0 and sums to 1, else "value".
        vmin, vmax: the colour scale; pass the same values to panels that are compared.
        annotate: write each weight in its cell (8 pt), for matrices small enough to read.
        mask: optional bool ``(queries, keys)``, True = may attend (the series' convention);
            entries it forbids are drawn in grey (``MASKED_COLOR``), apart from small weights.
        cmap: a colormap name; a diverging one (``"RdBu_r"``) for signed scores.
    """
    weights = _as_array(weights)
    if weights.ndim != 2:
        raise ValueError(f"heatmap draws a 2-D (queries, keys) matrix, got shape {tuple(weights.shape)}")
    if mask is not None:
        mask = _as_array(mask)
        if tuple(mask.shape) != tuple(weights.shape):
            raise ValueError(f"mask shape {tuple(mask.shape)} must equal weights shape {tuple(weights.shape)}")
    if ax is None:
        # Small matrices get room for their labels; large ones are capped at a readable size.
        width = min(0.45 * weights.shape[1] + 2.4, 6.5)
        height = min(0.45 * weights.shape[0] + 1.3, 4.5)
        _, ax = plt.subplots(figsize=(width, height))
    shown = weights
    colormap = plt.get_cmap(cmap or plt.rcParams["image.cmap"]).with_extremes(bad=MASKED_COLOR)
    if mask is not None:
        shown = np.where(mask.astype(bool), weights.astype(np.float32), np.nan)
    image = ax.imshow(shown, vmin=vmin, vmax=vmax, aspect="auto", cmap=colormap)
    if xlabels is not None:
        names = [str(x) for x in xlabels]
        # Words under narrow columns would overlap: turn them upright, once, here for every figure.
        upright = len(names) > 6 and max(map(len, names)) > 2
        ax.set_xticks(range(len(names)), names, rotation=90 if upright else 0)
    if ylabels is not None:
        ax.set_yticks(range(len(ylabels)), [str(y) for y in ylabels])
    if annotate:
        low, high = image.get_clim()
        for i in range(weights.shape[0]):
            for j in range(weights.shape[1]):
                if mask is not None and not bool(mask[i, j]):
                    ax.text(j, i, "masked", ha="center", va="center", fontsize=MIN_FONT_SIZE, color="black")
                    continue
                value = float(weights[i, j])
                light = (value - low) > 0.6 * (high - low) if high > low else False
                ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=MIN_FONT_SIZE,
                        color="black" if light else "white")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    if colorbar:
        bar = ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
        bar.set_label(colorbar_label if colorbar_label is not None else _default_colorbar_label(weights, mask))
    return ax


def _grid_columns(n: int) -> int:
    """Panels per row: up to 3 on one row, 4 or more on two rows (at most 4 per row)."""
    return n if n <= 3 else min(-(-n // 2), 4)


def heatmaps(weights, *, titles=None, ncols=None, xlabels=None, ylabels=None, size=2.2, colorbar=True,
             colorbar_label=None, vmin=0.0, vmax=None, masks=None, **kwargs):
    """Draw a stack of ``(n, queries, keys)`` matrices (heads, layers, examples) in a grid.

    The panels share one colour scale (``vmin``, ``vmax``; by default 0 to the largest weight of
    the stack) and one labelled colorbar, so panels can be compared by colour. Up to three panels
    go on one row, four or more on two rows (``ncols`` overrides), and the panels shrink so the
    saved figure is at most ``MAX_WIDTH_IN`` wide. Only the first column carries y tick labels.
    ``masks`` (bool ``(n, queries, keys)`` or ``(queries, keys)``, True = may attend) greys out
    forbidden entries. ``colorbar_label`` names the quantity (see ``heatmap``). Returns the figure.
    """
    weights = _as_array(weights)
    if weights.ndim != 3:
        raise ValueError(f"heatmaps draws (n, queries, keys), got shape {tuple(weights.shape)}")
    n = weights.shape[0]
    if vmax is None:
        vmax = float(np.nanmax(weights))
    ncols = _grid_columns(n) if ncols is None else ncols
    if ncols < 1:
        raise ValueError(f"ncols must be at least 1, got {ncols}")
    nrows = -(-n // ncols)
    size = min(size, (FIGURE_WIDTH_IN - 1.1) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols + 1.1, size * nrows + 0.4), squeeze=False,
                             layout="constrained")
    for index, ax in enumerate(axes.flat):
        if index >= n:
            ax.axis("off")
            continue
        mask = None if masks is None else (masks if _as_array(masks).ndim == 2 else masks[index])
        heatmap(weights[index], ax=ax, colorbar=False, xlabels=xlabels, ylabels=ylabels, vmin=vmin, vmax=vmax,
                title=None if titles is None else titles[index], mask=mask, **kwargs)
        if index % ncols:
            ax.set_ylabel("")
            if ylabels is not None:
                ax.tick_params(labelleft=False)
    if colorbar:
        if colorbar_label is None:
            colorbar_label = _default_colorbar_label(weights, None if masks is None else _as_array(masks))
        bar = fig.colorbar(axes.flat[0].images[0], ax=axes, shrink=0.9)
        bar.set_label(colorbar_label)
    return fig


def score_scaling(dim: int = 64, scale_power: float = 0.5, num_keys: int = 16, samples: int = 2000, seed: int = 0):
    """Scores and softmax weights of random unit-variance queries and keys of width ``dim`` (notebook 02).

    The scores are ``q . k / dim ** scale_power``: 0 is the raw dot product, 0.5 the Transformer's
    ``sqrt(d)``. Left: the scores' histogram (its standard deviation in the title). Right: one
    query's weights over ``num_keys`` keys, sorted; a near one-hot bar means a saturated softmax.
    Returns the figure.
    """
    generator = seeds.generator(seed)
    query = torch.randn(samples, 1, dim, generator=generator)
    key = torch.randn(samples, num_keys, dim, generator=generator)
    scores = (query @ key.transpose(-2, -1)).squeeze(1) / dim**scale_power  # (samples, keys)
    weights = torch.softmax(scores, dim=-1)
    max_weight = weights.max(dim=-1).values.mean()

    fig, (left, right) = plt.subplots(1, 2, figsize=(8.0, 3.0))
    left.hist(scores.flatten().numpy(), bins=60, color="C0")
    left.set_title(f"scores: std {scores.std():.2f}")
    left.set_xlabel(f"q·k / d^{scale_power:g}   (d = {dim})")
    left.set_ylabel("count")
    right.bar(range(num_keys), weights[0].sort(descending=True).values.numpy(), color="C1")
    right.set_ylim(0, 1)
    right.set_title(f"one query's weights (mean max weight {max_weight:.2f})")
    right.set_xlabel("keys, sorted by weight")
    right.set_ylabel("weight")
    right.xaxis.set_major_locator(plt.MaxNLocator(integer=True))  # keys are counted, not measured
    right.set_xlim(-0.6, num_keys - 0.4)
    fig.tight_layout()
    return fig


def _overlay_groups(names: list, share) -> list:
    """Columns drawn on one scale: ``[(names, shared)]`` in column order."""
    if share is None or share is False:
        return [([name], False) for name in names]
    groups = [list(names)] if share is True else [list(group) for group in share]
    seen = set()
    for group in groups:
        for name in group:
            if name not in names:
                raise ValueError(f"share names column {name!r}, but the maps are {names}")
            if name in seen:
                raise ValueError(f"column {name!r} is in more than one shared group")
            seen.add(name)
        if [names.index(name) for name in group] != list(range(names.index(group[0]),
                                                                  names.index(group[0]) + len(group))):
            raise ValueError(f"a shared group must be adjacent columns in map order, got {group}")
    result, index = [], 0
    while index < len(names):
        group = next((g for g in groups if g[0] == names[index]), None)
        result.append((group, True) if group is not None else ([names[index]], False))
        index += len(result[-1][0])
    return result


def digit_overlays(images: torch.Tensor, maps: dict, *, titles=None, size: float = 1.5, labels: dict | None = None,
                   share=None, vmax=None, ink_threshold: float = INK_THRESHOLD):
    """One row per digit image, then each ``(batch, grid, grid)`` map with the digit's outline on top (04, 11).

    Each column has ONE colour scale for all its rows, drawn as a labelled colorbar under it, so
    a near-uniform map looks pale and a peaked one bright. A column whose values are all >= 0 runs
    from 0 to its largest value (``magma``); a column with negative values uses a diverging scale
    centred at 0 (``RdBu_r``: red = positive, blue = negative), so nothing is clipped. The cyan
    outline is the digit's strokes (ink >= ``ink_threshold``).

    Columns of the same quantity (the weights of two methods) must share a scale, or a map half as
    peaked looks just as bright: ``share`` puts them on one scale with one colorbar at the side.

    Args:
        images: ``(batch, 1, H, W)``.
        maps: ``{column title: (batch, g, g) tensor}``, stretched over the image.
        titles: optional row labels (e.g. the labels).
        labels: optional ``{column title: colorbar label}``; a shared group's bar takes the label of
            its first column (default: the column titles joined by " / ").
        share: ``True`` (every map column on one scale), or a list of groups of adjacent column
            titles, ``[["last layer", "rollout"]]``; the other columns keep their own scale.
        vmax: the top of the scale: a number for every column, or ``{column title: number}``.
        ink_threshold: the ink level of the outline (``INK_THRESHOLD``, as the series measures ink).

    Returns the figure.
    """
    images = images.detach().float().cpu().numpy()  # matplotlib reads NumPy arrays without a warning
    batch, _, height, width = images.shape
    names = list(maps)
    groups = _overlay_groups(names, share)
    side = 0.9 if any(shared for _, shared in groups) else 0.0  # room for colorbars at the side
    size = min(size, (FIGURE_WIDTH_IN - side) / (1 + len(maps)))
    fig, axes = plt.subplots(batch, 1 + len(maps), figsize=(size * (1 + len(maps)) + side, size * batch + 0.9),
                             squeeze=False, layout="constrained")
    extent = (-0.5, width - 0.5, height - 0.5, -0.5)
    for row in range(batch):
        axes[row, 0].imshow(images[row, 0], cmap="gray_r", vmin=0, vmax=1)
        axes[row, 0].contour(images[row, 0], levels=[ink_threshold], colors="cyan", linewidths=1.0, origin="upper",
                             extent=extent)
        if titles is not None:
            axes[row, 0].set_ylabel(str(titles[row]))
    axes[0, 0].set_title("digit", fontsize=9)
    for group, shared in groups:
        columns = [names.index(name) + 1 for name in group]
        values = {name: _as_array(maps[name]).astype(np.float32) for name in group}
        low = min(float(v.min()) for v in values.values())
        high = max(float(v.max()) for v in values.values())
        top = vmax.get(group[0], next((vmax[n] for n in group if n in vmax), None)) if isinstance(vmax, dict) \
            else vmax
        if low < 0:
            bound = max(-low, high, 1e-12) if top is None else float(top)
            scale = dict(cmap="RdBu_r", vmin=-bound, vmax=bound)
        else:
            scale = dict(cmap="magma", vmin=0, vmax=max(high, 1e-12) if top is None else float(top))
        for name, col in zip(group, columns, strict=True):
            for row in range(batch):
                ax = axes[row, col]
                image = ax.imshow(values[name][row], extent=extent, interpolation="nearest", **scale)
                ax.contour(images[row, 0], levels=[ink_threshold], colors="cyan", linewidths=1.0, origin="upper",
                           extent=extent)
                ax.set_xlim(extent[:2])
                ax.set_ylim(extent[2:])
            axes[0, col].set_title(name, fontsize=9)
        label = (labels or {}).get(group[0], " / ".join(group))
        if shared:
            bar = fig.colorbar(image, ax=axes[:, columns[0]:columns[-1] + 1], location="right", shrink=0.6,
                               aspect=25)
        else:
            bar = fig.colorbar(image, ax=axes[:, columns[0]], location="bottom", shrink=0.9, aspect=12)
        bar.set_label(label, fontsize=8)
        bar.ax.tick_params(labelsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    return fig


def shade_ink(ax, image, threshold: float = INK_THRESHOLD, *, color: str = "cyan"):
    """Hatch the inked pixels (>= ``threshold``) of a ``(H, W)`` digit on ``ax``, over a map already drawn
    there, and outline them, so a reader sees which side of the outline is ink. Returns the contour set."""
    image = _as_array(image).astype(np.float32)
    if image.ndim != 2:
        raise ValueError(f"shade_ink takes one (H, W) image, got shape {tuple(image.shape)}")
    height, width = image.shape
    extent = (-0.5, width - 0.5, height - 0.5, -0.5)
    limits = ax.get_xlim(), ax.get_ylim()
    filled = ax.contourf(image, levels=[threshold, max(float(image.max()), threshold) + 1.0], colors="none",
                         hatches=["////"], origin="upper", extent=extent)
    filled.set_edgecolor(color)
    filled.set_linewidth(0.0)
    ax.contour(image, levels=[threshold], colors=color, linewidths=1.0, origin="upper", extent=extent)
    if ax.images:  # keep the map's own limits
        ax.set_xlim(limits[0])
        ax.set_ylim(limits[1])
    return filled


def slider(draw, **controls):
    """Sliders that redraw ``draw(**values)`` when moved (JupyterLab; needs ``ipywidgets``).

    Each control is ``name=(min, max, step)``, or ``name=[option, ...]`` for a slider over given
    values (head counts that divide a width, say); the starting value is ``draw``'s default for
    that argument. ``draw`` makes a new figure (and may return it). Use the slider *beside* a static
    call of the same ``draw``, so the page still shows a figure where widgets do not render (on
    a code-hosting site).

    The figure is handed to the output widget as its state rather than printed, so a notebook
    run by nbval or nbclient gets the same cell output (the widget's one-line text) either way.
    """
    import inspect

    import ipywidgets as widgets

    defaults = {name: p.default for name, p in inspect.signature(draw).parameters.items()}
    sliders = {}
    style = {"description_width": "initial"}
    for name, control in controls.items():
        start = defaults.get(name, inspect.Parameter.empty)
        if isinstance(control, list):
            start = control[0] if start is inspect.Parameter.empty else start
            sliders[name] = widgets.SelectionSlider(options=control, value=start, description=name,
                                                    continuous_update=False, style=style)
            continue
        low, high, step = control
        start = low if start is inspect.Parameter.empty else start
        kind = widgets.IntSlider if all(isinstance(v, int) for v in (low, high, step)) else widgets.FloatSlider
        sliders[name] = kind(value=start, min=low, max=high, step=step, description=name,
                             continuous_update=False, style=style)
    output = widgets.Output()

    def redraw(change=None):
        figure = draw(**{name: s.value for name, s in sliders.items()})
        figure = plt.gcf() if figure is None else figure
        output.outputs = ()
        output.append_display_data(figure)
        plt.close(figure)

    for s in sliders.values():
        s.observe(redraw, names="value")
    redraw()
    return widgets.VBox([*sliders.values(), output])
