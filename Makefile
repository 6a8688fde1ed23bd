# `make demo` runs the main job, `make test` the tests; each sets itself up on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: demo test bench lint graphviz mpi clean

# PyTorch comes in for the parity tests, which compare every layer, loss and optimizer with it. pip takes
# it from its configured indexes; set TORCH_INDEX to an index of CPU builds to avoid a CUDA download.
TORCH ?= torch==2.13.0
TORCH_INDEX ?=

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,viz,train,mpi,parity]' '$(TORCH)' $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX))
	touch $@

# Graphviz's `dot` renders the pictures; install it where we may, else say what to install.
graphviz:
	@command -v dot >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq graphviz >/dev/null; \
	  else \
	    echo "Graphviz's 'dot' is missing: install it with 'sudo apt-get install graphviz'" \
	         "(Debian/Ubuntu), 'brew install graphviz' (macOS) or 'conda install graphviz'"; exit 1; \
	  fi; }

# Open MPI's `mpirun` starts the data-parallel tests' ranks; mpi4py comes with the venv (the mpi extra),
# from a wheel, or built against this MPI. Installed where we may, else those tests skip and say why.
mpi:
	@command -v mpirun >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openmpi-bin libopenmpi-dev >/dev/null; \
	  else \
	    echo "note: Open MPI's 'mpirun' is missing, so the data-parallel tests will be skipped: install it with" \
	         "'sudo apt-get install openmpi-bin libopenmpi-dev' (Debian/Ubuntu) or 'brew install open-mpi' (macOS)"; \
	  fi; }

demo: $(VENV)/.installed graphviz
	$(PY) -m tinygrad_rnn demo

test: mpi $(VENV)/.installed graphviz
	$(PY) -m pytest -q

bench: $(VENV)/.installed
	$(PY) bench/run.py

lint: $(VENV)/.installed
	$(PY) -m ruff check tinygrad_rnn viz tests examples bench

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache out
