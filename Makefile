# Two commands for a fresh clone:
#   make lab    set up .venv (first time only) and open the series in JupyterLab
#   make test   set up .venv (first time only) and run the unit tests and every notebook (strict nbval)
#
# TORCH_SPEC picks the PyTorch build installed first, e.g. a CPU-only one:
#   make test TORCH_SPEC="torch==2.13.0"
#   make lab  TORCH_SPEC="torch --index-url https://download.pytorch.org/whl/cpu"
# (pyproject.toml then asks for torch>=2.5, which the build installed first already satisfies.)

PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: lab test test-portable test-seeds test-floor install notebooks lint benchmark figures clean

# Another CPU's arithmetic, on this machine: ATen's generic kernels instead of AVX2/AVX-512, MKL's
# bit-compatible code path and oneDNN limited to SSE4.1. Set before Python starts, so the notebook
# kernels inherit it.
PORTABLE_ENV := ATEN_CPU_CAPABILITY=default MKL_CBWR=COMPATIBLE ONEDNN_MAX_CPU_ISA=SSE41
# The tests run two notebooks at once, one PyTorch thread each (HELPERS_THREADS=1); the committed
# outputs come from helpers.setup()'s default of 2 threads, so every pass also checks that nothing
# compared depends on the thread count.
TEST_ENV := HELPERS_THREADS=1 OMP_WAIT_POLICY=PASSIVE

# Jupyter refuses to run as root unless told (containers, CI machines): tell it only then.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root)

# The series works offline: JupyterLab neither asks to fetch Jupyter news nor checks for updates
# (settings in tools/jupyterlab-overrides.json, copied where JupyterLab reads overrides).
LAB_SETTINGS := $(VENV)/share/jupyter/lab/settings
LAB_FLAGS := --LabApp.news_url= --LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate

lab: $(STAMP)
	mkdir -p $(LAB_SETTINGS)
	cp tools/jupyterlab-overrides.json $(LAB_SETTINGS)/overrides.json
	$(VENV)/bin/jupyter lab $(ROOT_FLAG) $(LAB_FLAGS) notebooks/01_attention_as_soft_lookup.ipynb

test: $(STAMP)
	env $(TEST_ENV) $(PY) -m pytest -n 2 --dist loadfile

# Every notebook again (strict nbval) under another CPU's arithmetic: what the tests compare
# exactly must not change, and every claim must still hold.
test-portable: $(STAMP)
	env $(PORTABLE_ENV) $(TEST_ENV) $(PY) -m pytest -n 2 --dist loadfile notebooks

# Every notebook again on seeds nobody chose (helpers.seeds: HELPERS_SEED_OFFSET shifts every seed
# of the series). The printed numbers change, so this is not strict nbval: every cell must run,
# every assert pass and every claim hold. SEED_OFFSET=k picks the offset (CI runs 1).
SEED_OFFSET ?= 1
test-seeds: $(STAMP)
	env OMP_WAIT_POLICY=PASSIVE $(PY) tools/run_notebooks.py --seed-offset $(SEED_OFFSET) --jobs 2

# The oldest PyTorch that pyproject.toml declares (torch>=2.5: enable_gqa in scaled_dot_product_attention
# arrived in 2.5), in its own environment, through the whole suite. Run it before a release. It
# downloads PyTorch's default build from the registry (CUDA wheels on Linux: several GB); NumPy 1.x
# because PyTorch 2.5 was built against it.
FLOOR_VENV ?= .venv-floor
FLOOR_SPEC ?= torch==2.5.1
test-floor:
	test -x $(FLOOR_VENV)/bin/python || $(PYTHON) -m venv $(FLOOR_VENV)
	$(FLOOR_VENV)/bin/python -m pip install "$(FLOOR_SPEC)" "numpy<2"
	$(FLOOR_VENV)/bin/python -m pip install -e ".[dev]" "numpy<2"
	env $(TEST_ENV) $(FLOOR_VENV)/bin/python -m pytest -n 2 --dist loadfile

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
	$(VENV)/bin/ruff check helpers tests solutions benchmarks tools notebooks

benchmark: $(STAMP)
	$(PY) -m benchmarks

figures: $(STAMP)
	$(PY) tools/export_figures.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis artifacts
