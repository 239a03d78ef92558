"""Figure helpers shared by the notebooks: one look for the series, heatmaps of attention
weights, and sliders that redraw a figure.

Figures are PNG (strict nbval skips PNG but compares SVG, which embeds dates and ids).
"""

import matplotlib.pyplot as plt
import torch

__all__ = ["use_series_style", "heatmap", "heatmaps", "slider"]


def use_series_style():
    """Small, legible PNG figures with the same look in every notebook."""
    plt.rcParams.update({
        "figure.figsize": (6.0, 3.6),
        "figure.dpi": 80,
        "savefig.dpi": 80,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.grid": False,
        "font.size": 10,
        "image.cmap": "viridis",
        # Notebooks must not write to stderr: a missing glyph would warn there.
        "font.family": "DejaVu Sans",
    })


def _as_array(weights):
    if isinstance(weights, torch.Tensor):
        weights = weights.detach().float().cpu()
    return weights


def heatmap(weights, *, ax=None, xlabels=None, ylabels=None, title=None, xlabel="keys", ylabel="queries",
            colorbar=True, vmin=0.0, vmax=None, annotate=False):
    """Draw a ``(queries, keys)`` weight matrix; returns the axes.

    ``xlabels``/``ylabels`` name the keys and queries (tokens, positions). ``annotate`` writes
    each weight in its cell, for matrices small enough to read.
    """
    weights = _as_array(weights)
    if weights.ndim != 2:
        raise ValueError(f"heatmap draws a 2-D (queries, keys) matrix, got shape {tuple(weights.shape)}")
    if ax is None:
        # Small matrices get room for their labels; large ones are capped at a readable size.
        width = min(0.45 * weights.shape[1] + 2.2, 6.5)
        height = min(0.45 * weights.shape[0] + 1.2, 4.5)
        _, ax = plt.subplots(figsize=(width, height))
    image = ax.imshow(weights, vmin=vmin, vmax=vmax, aspect="auto")
    if xlabels is not None:
        ax.set_xticks(range(len(xlabels)), [str(x) for x in xlabels])
    if ylabels is not None:
        ax.set_yticks(range(len(ylabels)), [str(y) for y in ylabels])
    if annotate:
        top = float(weights.max()) if vmax is None else vmax
        for i in range(weights.shape[0]):
            for j in range(weights.shape[1]):
                value = float(weights[i, j])
                ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7,
                        color="black" if value > 0.6 * top else "white")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    if colorbar:
        ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    return ax


def heatmaps(weights, *, titles=None, ncols=None, xlabels=None, ylabels=None, size=2.2, **kwargs):
    """Draw a stack of ``(n, queries, keys)`` matrices side by side (heads, layers, examples)."""
    weights = _as_array(weights)
    if weights.ndim != 3:
        raise ValueError(f"heatmaps draws (n, queries, keys), got shape {tuple(weights.shape)}")
    n = weights.shape[0]
    ncols = min(n, 4) if ncols is None else ncols
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols + 0.5, size * nrows + 0.3), squeeze=False)
    for index, ax in enumerate(axes.flat):
        if index >= n:
            ax.axis("off")
            continue
        heatmap(weights[index], ax=ax, colorbar=False, xlabels=xlabels, ylabels=ylabels,
                title=None if titles is None else titles[index], **kwargs)
    fig.tight_layout()
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
