# a2dkit: the two Quickstart commands are `make tutorial` and `make test`.
# They install into and run from the project's own virtual environment, .venv (created with
# `python3 -m venv`), with the exact versions of constraints.txt. To use another interpreter
# (an existing environment): make PYTHON=python3 test-unit
VENV ?= .venv
PYTHON ?= $(VENV)/bin/python
PIP := $(PYTHON) -m pip
export HF_HUB_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export A2DKIT_SCALE ?= smoke
RUNS ?= runs

.PHONY: setup system-deps assets tutorial book lint test test-unit test-notebooks test-book

$(VENV)/bin/python:  ## the project environment (never the system interpreter)
	python3 -m venv $(VENV)

setup: $(if $(filter $(VENV)/bin/python,$(PYTHON)),$(VENV)/bin/python)  ## a2dkit + exact pins
	$(PIP) install -q -c constraints.txt -e ".[dev]"

system-deps:  ## Debian packages of the system tests (root or sudo): Slurm + munge, headless Chromium
	bash .ci/install_slurm.sh
	bash .ci/install_chromium.sh

assets: setup  ## build the offline tiny assets: corpus, tokenizer, tiny AR Qwen3
	$(PYTHON) -m a2dkit.cli.tiny --output_dir $(RUNS)/tiny-ar-qwen3

tutorial: assets  ## the main job: convert, execute every chapter at $(A2DKIT_SCALE), build the book
	$(PYTHON) -m a2dkit.convert --model_name_or_path $(RUNS)/tiny-ar-qwen3 \
		--output_dir $(RUNS)/a2d/tiny-qwen3 --overwrite True
	@echo "converted model: $(RUNS)/a2d/tiny-qwen3 (manifest: $(RUNS)/a2d/tiny-qwen3/a2d_manifest.json)"
	$(PYTHON) book/build.py

book: setup  ## the strict offline book: every chapter executed at $(A2DKIT_SCALE); prints the HTML path
	$(PYTHON) book/build.py

lint:
	$(PYTHON) -m ruff check .

test: setup system-deps lint test-unit test-notebooks test-book  ## the whole suite, offline, on CPU

test-unit:  ## library, CLI, Slurm-cluster and lm-eval tests
	$(PYTHON) -m pytest --ignore=tests/test_book.py

test-notebooks:  ## every notebook top to bottom at smoke under nbval (per-notebook durations)
	@total=0; for nb in notebooks/[0-9][0-9]_*.ipynb; do \
		start=$$(date +%s); \
		$(PYTHON) -m pytest -q -p no:cacheprovider --nbval-lax "$$nb" || exit 1; \
		took=$$(( $$(date +%s) - start )); total=$$(( total + took )); \
		echo "[nbval] $$nb: $$took s"; \
	done; echo "[nbval] all notebooks: $$total s (budget 1200 s; bench/bench_notebooks.py)"

test-book:  ## strict book build (unless a fresh one exists), checked in headless Chromium
	$(PYTHON) -m pytest tests/test_book.py
