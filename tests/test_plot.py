"""helpers.plot: the series style's resolution and smallest font, and the heatmap helpers."""

import ast
import json
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


def lone_colours(source: str) -> list[str]:
    """``.plot(...)`` calls in ``source`` that pass a colour but no line style (nor a format string, nor
    ``**plot.style(i)``): each advances the axes' colour+linestyle cycle, shifting the next line's look."""
    lines = ["" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines()]
    try:
        tree = ast.parse("\n".join(lines))
    except SyntaxError:
        return []
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("plot", "semilogx", "semilogy", "loglog", "step")):
            continue
        names = {keyword.arg for keyword in node.keywords}
        has_format = len(node.args) == 3 or any(isinstance(a, ast.Constant) and isinstance(a.value, str)
                                                 for a in node.args)
        if names & {"color", "c"} and not names & {"linestyle", "ls", None} and not has_format:
            found.append(f"line {node.lineno}: {ast.get_source_segment(chr(10).join(lines), node)}")
    return found


def test_lone_colours_finds_a_colour_without_a_line_style():
    assert lone_colours("ax.plot(x, y, color='C1')\nax.plot(x, y, color='C1', linestyle='-')") \
        == ["line 1: ax.plot(x, y, color='C1')"]
    assert lone_colours("ax.plot(x, y, 'o', color='C1')\nax.plot(x, y, **plot.style(1))\nax.plot(x, y)") == []
    assert lone_colours("%matplotlib inline\nax.semilogy(x, y, c='k')") == ["line 2: ax.semilogy(x, y, c='k')"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebooks_pass_a_line_style_with_every_colour(path):
    notebook = json.loads(path.read_text(encoding="utf-8"))
    found = [f"{path.name} cell {index} {call}" for index, cell in enumerate(notebook["cells"])
             if cell["cell_type"] == "code" for call in lone_colours("".join(cell["source"]))]
    if found:
        pytest.fail("a colour without a line style advances the colour+linestyle cycle (pass linestyle=, or "
                    "**plot.style(i)):\n  " + "\n  ".join(found), pytrace=False)


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


# --- issue 22: the series' figure conventions, enforced at their source ---------------------------------


def _png_size(fig):
    import io

    from PIL import Image

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")  # as the notebooks' inline backend saves
    return Image.open(io.BytesIO(buffer.getvalue())).size


def test_width_constants_match_the_series_dpi():
    assert plot.MAX_WIDTH_IN == 9.0 and plot.MAX_WIDTH_PX == 990 == round(plot.MAX_WIDTH_IN * plot.DPI)
    assert plot.FIGURE_WIDTH_IN + 2 * plt.rcParams["savefig.pad_inches"] <= plot.MAX_WIDTH_IN
    assert plot.MIB == 2**20 and plot.INK_THRESHOLD == 0.25


def test_style_matches_the_cycle_and_does_not_advance_it():
    cycle = list(plt.rcParams["axes.prop_cycle"])
    for i in range(len(cycle) + 1):
        look = plot.style(i)
        expected = cycle[i % len(cycle)]
        assert look["color"] == expected["color"] and look["linestyle"] == expected["linestyle"]
    assert "marker" in plot.style(0) and "marker" not in plot.style(0, marker=False)
    assert len({plot.style(i)["marker"] for i in range(len(cycle))}) == len(cycle)
    _, ax = plt.subplots()
    ax.plot([0, 1], [0, 1], **plot.style(3))
    (line,) = ax.plot([0, 1], [1, 0])  # the next default line is still the first of the cycle
    assert matplotlib.colors.to_hex(line.get_color()) == cycle[0]["color"].lower()
    assert line.get_linestyle() == "-"
    with pytest.raises(TypeError, match="integer"):
        plot.style("C0")


@pytest.mark.parametrize("show", ["band", "lines", "points", "lines+band"])
def test_seed_spread_draws_a_thick_mean_and_the_seeds_without_advancing_the_cycle(show):
    _, ax = plt.subplots()
    x = [1, 2, 3, 4]
    runs = torch.tensor([[1.0, 2.0, 3.0, 4.0], [3.0, 2.0, 1.0, 0.0], [2.0, 2.0, 2.0, 2.0]])
    mean = plot.seed_spread(ax, x, runs, label="model", i=2, show=show)
    look = plot.style(2)
    assert mean.get_ydata().tolist() == [2.0, 2.0, 2.0, 2.0]
    assert mean.get_color() == look["color"] and mean.get_linewidth() >= 2.0
    others = [line for line in ax.lines if line is not mean]
    assert all(line.get_color() == look["color"] for line in others)
    assert all(line.get_linewidth() < mean.get_linewidth() or line.get_linestyle() == "None" for line in others)
    if "lines" in show:
        assert sum(line.get_linestyle() == "-" for line in others) == 3
    if "points" in show:
        (points,) = others
        assert sorted(points.get_ydata().tolist()) == sorted(runs.flatten().tolist())
    if "band" in show:
        (band,) = ax.collections
        ys = band.get_paths()[0].vertices[:, 1]
        assert ys.min() == 0.0 and ys.max() == 4.0  # the min-max over seeds
    else:
        assert not ax.collections
    handles, labels = ax.get_legend_handles_labels()
    assert labels == ["model"] and handles == [mean]
    (after,) = ax.plot(x, x)  # nothing above advanced the colour+linestyle cycle
    assert matplotlib.colors.to_hex(after.get_color()) == plot.style(0)["color"].lower()
    assert after.get_linestyle() == "-"


def test_seed_spread_rejects_bad_input():
    _, ax = plt.subplots()
    with pytest.raises(ValueError, match=r"\(seeds, n\)"):
        plot.seed_spread(ax, [1, 2, 3], [[1.0, 2.0]])
    with pytest.raises(ValueError, match="show"):
        plot.seed_spread(ax, [1, 2], [[1.0, 2.0]], show="bars")


def _colorbar_label(fig):
    bars = [ax for ax in fig.axes if not ax.images and ax.get_ylabel()]
    assert len(bars) == 1
    return bars[0].get_ylabel()


def test_heatmap_labels_non_attention_data_neutrally_and_passes_a_given_label():
    ink = torch.tensor([[0.0, 0.9, 0.8], [0.2, 0.7, 0.0]])  # pixel ink: rows do not sum to 1
    assert _colorbar_label(plot.heatmap(ink).figure) == "value"
    scores = torch.tensor([[-1.0, 2.0], [0.5, 0.5]])  # signed scores: not weights, even if a row sums to 1
    assert _colorbar_label(plot.heatmap(scores, vmin=-2, vmax=2, cmap="RdBu_r").figure) == "value"
    weights = torch.softmax(torch.randn(3, 4), dim=-1)
    assert _colorbar_label(plot.heatmap(weights).figure) == "attention weight"
    assert _colorbar_label(plot.heatmap(ink, colorbar_label="ink (0 to 1)").figure) == "ink (0 to 1)"
    assert _colorbar_label(plot.heatmaps(torch.rand(2, 3, 3) + 1).figure) == "value"
    assert _colorbar_label(plot.heatmaps(torch.softmax(torch.randn(2, 3, 3), -1))) == "attention weight"
    assert _colorbar_label(plot.heatmaps(torch.rand(2, 3, 3), colorbar_label="ink")) == "ink"


@pytest.mark.parametrize(("n", "rows", "cols"), [(1, 1, 1), (3, 1, 3), (4, 2, 2), (5, 2, 3), (8, 2, 4), (12, 3, 4)])
def test_heatmaps_wrap_four_or_more_panels_onto_two_rows(n, rows, cols):
    fig = plot.heatmaps(torch.softmax(torch.randn(n, 5, 5), -1), titles=[f"head {i}" for i in range(n)])
    panels = [ax for ax in fig.axes if ax.images]
    assert len(panels) == n
    spec = panels[0].get_subplotspec().get_gridspec()
    assert (spec.nrows, spec.ncols) == (rows, cols)
    assert fig.get_figwidth() <= plot.MAX_WIDTH_IN


@pytest.mark.parametrize("ncols", [None, 8])
def test_heatmaps_stay_within_the_notebook_width(ncols):
    words = [f"token{i}" for i in range(10)]
    fig = plot.heatmaps(torch.softmax(torch.randn(8, 10, 10), -1), titles=[f"head {i}" for i in range(8)],
                        xlabels=words, ylabels=words, ncols=ncols)
    assert _png_size(fig)[0] <= plot.MAX_WIDTH_PX


def test_digit_overlays_share_one_scale_across_columns_of_one_quantity():
    images = torch.rand(2, 1, 8, 8)
    maps = {"last layer": torch.rand(2, 4, 4) * 0.3, "rollout": torch.rand(2, 4, 4) * 0.3 + 0.35,
            "occlusion": torch.randn(2, 4, 4)}
    fig = plot.digit_overlays(images, maps, share=[["last layer", "rollout"]], labels={"last layer": "weight"})
    grid = [ax for ax in fig.axes if ax.images and ax.get_subplotspec() is not None]
    by_column = {}
    for ax in grid:
        by_column.setdefault(ax.get_subplotspec().colspan.start, set()).add(ax.images[0].get_clim())
    top = max(float(maps["last layer"].max()), float(maps["rollout"].max()))
    assert by_column[1] == by_column[2] and len(by_column[1]) == 1
    assert next(iter(by_column[1])) == pytest.approx((0.0, top))
    (signed,) = by_column[3]
    assert signed[0] == -signed[1]
    bars = [ax for ax in fig.axes if ax not in grid]
    assert len(bars) == 2  # one bar for the shared pair, one for occlusion
    assert sorted(bar.get_ylabel() or bar.get_xlabel() for bar in bars) == ["occlusion", "weight"]
    fig.canvas.draw()
    shared_bar = next(bar for bar in bars if bar.get_ylabel() == "weight")
    rollout_panel = next(ax for ax in grid if ax.get_subplotspec().colspan.start == 2)
    assert shared_bar.get_position().x0 >= rollout_panel.get_position().x1  # at the side of the pair


def test_digit_overlays_share_all_vmax_and_the_ink_outline():
    images = torch.rand(2, 1, 8, 8)
    maps = {"head 0": torch.rand(2, 4, 4) * 0.4, "head 1": torch.rand(2, 4, 4)}
    fig = plot.digit_overlays(images, maps, share=True, vmax=1.0)
    grid = [ax for ax in fig.axes if ax.images and ax.get_subplotspec() is not None]
    assert {ax.images[0].get_clim() for ax in grid if ax.get_subplotspec().colspan.start > 0} == {(0.0, 1.0)}
    assert len(fig.axes) == len(grid) + 1
    contours = [c for ax in grid for c in ax.collections if hasattr(c, "levels")]
    assert contours and {float(level) for c in contours for level in c.levels} == {plot.INK_THRESHOLD}
    signed = {"weight": torch.rand(2, 4, 4), "change": torch.randn(2, 4, 4) * 3}  # negatives in the second only
    fig = plot.digit_overlays(images, signed, share=True)
    limits = {ax.images[0].get_clim() for ax in fig.axes if ax.images and ax.get_subplotspec() is not None
              and ax.get_subplotspec().colspan.start > 0}
    bound = float(signed["change"].abs().max())
    assert len(limits) == 1 and next(iter(limits)) == pytest.approx((-bound, bound))  # one diverging scale
    with pytest.raises(ValueError, match="share names column"):
        plot.digit_overlays(images, maps, share=[["head 0", "head 9"]])
    with pytest.raises(ValueError, match="adjacent"):
        plot.digit_overlays(images, {**maps, "x": torch.rand(2, 4, 4)}, share=[["head 0", "x"]])


def test_twin_axis_draws_its_own_spine():
    _, ax = plt.subplots()
    assert not ax.spines["right"].get_visible()  # the series style hides it...
    assert plot.twin_axis(ax).spines["right"].get_visible()  # ...and the twin shows it again
    assert plot.twin_axis(ax, "x").spines["top"].get_visible()
    with pytest.raises(ValueError):
        plot.twin_axis(ax, "z")


def test_log_axis_uses_decimal_ticks():
    fig, ax = plt.subplots()
    ax.plot([0.3, 300], [0.3, 300])
    plot.log_axis(ax, "both")
    fig.canvas.draw()
    assert ax.get_xscale() == ax.get_yscale() == "log"
    low, high = ax.get_ylim()
    ticks = [t for t in ax.get_yticks() if low <= t <= high]
    assert ticks == pytest.approx([0.5, 1, 2, 5, 10, 20, 50, 100, 200])
    labels = [label.get_text() for label in ax.get_yticklabels() if low <= label.get_position()[1] <= high]
    assert labels[:4] == ["0.5", "1", "2", "5"] and "100" in labels
    assert not any("10^" in label or "e+" in label for label in labels)
    assert not any(label.get_text() for label in ax.yaxis.get_minorticklabels())


def test_log_axis_base_two_and_rejects_other_bases():
    fig, ax = plt.subplots()
    ax.plot([256, 4096], [1, 2])
    plot.log_axis(ax, "x", base=2)
    fig.canvas.draw()
    low, high = ax.get_xlim()
    assert [t for t in ax.get_xticks() if low <= t <= high] == [256, 512, 1024, 2048, 4096]
    assert [label.get_text() for label in ax.get_xticklabels()][1:4] == ["256", "512", "1024"]
    assert ax.get_yscale() == "linear"
    with pytest.raises(ValueError, match="base"):
        plot.log_axis(ax, base=3)


def test_legend_outside_keeps_the_legend_off_the_data():
    for where in ("right", "below"):
        fig, ax = plt.subplots()
        ax.plot([0, 1], [0, 1], label="a", **plot.style(0))
        ax.plot([0, 1], [1, 0], label="b", **plot.style(1))
        ax.set_xlabel("x")
        legend = plot.legend_outside(ax, where)
        fig.canvas.draw()
        box, frame = legend.get_window_extent(), ax.get_window_extent()
        if where == "right":
            assert box.x0 >= frame.x1
        else:
            assert box.y1 <= ax.xaxis.label.get_window_extent().y0 + 1
        assert not box.overlaps(frame)
    with pytest.raises(ValueError):
        plot.legend_outside(ax, "inside")


def test_mib_and_subplots_width_cap():
    assert plot.mib(3 * 2**20) == 3.0 and isinstance(plot.mib(2**20), float)
    assert plot.mib(torch.tensor([2**21, 2**19])).tolist() == [2.0, 0.5]
    fig, axes = plot.subplots(1, 3, figsize=(13.2, 4.5))
    assert (fig.get_figwidth(), fig.get_figheight()) == pytest.approx((8.8, 3.0))
    assert _png_size(fig)[0] <= plot.MAX_WIDTH_PX
    assert fig.get_layout_engine() is not None and len(axes) == 3
    fig, _ = plot.subplots(figsize=(5.0, 3.0))
    assert (fig.get_figwidth(), fig.get_figheight()) == (5.0, 3.0)


def test_mask_pattern_draws_allowed_in_colour_and_masked_in_grey():
    mask = torch.tensor([[True, False], [True, True]])
    ax = plot.mask_pattern(mask, legend=True)
    image = ax.images[0]
    colours = image.to_rgba(image.get_array())
    assert matplotlib.colors.to_hex(colours[0, 0]) == plot.ALLOWED_COLOR.lower()
    assert matplotlib.colors.to_hex(colours[0, 1]) == plot.MASKED_COLOR
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["may attend", "masked"]
    with pytest.raises(TypeError, match="boolean"):
        plot.mask_pattern(mask.float())


def test_shade_ink_hatches_the_inked_side_and_keeps_the_limits():
    image = torch.zeros(6, 6)
    image[2:4, 2:4] = 1.0
    fig, ax = plt.subplots()
    ax.imshow(torch.rand(6, 6).numpy())
    limits = ax.get_xlim(), ax.get_ylim()
    filled = plot.shade_ink(ax, image)
    assert filled.levels[0] == plot.INK_THRESHOLD and filled.hatches == ["////"]
    assert (ax.get_xlim(), ax.get_ylim()) == limits
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        plot.shade_ink(ax, torch.zeros(1, 6, 6))
