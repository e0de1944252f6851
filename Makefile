# Two entry points, as in the README: `make demo` and `make test`.
# Both create (or reuse) the virtual environment in .venv and install what
# they need; nothing else has to be installed beforehand but Python >= 3.11.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO_STAMP := $(VENV)/.installed-demo

.PHONY: demo test install docs benchmarks clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Everything, for the tests and the docs. Reinstalled whenever pyproject.toml
# changes. torch is pinned to 2.13.0 and installed first: on our machines that
# is a local CPU wheel, while any other spec pulls several GB of CUDA packages.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[all]"
	touch $(STAMP)

install: $(STAMP)

# The demo needs the core package and matplotlib only: no torch, so it also
# works where torch is unavailable or too large to install.
$(DEMO_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[plot]"
	touch $(DEMO_STAMP)

# The main job: balancing weights and the treatment effect on the LaLonde
# data shipped with the package (NSW treated vs CPS controls), printed next to
# the experimental benchmark and the naive difference.
demo: $(DEMO_STAMP)
	$(BIN)/weightstats balance

# The whole suite: tests, doctests and user-guide pages (in parallel; the
# slow-marked tests include building the wheel and running it in a fresh
# venv), the kernel tests once more as plain Python, then the docs with
# warnings as errors.
# Two pytest workers already fill the two cores, so BLAS/OpenMP/torch run
# single-threaded inside them: oversubscribed threads made small torch
# models several times slower. (Tests of n_jobs set numba threads explicitly.)
# The notebooks run once, inside the docs build, which renders them with their
# outputs and fails on any cell error (docs/conf.py); pytest no longer runs
# them (nbmake) as well. Together they take about 10 minutes one after the
# other on a busy 2-core machine: under pytest -n 2 that was about 5 minutes
# of the suite, and the docs build now runs them two at a time in about 5.5,
# so the suite takes about as long as before instead of 5 minutes longer.
test: install
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 \
	$(BIN)/python -m pytest -n 2 --durations=25 tests weightstats docs/user_guide
	NUMBA_DISABLE_JIT=1 $(BIN)/python -m pytest -q -m kernel tests
	rm -rf docs/_build docs/generated docs/auto_examples docs/notebooks
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 \
	$(BIN)/sphinx-build -j 2 -W --keep-going -b html -q docs docs/_build/html

docs: install
	$(BIN)/sphinx-build -j 2 -W --keep-going -b html docs docs/_build/html

benchmarks: install
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) docs/_build docs/generated docs/auto_examples docs/notebooks
