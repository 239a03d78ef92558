"""Figure helpers shared by the notebooks: one look for the series, heatmaps of attention
weights, and sliders that redraw a figure.

Figures are PNG (strict nbval skips PNG but compares SVG, which embeds dates and ids).
"""

import matplotlib.pyplot as plt
import numpy as np
import torch
from cycler import cycler

from helpers import seeds

__all__ = ["use_series_style", "heatmap", "heatmaps", "score_scaling", "digit_overlays", "slider", "DPI",
           "MIN_FONT_SIZE", "MASKED_COLOR"]

# The resolution and smallest text size of every figure in the series (tests/test_plot.py holds
# the series to them): at 110 dots per inch, 8-point text is about 12 pixels tall.
DPI = 110
MIN_FONT_SIZE = 8
# Entries a mask forbids are drawn in this grey, never in the colour of a near-zero weight.
MASKED_COLOR = "#b0b0b0"

# Okabe-Ito colours, each with its own line style, so that lines stay apart in greyscale and
# for colour-blind readers.
_COLORS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"]
_STYLES = ["-", "--", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1, 1, 1)), (0, (1, 2))]


def use_series_style():
    """Legible PNG figures with the same look in every notebook."""
    plt.rcParams.update({
        "figure.figsize": (6.0, 3.6),
        "figure.dpi": DPI,
        "savefig.dpi": DPI,
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


def _as_array(weights) -> np.ndarray:
    if isinstance(weights, torch.Tensor):
        weights = weights.detach().float().cpu().numpy()
    return np.asarray(weights)


def heatmap(weights, *, ax=None, xlabels=None, ylabels=None, title=None, xlabel="keys", ylabel="queries",
            colorbar=True, colorbar_label="attention weight", vmin=0.0, vmax=None, annotate=False, mask=None,
            cmap=None):
    """Draw a ``(queries, keys)`` weight matrix; returns the axes.

    Args:
        weights: ``(queries, keys)``.
        xlabels, ylabels: names of the keys and queries (tokens, positions).
        colorbar, colorbar_label: draw a labelled colorbar beside the axes.
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
        bar.set_label(colorbar_label)
    return ax


def heatmaps(weights, *, titles=None, ncols=None, xlabels=None, ylabels=None, size=2.2, colorbar=True,
             colorbar_label="attention weight", vmin=0.0, vmax=None, masks=None, **kwargs):
    """Draw a stack of ``(n, queries, keys)`` matrices side by side (heads, layers, examples).

    The panels share one colour scale (``vmin``, ``vmax``; by default 0 to the largest weight of
    the stack) and one labelled colorbar, so panels can be compared by colour. Only the first
    column carries y tick labels. ``masks`` (bool ``(n, queries, keys)`` or ``(queries, keys)``,
    True = may attend) greys out forbidden entries. Returns the figure.
    """
    weights = _as_array(weights)
    if weights.ndim != 3:
        raise ValueError(f"heatmaps draws (n, queries, keys), got shape {tuple(weights.shape)}")
    n = weights.shape[0]
    if vmax is None:
        vmax = float(np.nanmax(weights))
    ncols = min(n, 4) if ncols is None else ncols
    nrows = -(-n // ncols)
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


def digit_overlays(images: torch.Tensor, maps: dict, *, titles=None, size: float = 1.5, labels: dict | None = None):
    """One row per digit image, then each ``(batch, grid, grid)`` map with the digit's outline on top (04, 11).

    Each column has ONE colour scale for all its rows, drawn as a labelled colorbar under it, so
    a near-uniform map looks pale and a peaked one bright. A column whose values are all >= 0 runs
    from 0 to its largest value (``magma``); a column with negative values uses a diverging scale
    centred at 0 (``RdBu_r``: red = positive, blue = negative), so nothing is clipped. The cyan
    outline is the digit's strokes (ink >= 0.4).

    Args:
        images: ``(batch, 1, H, W)``.
        maps: ``{column title: (batch, g, g) tensor}``, stretched over the image.
        titles: optional row labels (e.g. the labels).
        labels: optional ``{column title: colorbar label}``.

    Returns the figure.
    """
    images = images.detach().float().cpu().numpy()  # matplotlib reads NumPy arrays without a warning
    batch, _, height, width = images.shape
    fig, axes = plt.subplots(batch, 1 + len(maps), figsize=(size * (1 + len(maps)), size * batch + 0.9),
                             squeeze=False, layout="constrained")
    extent = (-0.5, width - 0.5, height - 0.5, -0.5)
    for row in range(batch):
        axes[row, 0].imshow(images[row, 0], cmap="gray_r", vmin=0, vmax=1)
        axes[row, 0].contour(images[row, 0], levels=[0.4], colors="cyan", linewidths=1.0, origin="upper",
                             extent=extent)
        if titles is not None:
            axes[row, 0].set_ylabel(str(titles[row]))
    axes[0, 0].set_title("digit", fontsize=9)
    for col, (name, values) in enumerate(maps.items(), start=1):
        values = values.detach().float().cpu().numpy()
        low, high = float(values.min()), float(values.max())
        if low < 0:
            bound = max(-low, high, 1e-12)
            scale = dict(cmap="RdBu_r", vmin=-bound, vmax=bound)
        else:
            scale = dict(cmap="magma", vmin=0, vmax=max(high, 1e-12))
        for row in range(batch):
            ax = axes[row, col]
            image = ax.imshow(values[row], extent=extent, interpolation="nearest", **scale)
            ax.contour(images[row, 0], levels=[0.4], colors="cyan", linewidths=1.0, origin="upper", extent=extent)
            ax.set_xlim(extent[:2])
            ax.set_ylim(extent[2:])
        axes[0, col].set_title(name, fontsize=9)
        bar = fig.colorbar(image, ax=axes[:, col], location="bottom", shrink=0.9, aspect=12)
        bar.set_label((labels or {}).get(name, name), fontsize=8)
        bar.ax.tick_params(labelsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    return fig


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
