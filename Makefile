# Everything a fresh machine needs (Python, gcc and apt are assumed); every target is idempotent.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
export ANONYMIZED_TELEMETRY := False
export HF_HUB_OFFLINE := 1
export GRADIO_ANALYTICS_ENABLED := False

.PHONY: setup bench-deps browser-deps run test index status bench bench-index bench-quality bench-load bench-torture scale-corpus clean

setup: $(STAMP) browser-deps

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	# torch first, exactly this version: its CPU build is on disk; any other spec pulls a multi-GB CUDA build
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

# Debian's chromium and CJK fonts for the browser tests (Chinese renders as boxes without the fonts). Skipped when
# present; without apt-get (or root or sudo) it only warns, and the browser tests skip saying why.
BROWSER_PKGS := chromium fonts-noto-cjk
CHROMIUM     ?= /usr/bin/chromium
APT_GET      ?= apt-get
browser-deps:
	@missing=""; \
	test -x $(CHROMIUM) || missing=" chromium"; \
	ls /usr/share/fonts/opentype/noto/NotoSansCJK* >/dev/null 2>&1 || missing="$$missing fonts-noto-cjk"; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	sudo=""; if [ "$$(id -u)" != 0 ]; then sudo="sudo -n"; fi; \
	if ! command -v $(APT_GET) >/dev/null 2>&1; then \
		echo "warning: apt-get not found: install$$missing yourself, or the browser tests skip (no $(CHROMIUM))"; \
	elif [ -n "$$sudo" ] && ! command -v sudo >/dev/null 2>&1; then \
		echo "warning: not root and no sudo: install$$missing yourself, or the browser tests skip"; \
	else \
		echo "installing$$missing (Debian packages, for the browser tests)"; \
		( $$sudo env DEBIAN_FRONTEND=noninteractive $(APT_GET) update -qq && \
		  $$sudo env DEBIAN_FRONTEND=noninteractive $(APT_GET) install -y -qq --no-install-recommends \
		  $(BROWSER_PKGS) >/dev/null ) \
		|| echo "warning: apt-get could not install $(BROWSER_PKGS): the browser tests will skip"; \
	fi

# Builds the index of ./corpus on first run (then only catches up with changes) and serves the chat page;
# files added to, changed in or deleted from ./corpus while it runs are indexed as they come.
run: setup
	$(BIN)/assistant serve --watch

test: setup
	$(BIN)/python -m pytest -q

index: setup
	$(BIN)/assistant index

status: setup
	$(BIN)/assistant status

# The scale benchmark: builds (once) the scale corpus under .cache/scale from Debian's python3.11-doc and
# manpages-zh (apt-get download, no root), then measures 1k/5k/20k-chunk slices and writes docs/scale.{md,json,png}.
# Takes about 45 minutes on 2 idle cores; BENCH_PLAN picks models and sizes, e.g. BENCH_PLAN="use:1000".
BENCH_PLAN ?= use:1000,5000,20000;use+e5:1000,5000
BENCH_STAMP := $(VENV)/.bench-installed
bench-deps: $(BENCH_STAMP)
$(BENCH_STAMP): $(STAMP)
	$(BIN)/pip install -q -e '.[test,bench]'
	touch $(BENCH_STAMP)

bench: setup bench-deps
	$(BIN)/python -m benchmarks.bench_scale --plan "$(BENCH_PLAN)"

scale-corpus: setup
	$(BIN)/python -m benchmarks.scale_corpus

bench-index: setup
	$(BIN)/python -m benchmarks.bench_index

bench-quality: setup
	$(BIN)/python -m benchmarks.bench_quality

# 20 concurrent HTTP clients for a minute while syncs run; and long series of kill -9 and full-disk syncs
bench-load: setup
	$(BIN)/python -m benchmarks.bench_load --out docs/robustness.md

bench-torture: setup
	$(BIN)/python -m benchmarks.torture --out docs/robustness.md

clean:
	rm -rf index/chroma index/keywords
