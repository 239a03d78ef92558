"""The project's one dependency list lives in pyproject.toml; environment.yml only points at it."""

import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def test_environment_yml_parses_and_installs_the_pyproject():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "conda-forge" in env["channels"]
    deps = env["dependencies"]
    assert "python=3.11" in deps and "pip" in deps
    pip_section = next(d["pip"] for d in deps if isinstance(d, dict) and "pip" in d)
    assert pip_section == ['-e ".[dev]"'] or pip_section == ["-e .[dev]"], pip_section
    # No package is listed twice: conda installs only Python and pip, pyproject the rest.
    assert [d for d in deps if isinstance(d, str)] == ["python=3.11", "pip"]


def test_pyproject_declares_the_runtime_and_dev_dependencies():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {d.split(">")[0].split("=")[0].split("<")[0].strip() for d in project["dependencies"]}
    assert {"torch", "numpy", "matplotlib"} <= names
    assert not any("==" in d for d in project["dependencies"]), "ranges, not pins"
    dev = {d.split(">")[0].split("=")[0].strip() for d in project["optional-dependencies"]["dev"]}
    assert {"pytest", "nbval", "hypothesis", "ruff", "jupyterlab", "ipykernel"} <= dev


def test_make_lab_asks_for_no_news_and_no_updates():
    """The series is meant to work offline: `make lab` must not prompt to fetch Jupyter news."""
    import json
    import subprocess

    overrides = json.loads((ROOT / "tools" / "jupyterlab-overrides.json").read_text())
    notification = overrides["@jupyterlab/apputils-extension:notification"]
    assert notification == {"fetchNews": "false", "checkForUpdates": False}
    commands = subprocess.run(["make", "-n", "-W", "pyproject.toml", "lab", "VENV=/nonexistent-venv"], cwd=ROOT,
                              capture_output=True, text=True, check=True).stdout
    assert "cp tools/jupyterlab-overrides.json /nonexistent-venv/share/jupyter/lab/settings/overrides.json" in commands
    assert "--LabApp.news_url= " in commands and "NeverCheckForUpdate" in commands


def test_the_declared_torch_floor_is_the_one_make_test_floor_checks_and_the_readme_states():
    """pyproject's torch>=X.Y, the Makefile's FLOOR_SPEC (torch==X.Y.*) and the README agree."""
    import re

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    (torch_dep,) = [d for d in project["dependencies"] if d.startswith("torch")]
    floor = re.fullmatch(r"torch>=(\d+\.\d+)", torch_dep.split("#")[0].strip()).group(1)
    spec = re.search(r"^FLOOR_SPEC \?= torch==(\d+\.\d+)\.\d+$", (ROOT / "Makefile").read_text(), re.M)
    assert spec and spec.group(1) == floor, f"Makefile FLOOR_SPEC does not check the declared floor {floor}"
    assert f"PyTorch {floor}" in (ROOT / "README.md").read_text(), f"README.md does not state the floor {floor}"
