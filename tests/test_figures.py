"""Every committed notebook figure fits a notebook column: at most 990 px wide, saved at 110 dpi.

A notebook column (JupyterLab, the classic notebook, a code-hosting page) shows about 850-1,000 px.
A wider image is scaled down to fit, and its 8-pt text shrinks below what can be read, so the
series caps figures at ``plot.MAX_WIDTH_IN`` (9 in) at ``plot.DPI`` (110): 990 px. The PNG's pHYs
chunk records the dpi it was saved at; a figure without it, or at another dpi, was not drawn in the
series' style. Figures are PNG only (SVG embeds dates and ids that strict nbval would compare).

The committed outputs are read, nothing is run: after changing a figure, regenerate the notebook
with ``tools/run_notebooks.py`` and run ``pytest tests/test_figures.py -k NN_``.
"""

import base64
import json
import struct
from pathlib import Path

import pytest

from helpers import plot

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("[0-9][0-9]_*.ipynb"))
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
INCHES_PER_METRE = 1 / 0.0254


def png_info(png: bytes) -> tuple[int, int, float | None]:
    """``(width, height, dpi)`` read from the PNG's IHDR and pHYs chunks (dpi ``None`` without pHYs,
    or when pHYs gives no unit)."""
    if not png.startswith(PNG_SIGNATURE):
        raise ValueError("not a PNG (bad signature)")
    width = height = None
    dpi = None
    position = len(PNG_SIGNATURE)
    while position + 8 <= len(png):
        length, kind = struct.unpack(">I4s", png[position:position + 8])
        body = png[position + 8:position + 8 + length]
        if kind == b"IHDR":
            width, height = struct.unpack(">II", body[:8])
        elif kind == b"pHYs":
            x_per_unit, y_per_unit, unit = struct.unpack(">IIB", body[:9])
            if unit == 1 and x_per_unit == y_per_unit:  # pixels per metre
                dpi = x_per_unit / INCHES_PER_METRE
        elif kind in (b"IDAT", b"IEND"):  # pHYs must come before the image data
            break
        position += 12 + length  # length, type, data, CRC
    if width is None:
        raise ValueError("PNG without an IHDR chunk")
    return width, height, dpi


def figures(path: Path):
    """``(cell index, image index in the cell, png bytes)`` for every committed PNG output."""
    notebook = json.loads(path.read_text(encoding="utf-8"))
    for cell_index, cell in enumerate(notebook["cells"]):
        if cell["cell_type"] != "code":
            continue
        images = [output["data"]["image/png"] for output in cell.get("outputs", [])
                  if "image/png" in output.get("data", {})]
        for image_index, data in enumerate(images):
            data = "".join(data) if isinstance(data, list) else data
            yield cell_index, image_index, base64.b64decode(data)


def test_png_info_reads_width_and_dpi():
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(2.0, 1.0), dpi=plot.DPI)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=plot.DPI)
    plt.close(fig)
    width, height, dpi = png_info(buffer.getvalue())
    assert (width, height) == (2 * plot.DPI, plot.DPI)
    assert round(dpi) == plot.DPI
    with pytest.raises(ValueError, match="signature"):
        png_info(b"GIF89a")


def problems(path: Path) -> list[str]:
    """What breaks the width and dpi rule in one notebook's committed PNGs, naming notebook, cell and size."""
    too_wide, wrong_dpi = [], []
    for cell, image, png in figures(path):
        width, height, dpi = png_info(png)
        where = f"{path.name} cell {cell}" + (f" image {image}" if image else "")
        if width > plot.MAX_WIDTH_PX:
            too_wide.append(f"{where}: {width} px wide ({width / plot.DPI:.1f} in), {height} px tall")
        if dpi is None or round(dpi) != plot.DPI:
            wrong_dpi.append(f"{where}: {'no pHYs chunk' if dpi is None else f'{dpi:.0f} dpi'}")
    found = []
    if too_wide:
        found.append(f"wider than {plot.MAX_WIDTH_PX} px ({plot.MAX_WIDTH_IN:g} in at {plot.DPI} dpi; ask for at "
                     f"most {plot.FIGURE_WIDTH_IN:g} in, two rows, or plot.subplots / plot.heatmaps):\n  "
                     + "\n  ".join(too_wide))
    if wrong_dpi:
        found.append(f"not saved at {plot.DPI} dpi (call plot.use_series_style()):\n  " + "\n  ".join(wrong_dpi))
    return found


def _png(width_in: float, dpi: int) -> bytes:
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(width_in, 1.0), dpi=dpi)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    plt.close(fig)
    return buffer.getvalue()


def test_problems_name_the_notebook_the_cell_and_the_width(tmp_path):
    def output(png):
        return {"output_type": "display_data", "metadata": {},
                "data": {"image/png": base64.b64encode(png).decode(), "text/plain": ["<Figure>"]}}

    cells = [{"cell_type": "markdown", "metadata": {}, "source": ["# t"]},
             {"cell_type": "code", "metadata": {}, "source": [], "execution_count": 1, "outputs": [
                 output(_png(8.0, plot.DPI)), output(_png(1000 / plot.DPI, plot.DPI))]},
             {"cell_type": "code", "metadata": {}, "source": [], "execution_count": 2, "outputs": [
                 output(_png(5.0, 72))]}]
    path = tmp_path / "99_fake.ipynb"
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    too_wide, wrong_dpi = problems(path)
    assert "99_fake.ipynb cell 1 image 1: 1000 px wide" in too_wide and "cell 1:" not in too_wide
    assert "99_fake.ipynb cell 2: 72 dpi" in wrong_dpi and "cell 1" not in wrong_dpi
    cells[1]["outputs"] = cells[1]["outputs"][:1]
    cells[2]["outputs"] = []
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    assert problems(path) == []  # 880 px at 110 dpi is fine


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_figures_fit_a_notebook_column_at_the_series_dpi(path):
    found = problems(path)
    if found:
        pytest.fail("\n".join(found), pytrace=False)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_figures_are_png_only(path):
    notebook = json.loads(path.read_text(encoding="utf-8"))
    other = [f"{path.name} cell {index}: {kind}" for index, cell in enumerate(notebook["cells"])
             if cell["cell_type"] == "code"
             for output in cell.get("outputs", [])
             for kind in output.get("data", {})
             if kind.startswith("image/") and kind != "image/png"]
    if other:
        pytest.fail("figures must be PNG only:\n  " + "\n  ".join(other), pytrace=False)


# --- the README's figures (tools/export_figures.py, `make figures`) -------------------------------

ROOT = Path(__file__).resolve().parent.parent


def _export_figures():
    import importlib.util

    spec = importlib.util.spec_from_file_location("export_figures", ROOT / "tools" / "export_figures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _two_panels() -> bytes:
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(6.0, 2.0), dpi=plot.DPI)
    left.plot([0, 1], [0, 1])
    right.plot([0, 1], [1, 0], color="red", linestyle="-")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=plot.DPI)
    plt.close(fig)
    return buffer.getvalue()


def test_readme_png_enlarges_narrow_figures_and_never_shrinks():
    export = _export_figures()
    png = _two_panels()  # 660 px wide
    width, height, _ = png_info(png)
    enlarged = png_info(export.readme_png(png))
    assert enlarged[0] == export.MIN_WIDTH == 720 and enlarged[1] == round(height * 720 / width)
    assert round(enlarged[2]) == round(plot.DPI * 720 / width)  # the dpi follows the scale
    wide = export.readme_png(export.readme_png(png, min_width=900))
    assert png_info(wide)[0] == 900


def test_one_panel_cuts_at_the_gutter_between_panels():
    from PIL import Image

    export = _export_figures()
    png = _two_panels()
    width = png_info(png)[0]
    right = export.one_panel(png, "right")
    left = export.one_panel(png, "left")
    assert png_info(left)[0] + png_info(right)[0] <= width + 8
    assert 0.3 * width < png_info(right)[0] < 0.7 * width
    import io

    pixels = Image.open(io.BytesIO(right)).convert("RGB")
    colours = {pixels.getpixel((x, y)) for x in range(pixels.width) for y in range(0, pixels.height, 3)}
    assert (255, 0, 0) in colours and (0x00, 0x72, 0xB2) not in colours  # the red line, not the blue one
    with pytest.raises(ValueError, match="panel"):
        export.one_panel(png, "middle")


def test_readme_shows_the_four_figures_one_per_row_at_720_px_or_wider():
    export = _export_figures()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name in export.FIGURES:
        path = ROOT / "docs" / "figures" / f"{name}.png"
        assert path.exists(), f"docs/figures/{name}.png is missing: run `make figures`"
        width = png_info(path.read_bytes())[0]
        assert width >= export.MIN_WIDTH, f"docs/figures/{name}.png is {width} px wide (< {export.MIN_WIDTH})"
        lines = [line for line in readme.splitlines() if f"docs/figures/{name}.png" in line]
        assert len(lines) == 1, f"README.md shows docs/figures/{name}.png {len(lines)} times"
        assert lines[0].startswith("!["), f"docs/figures/{name}.png shares its line with another figure: {lines[0]}"
