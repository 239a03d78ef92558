"""helpers.plot: the series style's resolution and smallest font, and the heatmap helpers."""

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib import font_manager  # noqa: E402

from helpers import plot  # noqa: E402

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("[0-9][0-9]_*.ipynb"))


@pytest.fixture(autouse=True)
def style():
    with plt.rc_context():
        plot.use_series_style()
        yield
    plt.close("all")


def test_resolution_and_smallest_font():
    assert plot.DPI >= 110 and plot.MIN_FONT_SIZE >= 8
    assert plt.rcParams["figure.dpi"] >= plot.DPI and plt.rcParams["savefig.dpi"] >= plot.DPI
    for key in ["font.size", "axes.titlesize", "axes.labelsize", "xtick.labelsize", "ytick.labelsize",
                "legend.fontsize", "legend.title_fontsize", "figure.titlesize"]:
        size = font_manager.FontProperties(size=plt.rcParams[key]).get_size_in_points()
        assert size >= plot.MIN_FONT_SIZE, f"{key} is {size} pt"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebooks_use_no_font_below_the_minimum(path):
    source = path.read_text(encoding="utf-8")
    sizes = [float(s) for s in re.findall(r"fontsize=([0-9.]+)", source)]
    assert all(s >= plot.MIN_FONT_SIZE for s in sizes), f"font sizes {sorted(set(sizes))} below the minimum"
    for name in re.findall(r"fontsize=[\\\"']+(xx-small|x-small|small)", source):
        pytest.fail(f"relative font size {name!r} can fall below {plot.MIN_FONT_SIZE} pt")


def test_heatmap_greys_masked_entries_and_labels_colorbar():
    weights = torch.tensor([[1.0, 0.0], [0.5, 0.5]])
    mask = torch.tensor([[True, False], [True, True]])
    ax = plot.heatmap(weights, mask=mask, annotate=True)
    image = ax.images[0]
    assert image.get_array().mask.tolist() == [[False, True], [False, False]]
    assert matplotlib.colors.to_hex(image.get_cmap().get_bad()) == plot.MASKED_COLOR
    assert ax.figure.axes[1].get_ylabel() == "attention weight"
    assert "masked" in [t.get_text() for t in ax.texts]
    assert min(t.get_fontsize() for t in ax.texts) >= plot.MIN_FONT_SIZE


def test_heatmap_rejects_bad_shapes():
    with pytest.raises(ValueError, match="2-D"):
        plot.heatmap(torch.ones(2, 2, 2))
    with pytest.raises(ValueError, match="mask shape"):
        plot.heatmap(torch.ones(2, 2), mask=torch.ones(2, 3, dtype=torch.bool))


def test_heatmaps_share_one_scale_and_one_colorbar():
    weights = torch.stack([torch.eye(3) * 0.5, torch.eye(3)])
    fig = plot.heatmaps(weights, titles=["a", "b"], xlabels="xyz", ylabels="xyz")
    panels = [ax for ax in fig.axes if ax.images]
    assert [ax.images[0].get_clim() for ax in panels] == [(0.0, 1.0), (0.0, 1.0)]
    assert len(fig.axes) == 3  # two panels and one colorbar
    assert not panels[1].yaxis.get_tick_params()["labelleft"]
    with pytest.raises(ValueError, match=r"\(n, queries, keys\)"):
        plot.heatmaps(torch.ones(2, 2))


def test_score_scaling_draws_scores_and_weights():
    fig = plot.score_scaling(dim=16, samples=50)
    left, right = fig.axes
    assert left.get_xlabel().startswith("q·k") and right.get_ylabel() == "weight"
    # One query's weights over 16 keys, sorted, summing to 1.
    heights = [bar.get_height() for bar in right.patches]
    assert len(heights) == 16 and heights == sorted(heights, reverse=True)
    assert abs(sum(heights) - 1) < 1e-5
    plt.close(fig)


def test_digit_overlays_share_one_scale_per_column():
    images = torch.rand(3, 1, 8, 8)
    maps = {"positive": torch.rand(3, 4, 4), "signed": torch.randn(3, 4, 4)}
    fig = plot.digit_overlays(images, maps, titles=["a", "b", "c"])
    grid = [ax for ax in fig.axes if ax.images]
    assert len(grid) == 3 * 3  # the digit and two maps per row
    positive = [ax.images[0].get_clim() for ax in grid if ax.get_subplotspec().colspan.start == 1]
    signed = [ax.images[0].get_clim() for ax in grid if ax.get_subplotspec().colspan.start == 2]
    assert len(set(positive)) == 1 and positive[0][0] == 0
    assert len(set(signed)) == 1 and signed[0][0] == -signed[0][1]  # diverging, centred at 0
    plt.close(fig)


def test_heatmap_turns_long_key_labels_upright():
    ax = plot.heatmap(torch.rand(2, 8), xlabels=[f"word{i}" for i in range(8)], colorbar=False)
    assert {label.get_rotation() for label in ax.get_xticklabels()} == {90.0}
    ax = plot.heatmap(torch.rand(2, 3), xlabels=["a", "b", "c"], colorbar=False)
    assert {label.get_rotation() for label in ax.get_xticklabels()} == {0.0}
    plt.close("all")
