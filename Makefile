# Two commands for a fresh clone:
#   make lab    set up .venv (first time only) and open the series in JupyterLab
#   make test   set up .venv (first time only) and run the unit tests and every notebook (strict nbval)
#
# TORCH_SPEC picks the PyTorch build installed first, e.g. a CPU-only one:
#   make test TORCH_SPEC="torch==2.13.0"
#   make lab  TORCH_SPEC="torch --index-url https://download.pytorch.org/whl/cpu"
# (pyproject.toml then asks for torch>=2.2, which the build installed first already satisfies.)

PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: lab test install notebooks lint benchmark figures clean

# Jupyter refuses to run as root unless told (containers, CI machines): tell it only then.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root)

lab: $(STAMP)
	$(VENV)/bin/jupyter lab $(ROOT_FLAG) notebooks/01_attention_as_soft_lookup.ipynb

test: $(STAMP)
	$(PY) -m pytest -n 2 --dist loadfile

install: $(STAMP)

# Torch goes in first, on its own, so that the installs after it keep the build chosen here.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install $(TORCH_SPEC)
	$(PY) -m pip install -e ".[dev]"
	touch $(STAMP)

# Re-execute every notebook in place (fresh kernel, top to bottom); never edit outputs by hand.
notebooks: $(STAMP)
	$(PY) tools/run_notebooks.py

lint: $(STAMP)
	$(VENV)/bin/ruff check helpers tests solutions benchmarks tools

benchmark: $(STAMP)
	$(PY) -m benchmarks

figures: $(STAMP)
	$(PY) tools/export_figures.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis artifacts
