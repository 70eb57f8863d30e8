# One venv, created by `make install`; every other target runs inside it.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU build of torch that lies on this machine's disk; installed first so that nothing
# below pulls a second, multi-GB CUDA build (docs/design.md#install-torch-first). On GPU machines:
#   make install TORCH_SPEC="torch==..." with your CUDA index configured for pip.
TORCH_SPEC ?= torch==2.13.0
# The versions the tests passed with (constraints.txt says how to refresh it); CI installs through
# this target too. `make install CONSTRAINTS=` resolves without it.
CONSTRAINTS ?= constraints.txt

.PHONY: install test test-fast lint docs train report bench clean

# .[dev]: the base install and every extra (pyproject.toml), with the test and lint tools
install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml $(CONSTRAINTS)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet $(if $(CONSTRAINTS),-c $(CONSTRAINTS)) -e ".[dev]"
	$(PY) -m pip check
	touch $@

# -n auto: the tests run on every core (pytest-xdist; each worker's runs get their share of the
# threads, tests/conftest.py), at most 4 workers, since each holds torch and a run in memory.
# --dist worksteal: a worker that runs out of tests takes some of another's.
PYTEST_PARALLEL ?= -n auto --maxprocesses 4 --dist worksteal

test: install
	$(PY) -m pytest -q $(PYTEST_PARALLEL)

# Everything but the tests marked slow (pyproject.toml's markers), e.g. the wheel build and install.
test-fast: install
	$(PY) -m pytest -q -m "not slow" $(PYTEST_PARALLEL)

# The same checks as the pre-commit hooks (.pre-commit-config.yaml) and .ci/run; `ruff format .` fixes
# what the second one reports.
lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

# The docs site (mkdocs.yml) into site/; --strict: a broken link, anchor or a page missing from the nav
# fails. It builds offline in seconds. `$(PY) -m mkdocs serve` previews it while editing.
# NO_MKDOCS_2_WARNING: Material 9.7+ prints a banner about MkDocs 2 on every build; it says nothing about ours.
docs: install
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict

train: install
	$(PY) train.py

clean:
	rm -rf $(VENV) outputs multirun wandb .pytest_cache site

report: install
	$(PY) -m bertlab.cli report $(SWEEP)

# Speed vs transformers.Trainer / run_glue.py defaults / a bare loop (python -m scripts.bench; docs/speed.md).
# BENCH_ARGS=--quick for the small version (~5-10 min); the full one takes ~15-30 min on 2 CPU cores.
bench: install
	$(PY) -m pip install --quiet -e ".[bench]"
	$(PY) -m scripts.bench $(BENCH_ARGS)
