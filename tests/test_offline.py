"""Offline by construction: nothing a notebook runs may reach for the network.

Two checks:

- Statically, with ``ast``: the code cells of ``notebooks/*.ipynb`` and every module in
  ``helpers/``, ``solutions/`` and ``benchmarks/`` import no downloader (``urllib.request``,
  ``requests``, ``torchvision.datasets``, ``torch.hub``, ``huggingface_hub``, ...), call none
  through an attribute (``torch.hub.load(...)``, ``sklearn.datasets.fetch_openml(...)``), pass no
  URL to a call, and run no shell or ``%pip`` line.
- At run time: importing every ``helpers`` and ``solutions`` module in a fresh interpreter loads
  no downloader that the libraries the series stands on (torch, numpy, matplotlib, ipywidgets,
  scikit-learn's bundled data) do not load by themselves. (``import torch`` alone loads
  ``torch.hub`` and ``urllib.request``; that is not the series reaching for the network.)

CI also runs the whole suite in a network namespace without a network
(``tools/offline.sh make test``, from ``.ci/run``).
"""

import ast
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("helpers", "solutions", "benchmarks")

# Modules (and everything below them) that download: importing one is a finding.
DOWNLOADERS = (
    "urllib.request", "urllib3", "http.client", "requests", "httpx", "aiohttp", "ftplib", "webbrowser",
    "pooch", "gdown", "wget", "torch.hub", "torch.utils.model_zoo", "torchvision.datasets",
    "torchvision.models", "torchtext.datasets", "torchaudio.datasets", "huggingface_hub", "datasets",
    "transformers", "timm", "tensorflow_datasets", "keras.datasets", "tensorflow.keras.datasets",
)
# Name prefixes that download even though their module does not (scikit-learn's fetch_* functions;
# its load_* functions read files shipped inside the package and are allowed).
DOWNLOADER_PREFIXES = ("sklearn.datasets.fetch_",)
# Lines of a notebook cell that are not Python and can reach the network.
SHELL_LINE = re.compile(r"^\s*(!|%pip\b|%conda\b|%%bash\b|%%sh\b|%%script\b|%system\b|%sx\b)")
URL = re.compile(r"^\s*(https?|ftp)://", re.IGNORECASE)


def is_downloader(name: str) -> bool:
    return (any(name == module or name.startswith(module + ".") for module in DOWNLOADERS)
            or name.startswith(DOWNLOADER_PREFIXES))


def _dotted(node):
    """``a.b.c`` for an attribute chain on a name, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return ".".join([node.id, *reversed(parts)])
    return None


def find_downloads(source: str, where: str = "<source>", locate=None) -> list[str]:
    """Every way ``source`` reaches for the network that this test knows of, as messages.

    ``locate(line)`` names a line in the messages (default: ``where:line``).
    """
    found = []  # (line, what)
    lines = source.splitlines()
    for number, line in enumerate(lines, 1):
        if SHELL_LINE.match(line):
            found.append((number, f"shell or package-manager line: {line.strip()}"))
    # IPython magics and shell lines are not Python; blank them out (keeping line numbers).
    python = "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in lines)
    tree = ast.parse(python, filename=where)
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            child.parent = node

    aliases = {}  # local name -> the full dotted name it stands for
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                local = alias.asname or alias.name.split(".")[0]
                aliases[local] = alias.name if alias.asname else local
                if is_downloader(alias.name):
                    found.append((node.lineno, f"import {alias.name}"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                aliases[alias.asname or alias.name] = full
                if is_downloader(full):
                    found.append((node.lineno, f"from {node.module} import {alias.name} ({full})"))
    for node in ast.walk(tree):
        # The outermost attribute of a chain (torch.hub.load), resolved through the imports.
        if isinstance(node, ast.Attribute) and not isinstance(node.parent, ast.Attribute):
            dotted = _dotted(node)
            if dotted:
                head, _, rest = dotted.partition(".")
                full = f"{aliases.get(head, head)}.{rest}"
                if is_downloader(full):
                    found.append((node.lineno, f"uses {full}"))
        if isinstance(node, ast.Call):
            function = _dotted(node.func) or ""
            if function in ("__import__", "importlib.import_module", "import_module") and node.args:
                first = node.args[0]
                if isinstance(first, ast.Constant) and isinstance(first.value, str) and is_downloader(first.value):
                    found.append((node.lineno, f"imports {first.value} dynamically"))
            if function != "print":
                for argument in [*node.args, *(keyword.value for keyword in node.keywords)]:
                    if isinstance(argument, ast.Constant) and isinstance(argument.value, str) \
                            and URL.match(argument.value):
                        found.append((node.lineno, f"passes a URL to {function or 'a call'}()"))
    locate = locate or (lambda line: f"{where}:{line}")
    return [f"{locate(line)}: {what}" for line, what in sorted(set(found))]


def notebook_source(path: Path):
    """A notebook's code cells as one source (imports carry across cells), and a function that
    names the cell and line of a line of it."""
    starts, code, line = [], [], 1
    for index, cell in enumerate(nbformat.read(path, as_version=4).cells):
        if cell.cell_type == "code":
            starts.append((line, index))
            code.append(cell.source)
            line += len(cell.source.splitlines()) + 1

    def locate(number):
        start, index = max((s, i) for s, i in starts if s <= number)
        return f"notebooks/{path.name}, cell {index}, line {number - start + 1}"

    return "\n\n".join(code), locate


def _sources():
    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
        yield pytest.param(f"notebooks/{notebook.name}", notebook, id=notebook.stem)
    for package in PACKAGES:
        for module in sorted((ROOT / package).rglob("*.py")):
            name = module.relative_to(ROOT).as_posix()
            yield pytest.param(name, module, id=name)


SOURCES = list(_sources())


def test_there_is_code_to_check():
    names = [param.values[0] for param in SOURCES]
    assert any(name.startswith("notebooks/") for name in names)
    assert any(name.startswith("helpers/") for name in names)


@pytest.mark.parametrize("where, path", SOURCES)
def test_no_downloader_in_the_source(where, path):
    if path.suffix == ".ipynb":
        source, locate = notebook_source(path)
        findings = find_downloads(source, where, locate)
    else:
        findings = find_downloads(path.read_text(encoding="utf-8"), where)
    assert not findings, "reaches for the network:\n" + "\n".join(findings)


# Every one of these must be caught: the static check can fail.
BAD_SNIPPETS = {
    "import urllib.request": "urllib.request",
    "from urllib.request import urlretrieve": "urllib.request",
    "from urllib import request": "urllib.request",
    "import requests\nrequests.get('x')": "requests",
    "import httpx as h": "httpx",
    "import torch\ntorch.hub.load('pytorch/vision', 'resnet18')": "torch.hub",
    "import torch as T\nmodel = T.hub.load('a', 'b')": "torch.hub",
    "from torch import hub": "torch.hub",
    "from torchvision.datasets import MNIST": "torchvision.datasets",
    "import torchvision.datasets as d": "torchvision.datasets",
    "from huggingface_hub import hf_hub_download": "huggingface_hub",
    "from datasets import load_dataset": "datasets",
    "from sklearn.datasets import fetch_openml": "sklearn.datasets.fetch_openml",
    "import sklearn.datasets\nsklearn.datasets.fetch_20newsgroups()": "sklearn.datasets.fetch_20newsgroups",
    "from sklearn import datasets\ndatasets.fetch_california_housing()": "sklearn.datasets.fetch_california_housing",
    "import importlib\nimportlib.import_module('requests')": "requests",
    "__import__('urllib.request')": "urllib.request",
    "import torch\ntorch.load('https://example.org/weights.pt')": "URL",
    "!pip install transformers": "shell",
    "%pip install datasets": "shell",
    "!wget https://example.org/data.zip": "shell",
}

GOOD_SNIPPETS = [
    "import torch\nimport torch.nn.functional as F\nx = torch.hub_like = 1",
    "from sklearn.datasets import load_digits\ndigits = load_digits()",
    "import urllib.parse\nurllib.parse.quote('a b')",
    "import helpers\ndevice = helpers.setup()\n%timeit sum(range(10))",
    "print('see https://arxiv.org/abs/1706.03762')",
    "from helpers import datasets_of_tokens",
    "import matplotlib.pyplot as plt\nplt.plot([0, 1])",
]


@pytest.mark.parametrize("snippet, expected", BAD_SNIPPETS.items(), ids=list(range(len(BAD_SNIPPETS))))
def test_the_static_check_catches(snippet, expected):
    findings = find_downloads(snippet)
    assert findings, f"not caught: {snippet!r}"
    assert any(expected in finding for finding in findings), findings


@pytest.mark.parametrize("snippet", GOOD_SNIPPETS)
def test_the_static_check_allows(snippet):
    assert find_downloads(snippet) == []


def test_findings_in_a_notebook_name_the_cell(tmp_path):
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# A"),
        nbformat.v4.new_code_cell("import torch as T\nx = 1"),
        nbformat.v4.new_markdown_cell("text"),
        nbformat.v4.new_code_cell("y = 2\nmodel = T.hub.load('a', 'b')"),
    ])
    nbformat.write(notebook, tmp_path / "bad.ipynb")
    source, locate = notebook_source(tmp_path / "bad.ipynb")
    assert find_downloads(source, "bad", locate) == ["notebooks/bad.ipynb, cell 3, line 2: uses torch.hub.load"]


# --- at run time ---------------------------------------------------------------------------------

# Runs in a fresh interpreter: import the libraries the series stands on, note which downloaders
# they load, then import every helpers/solutions module and report the downloaders added.
_PROBE = textwrap.dedent("""
    import importlib, json, pkgutil, sys
    sys.path.insert(0, {root!r})
    DOWNLOADERS, PREFIXES = {downloaders!r}, {prefixes!r}

    def downloaders():
        return {{name for name in sys.modules
                if any(name == d or name.startswith(d + ".") for d in DOWNLOADERS) or name.startswith(PREFIXES)}}

    for name in {baseline!r}:
        importlib.import_module(name)
    baseline = downloaders()
    added = {{}}
    for package in {packages!r}:
        root = importlib.import_module(package)
        names = [package] + [info.name for info in pkgutil.walk_packages(root.__path__, package + ".")]
        for name in names:
            before = downloaders()
            importlib.import_module(name)
            new = sorted(downloaders() - before - baseline)
            if new:
                added[name] = new
    print(json.dumps({{"baseline": sorted(baseline), "added": added}}))
""")


# What the notebooks import besides helpers; whatever these load is not the series' doing.
LIBRARIES = ("numpy", "torch", "matplotlib.pyplot", "ipywidgets", "sklearn.datasets")


def _probe(packages, extra_path=None, baseline=LIBRARIES):
    code = _PROBE.format(root=str(ROOT), downloaders=DOWNLOADERS, prefixes=DOWNLOADER_PREFIXES,
                         packages=tuple(packages), baseline=tuple(baseline))
    if extra_path is not None:
        code = f"import sys; sys.path.insert(0, {str(extra_path)!r})\n" + code
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_importing_helpers_and_solutions_loads_no_downloader():
    report = _probe(["helpers", "solutions"])
    assert not report["added"], f"these modules load a downloader: {report['added']}"


def test_the_run_time_check_catches_a_downloader(tmp_path):
    package = tmp_path / "leaky_helpers"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "fine.py").write_text("import json\n")
    (package / "leaky.py").write_text("import requests  # a downloader hidden in a helper\n")
    report = _probe(["leaky_helpers"], extra_path=tmp_path, baseline=())
    assert list(report["added"]) == ["leaky_helpers.leaky"], report
    assert "requests" in report["added"]["leaky_helpers.leaky"]
