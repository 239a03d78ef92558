"""Copy one figure per part of the series from the notebooks' committed outputs into docs/figures/.

    python tools/export_figures.py            # writes docs/figures/part1.png ... part4.png
    python tools/export_figures.py --list     # every PNG output of every notebook, with its index

The figures are the notebooks' own (nothing is re-run or redrawn). The README shows them one per
row, where a code-hosting page displays an image at its own width up to about 880 px: so a figure
is never shrunk, and one narrower than ``MIN_WIDTH`` (720 px) is enlarged to it, which keeps its
8-point text at least 12 px tall on the page. To show another figure, change ``FIGURES``: a figure
is picked either by its index among the notebook's PNG outputs (from 0; negative counts from the
end; ``--list`` prints them) or, more robustly when cells are added, by a piece of text from the
code cell that draws it (its first PNG output is taken). Re-run after the notebooks' outputs are
regenerated (``make figures``), and check that the README's captions still say what each figure shows.
"""

import argparse
import base64
import io
import sys
from pathlib import Path

import nbformat
import numpy as np
from PIL import Image  # installed with matplotlib, which depends on it

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
OUT = ROOT / "docs" / "figures"
MIN_WIDTH = 720

# README figure -> (notebook, PNG output index or text from the drawing cell, what it shows)
FIGURES = {
    "part1": ("01_attention_as_soft_lookup.ipynb", "def attention_pool(", "attention pooling against average pooling"),
    "part2": ("08_transformer_encoder_decoder.ipynb", "source_text, target_text = valid_pairs[",
              "a trained Transformer's causal self-attention and cross-attention"),
    "part3": ("10_efficient_attention.ipynb", "memory_lengths = [",
              "peak memory of explicit and tiled attention; the output tensor as the floor shared by all"),
    "part4": ("14_a_small_language_model.ipynb", "memorisation measured against the base rate",
              "preference for training names over held-out real names against sampling temperature (1 = base rate)"),
}

# A figure of two panels side by side can be cut to one of them for the README, where the whole
# figure would be shown too small to read: "left" or "right" of the widest blank vertical gap in the
# middle of the image (the gutter between the panels).
PANELS = {"part2": "right", "part4": "right"}


def png_outputs(notebook_path: Path):
    """Yield (cell_index, png_bytes, first_line_of_the_cell) for every PNG output, in order."""
    notebook = nbformat.read(notebook_path, as_version=4)
    for cell_index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        first_line = next((line for line in cell.source.splitlines() if line.strip()), "")
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "image/png" in data:
                yield cell_index, base64.b64decode(data["image/png"]), first_line


def one_panel(png: bytes, side: str) -> bytes:
    """The part of a two-panel PNG ``side`` ("left" or "right") of the widest all-white column run
    in the middle 30-70 % of the image (the gutter between the panels)."""
    if side not in ("left", "right"):
        raise ValueError(f"a panel is 'left' or 'right', got {side!r}")
    image = Image.open(io.BytesIO(png))
    image.load()
    blank = (np.asarray(image.convert("L")) >= 250).all(axis=0)  # (width,): columns with no ink
    low, high = int(0.3 * image.width), int(0.7 * image.width)
    best, start = (0, 0), None
    for x in range(low, high + 1):
        if x < high and blank[x]:
            start = x if start is None else start
        elif start is not None:
            best = max(best, (x - start, start))
            start = None
    length, begin = best
    if length < 4:
        raise ValueError("no blank gutter between two panels in the middle of the figure")
    box = (0, 0, begin + 4, image.height) if side == "left" else (begin + length - 4, 0, image.width, image.height)
    out = io.BytesIO()
    image.crop(box).save(out, format="PNG", dpi=image.info.get("dpi", (110, 110)))
    return out.getvalue()


def readme_png(png: bytes, min_width: int = MIN_WIDTH, max_width: int | None = None) -> bytes:
    """The PNG at least ``min_width`` pixels wide (enlarged, aspect kept; never shrunk unless a
    ``max_width`` is given, for previews), as compact PNG bytes whose pHYs dpi follows the scale."""
    image = Image.open(io.BytesIO(png))
    image.load()
    dpi = float(image.info.get("dpi", (110, 110))[0])
    target = max(image.width, min_width) if max_width is None else min(max(image.width, min_width), max_width)
    if target != image.width:
        scale = target / image.width
        image = image.resize((target, round(image.height * scale)), Image.Resampling.LANCZOS)
        dpi *= scale
    if image.mode not in ("RGB", "RGBA", "P", "L"):
        image = image.convert("RGBA")
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True, dpi=(dpi, dpi))
    return out.getvalue()


def pick(notebook_path: Path, selector) -> bytes:
    """The PNG chosen by ``selector``: an output index, or text from the cell that draws it."""
    figures = list(png_outputs(notebook_path))
    where = f"notebooks/{notebook_path.name}"
    if not figures:
        raise ValueError(f"{where} has no PNG output (has it been executed?)")
    if isinstance(selector, int):
        if not -len(figures) <= selector < len(figures):
            raise IndexError(f"{where} has {len(figures)} PNG outputs, no index {selector}")
        return figures[selector][1]
    notebook = nbformat.read(notebook_path, as_version=4)
    for cell_index, png, _ in figures:
        if selector in notebook.cells[cell_index].source:
            return png
    raise ValueError(f"{where}: no code cell with a PNG output contains {selector!r}")


def export(name: str, notebook: str, selector, out_dir: Path = OUT, min_width: int = MIN_WIDTH,
           max_width: int | None = None) -> Path:
    path = NOTEBOOKS / notebook
    if not path.exists():
        raise FileNotFoundError(f"notebooks/{notebook} does not exist")
    png = pick(path, selector)
    if name in PANELS:
        png = one_panel(png, PANELS[name])
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{name}.png"
    target.write_bytes(readme_png(png, min_width, max_width))
    return target


def list_figures():
    for path in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")):
        print(path.name)
        for index, (cell, png, first_line) in enumerate(png_outputs(path)):
            image = Image.open(io.BytesIO(png))
            print(f"  [{index:2d}] cell {cell:3d}  {image.width}x{image.height}  {first_line[:70]}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--list", action="store_true", help="list every notebook's PNG outputs and exit")
    args = parser.parse_args(argv)
    if args.list:
        list_figures()
        return 0
    failed = False
    for name, (notebook, selector, caption) in FIGURES.items():
        try:
            target = export(name, notebook, selector)
        except (FileNotFoundError, ValueError, IndexError) as error:
            print(f"error: {name}: {error}", file=sys.stderr)
            failed = True
            continue
        width, height = Image.open(target).size
        print(f"{target.relative_to(ROOT)}: {width}x{height}, {target.stat().st_size // 1024} KiB "
              f"from {notebook} [{selector!r}] ({caption})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
