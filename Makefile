# a2dkit: the two Quickstart commands are `make tutorial` and `make test`.
PYTHON ?= python3
PIP := $(PYTHON) -m pip
export HF_HUB_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export A2DKIT_SCALE ?= smoke
RUNS ?= runs

.PHONY: setup tutorial test lint assets

setup:  ## install a2dkit and its pinned dependencies (torch constrained by constraints.txt)
	$(PIP) install -q -c constraints.txt -e ".[dev]"

assets: setup  ## build the offline tiny assets: corpus, tokenizer, tiny AR Qwen3
	$(PYTHON) -m a2dkit.tiny --output_dir $(RUNS)/tiny-ar-qwen3

tutorial: assets  ## the main job at the small default scale
	$(PYTHON) -m a2dkit.convert --model_name_or_path $(RUNS)/tiny-ar-qwen3 \
		--output_dir $(RUNS)/a2d/tiny-qwen3 --overwrite True
	@echo "converted model: $(RUNS)/a2d/tiny-qwen3 (manifest: $(RUNS)/a2d/tiny-qwen3/a2d_manifest.json)"

lint:
	ruff check .

test: setup  ## the whole test suite, offline, on CPU
	ruff check .
	$(PYTHON) -m pytest
