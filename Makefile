# Everything a fresh machine needs (Python, gcc and apt are assumed); every target is idempotent.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
export ANONYMIZED_TELEMETRY := False
export HF_HUB_OFFLINE := 1
export GRADIO_ANALYTICS_ENABLED := False

.PHONY: setup run test index status bench-index bench-quality clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	# torch first, exactly this version: its CPU build is on disk; any other spec pulls a multi-GB CUDA build
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

run: setup
	$(BIN)/assistant index
	$(BIN)/assistant status

test: setup
	$(BIN)/python -m pytest -q

index: setup
	$(BIN)/assistant index

status: setup
	$(BIN)/assistant status

bench-index: setup
	$(BIN)/python -m benchmarks.bench_index

bench-quality: setup
	$(BIN)/python -m benchmarks.bench_quality

clean:
	rm -rf index/chroma index/keywords
