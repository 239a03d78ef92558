"""What a reader on a code-hosting site, or strict nbval, would trip over in a committed notebook."""

import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("[0-9][0-9]_*.ipynb"))
MACHINE_PATH = re.compile(r"(/tmp/|/root/|/home/\w+|/work/|site-packages|[A-Z]:\\\\Users\\\\)")
ADDRESS = re.compile(r"0x[0-9a-fA-F]{6,}")


def outputs_text(output):
    if "text" in output:
        text = output["text"]
    else:
        text = output.get("data", {}).get("text/plain", "")
    return "".join(text) if isinstance(text, list) else str(text)


def code_cells(notebook):
    return [c for c in notebook["cells"] if c["cell_type"] == "code" and "".join(c["source"]).strip()]


def test_there_are_notebooks():
    assert NOTEBOOKS, "no notebooks found under notebooks/"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_hygiene(path):
    notebook = json.loads(path.read_text(encoding="utf-8"))
    assert notebook["metadata"]["kernelspec"]["name"] == "python3"
    cells = code_cells(notebook)
    counts = [c["execution_count"] for c in cells]
    assert counts == list(range(1, len(cells) + 1)), "run top to bottom in a fresh kernel (make notebooks)"
    figures = 0
    for index, cell in enumerate(cells, start=1):
        for output in cell["outputs"]:
            where = f"{path.name} cell [{index}]"
            assert output["output_type"] != "error", f"{where}: error output"
            assert not (output["output_type"] == "stream" and output["name"] == "stderr"), f"{where}: stderr output"
            data = output.get("data", {})
            assert "image/svg+xml" not in data and "application/pdf" not in data, f"{where}: use PNG figures"
            figures += "image/png" in data
            text = outputs_text(output)
            assert not MACHINE_PATH.search(text), f"{where}: machine path {MACHINE_PATH.search(text).group(0)}"
            assert not ADDRESS.search(text), f"{where}: memory address in output"
    assert figures >= 1, "at least one figure"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_shape(path):
    """Title first, a seeded setup as the first code cell, exercises and a way on at the end."""
    notebook = json.loads(path.read_text(encoding="utf-8"))
    first = "".join(notebook["cells"][0]["source"])
    assert notebook["cells"][0]["cell_type"] == "markdown" and first.startswith("# "), "starts with a title"
    assert "helpers.setup(" in "".join(code_cells(notebook)[0]["source"]), "first code cell calls helpers.setup()"
    text = "\n".join("".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "markdown")
    assert re.search(r"(?im)^#+ .*exercises", text), "has an Exercises section"
    assert re.search(r"(?im)^#+ .*summary", text), "has a Summary section"
    source = "\n".join("".join(c["source"]) for c in code_cells(notebook))
    assert "helpers.exercises" in source, "exercises come with self-checks from helpers.exercises"
