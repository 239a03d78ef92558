"""Finding your way: links between the notebooks, the glossary and the README resolve, each
notebook says where it sits in the series (previous/next), and the README's figures can be made.

Offline: only relative links are checked (web links are not fetched).
"""

import importlib.util
import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
GLOSSARY = ROOT / "docs" / "glossary.md"
LAST = max(int(path.name[:2]) for path in NOTEBOOKS)  # the series' last notebook so far

LINK = re.compile(r"\[(?P<text>[^\]]*)\]\((?P<target><[^>]+>|[^)\s]+)(?:\s+\"[^\"]*\")?\)")
HTML_SOURCE = re.compile(r"<(?:img|a)\s[^>]*(?:src|href)=\"(?P<target>[^\"]+)\"")


def links(markdown: str) -> list[str]:
    """The targets of markdown links and images, and of <img src> / <a href>, in order."""
    found = [(m.start(), m.group("target").strip("<>")) for m in LINK.finditer(markdown)]
    found += [(m.start(), m.group("target")) for m in HTML_SOURCE.finditer(markdown)]
    return [target for _, target in sorted(found)]


def local(target: str) -> str | None:
    """The file part of a relative link, or None for web links, mail and in-page anchors."""
    if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE) or target.startswith("#"):
        return None
    return target.split("#")[0].split("?")[0] or None


def broken(markdown: str, base: Path) -> list[str]:
    return [target for target in links(markdown) if local(target) and not (base / local(target)).exists()]


def number(target: str) -> int | None:
    match = re.match(r"(?:.*/)?(\d\d)_[a-z0-9_]+\.ipynb$", local(target) or "")
    return int(match.group(1)) if match else None


def _notebook_params():
    return [pytest.param(path, id=path.stem) for path in NOTEBOOKS]


# --- the glossary --------------------------------------------------------------------------------

def test_glossary_links_resolve():
    text = GLOSSARY.read_text(encoding="utf-8")
    targets = [target for target in links(text) if local(target)]
    assert any(number(target) for target in targets), "the glossary links no notebook"
    missing = broken(text, GLOSSARY.parent)
    assert not missing, f"docs/glossary.md links to files that do not exist: {sorted(set(missing))}"


def test_every_glossary_row_points_to_a_notebook():
    rows = [line for line in GLOSSARY.read_text(encoding="utf-8").splitlines()
            if line.startswith("| ") and not line.startswith(("| English", "|---"))]
    assert len(rows) >= 30
    for row in rows:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        assert len(cells) == 4, f"expected English | 中文 | notebook | meaning: {row}"
        english, chinese, where, _ = cells
        # Chinese characters, or a term the source itself writes in English (marked ◆)
        assert re.search(r"[\u4e00-\u9fff]|◆", chinese), f"no Chinese term: {row}"
        assert any(number(target) for target in links(where)), f"{english}: no notebook in {where!r}"


def test_glossary_covers_every_notebook():
    linked = {number(target) for target in links(GLOSSARY.read_text(encoding="utf-8"))} - {None}
    assert linked == set(range(1, LAST + 1)), f"notebooks with no glossary term: {set(range(1, LAST + 1)) - linked}"


@pytest.mark.parametrize("term", ["自注意力机制", "多头注意力机制", "编码器", "解码器", "位置编码",
                                  "缩放点积注意力", "加性注意力", "掩码", "query、key、value"])
def test_glossary_has_the_core_terms(term):
    assert term in GLOSSARY.read_text(encoding="utf-8")


# --- the notebooks -------------------------------------------------------------------------------

def _cells(path):
    return nbformat.read(path, as_version=4).cells


@pytest.mark.parametrize("path", _notebook_params())
def test_first_cell_says_where_the_notebook_sits(path):
    """Title, then Previous: and Next: links to the neighbouring notebooks (01's previous is the
    syllabus), every link in the cell pointing to a file that exists."""
    cell = _cells(path)[0]
    assert cell.cell_type == "markdown", f"{path.name}: the first cell is not markdown"
    nn = int(path.name[:2])
    assert re.match(rf"#\s+{nn:02d}\b", cell.source), f"{path.name}: the first line is not '# {nn:02d} · Title'"
    missing = broken(cell.source, path.parent)
    assert not missing, f"{path.name}: links to files that do not exist: {missing}"

    previous = re.search(r"Previous:\s*(\[[^\]]*\]\([^)]*\))", cell.source)
    following = re.search(r"Next:\s*(\[[^\]]*\]\([^)]*\))", cell.source)
    assert previous, f"{path.name}: no 'Previous: [..](..)' link in the first cell"
    if nn > 1:
        assert number(links(previous.group(1))[0]) == nn - 1, f"{path.name}: Previous should be {nn - 1:02d}"
    if nn < LAST:
        assert following, f"{path.name}: no 'Next: [..](..)' link in the first cell"
        assert number(links(following.group(1))[0]) == nn + 1, f"{path.name}: Next should be {nn + 1:02d}"


@pytest.mark.parametrize("path", _notebook_params())
def test_last_cell_links_onward(path):
    cell = _cells(path)[-1]
    nn = int(path.name[:2])
    assert cell.cell_type == "markdown", f"{path.name}: the last cell should be markdown linking onward"
    targets = [target for target in links(cell.source) if local(target)]
    assert targets, f"{path.name}: the last cell links nowhere"
    if nn < LAST:
        assert nn + 1 in [number(target) for target in targets], f"{path.name}: the last cell skips {nn + 1:02d}"
    missing = broken(cell.source, path.parent)
    assert not missing, f"{path.name}: the last cell links to files that do not exist: {missing}"


@pytest.mark.parametrize("path", _notebook_params())
def test_every_relative_link_in_the_notebook_resolves(path):
    missing = [(index, target) for index, cell in enumerate(_cells(path)) if cell.cell_type == "markdown"
               for target in broken(cell.source, path.parent)]
    assert not missing, f"{path.name}: (cell, link) pairs to files that do not exist: {missing}"


def test_notebook_01_links_the_glossary():
    first = ROOT / "notebooks" / "01_attention_as_soft_lookup.ipynb"
    if not first.exists():
        pytest.skip("notebook 01 not written yet")
    assert "../docs/glossary.md" in [local(t) for t in links(_cells(first)[0].source)]


def test_readme_links_resolve_and_name_the_glossary():
    readme = ROOT / "README.md"
    text = readme.read_text(encoding="utf-8")
    assert not broken(text, ROOT), f"README.md links to files that do not exist: {broken(text, ROOT)}"
    assert "docs/glossary.md" in [local(target) for target in links(text)], "README.md does not link the glossary"


# --- the link checker itself can fail -------------------------------------------------------------

def test_the_link_checks_catch_mistakes(tmp_path):
    (tmp_path / "02_b.ipynb").write_text("{}")
    markdown = ("# 01 · A\nPrevious: [x](../README.md) · Next: [02](02_b.ipynb)\n"
                "[gone](03_c.ipynb) ![figure](figures/none.png) <img src=\"nope.png\"> "
                "[web](https://example.org/x.ipynb) [anchor](#top) [ok](02_b.ipynb#section)")
    assert broken(markdown, tmp_path) == ["../README.md", "03_c.ipynb", "figures/none.png", "nope.png"]
    assert number("02_b.ipynb") == 2 and number("../notebooks/11_vision_transformer.ipynb") == 11
    assert number("../README.md") is None


# --- the README's figures ------------------------------------------------------------------------

def _export_figures_module():
    spec = importlib.util.spec_from_file_location("export_figures", ROOT / "tools" / "export_figures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_export_figures_writes_readable_pngs(tmp_path):
    """The README's figures come out at least MIN_WIDTH (720 px) wide, so their text stays readable."""
    export_figures = _export_figures_module()
    assert set(export_figures.FIGURES) == {"part1", "part2", "part3", "part4"}
    done = 0
    for name, (notebook, selector, _) in export_figures.FIGURES.items():
        if not (ROOT / "notebooks" / notebook).exists():
            continue
        target = export_figures.export(name, notebook, selector, out_dir=tmp_path)
        data = target.read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n")
        width = int.from_bytes(data[16:20], "big")
        assert width >= export_figures.MIN_WIDTH, f"{name}: {width} px is narrower than {export_figures.MIN_WIDTH}"
        done += 1
    assert done, "no notebook named in tools/export_figures.py exists"
    with pytest.raises(IndexError, match="no index 999"):
        export_figures.export("bad", "01_attention_as_soft_lookup.ipynb", 999, out_dir=tmp_path)
    with pytest.raises(ValueError, match="no code cell"):
        export_figures.export("bad", "01_attention_as_soft_lookup.ipynb", "text in no cell", out_dir=tmp_path)
