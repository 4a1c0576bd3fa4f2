# The two commands of the quick start: `make run` and `make test`.
# Both create .venv and install what they need on first use.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck unit bench clean browser

$(STAMP): pyproject.toml
	@command -v $(PY) >/dev/null 2>&1 || { echo "python3.11 not found: install Python 3.11 (Debian: apt-get install python3.11 python3.11-venv)"; exit 1; }
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[all,dev]'
	@# Silero VAD's package pins torch, which callbridge never imports (it runs the
	@# package's ONNX file with onnxruntime): install it without dependencies.
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps 'silero-vad>=5.1'
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/callbridge dev

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

# The browser tests drive Debian's Chromium (never a downloaded browser build).
browser:
	@test -x /usr/bin/chromium || { \
	  echo "installing Debian's chromium for the browser tests"; \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } \
	  || { echo "could not install chromium: run 'apt-get install -y chromium' as root"; exit 1; }; }

unit: $(STAMP) browser
	$(BIN)/pytest -q -n 2 --dist loadgroup

test: lint typecheck unit

bench: $(STAMP)
	$(BIN)/python bench/bridge_load.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
