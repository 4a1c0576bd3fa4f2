# The two commands of the quick start: `make run` and `make test`.
# Both create .venv and install what they need on first use.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck unit bench clean browser haproxy deploy-check

$(STAMP): pyproject.toml Makefile
	@command -v $(PY) >/dev/null 2>&1 || { echo "python3.11 not found: install Python 3.11 (Debian: apt-get install python3.11 python3.11-venv)"; exit 1; }
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[all,dev]'
	@# Silero VAD's package pins torch, which callbridge never imports (it runs the
	@# package's ONNX file with onnxruntime): install it without dependencies.
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps 'silero-vad>=5.1'
	@# Smart Turn v3 (end of turn) ships in pipecat-ai's wheel; callbridge runs its ONNX
	@# file with onnxruntime and never imports pipecat: install it without dependencies.
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps 'pipecat-ai>=1.14,<2'
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/callbridge dev

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

# The deployment files: the Dockerfile (hadolint, checkov), the Bicep template (checkov:
# parses Bicep; no Bicep compiler here) and compose.yaml (the compose-spec schema that
# check-jsonschema ships). checkov lives in a venv of its own: its pins clash with ours.
CHECKOV := $(VENV)/checkov/bin/checkov
$(CHECKOV):
	@test -x $(VENV)/checkov/bin/python || $(PY) -m venv $(VENV)/checkov
	$(VENV)/checkov/bin/pip install --quiet --disable-pip-version-check 'checkov==3.3.30'

deploy-check: $(STAMP) $(CHECKOV)
	$(BIN)/ruff check deploy
	$(BIN)/ruff format --check deploy
	$(BIN)/mypy --strict deploy/docker/healthcheck.py deploy/docker/install_no_deps.py deploy/compose/init_secrets.py
	$(BIN)/hadolint Dockerfile
	$(CHECKOV) --quiet --compact --skip-download --framework dockerfile -f Dockerfile
	@# A file checkov cannot parse is skipped with exit 0: count that as a failure.
	@out=$$($(CHECKOV) --quiet --compact --skip-download --framework bicep -d infra 2>&1); \
	  status=$$?; echo "$$out"; \
	  if echo "$$out" | grep -q "Parsing errors: [1-9]"; then \
	    echo "checkov could not parse a Bicep file (infra/)"; exit 1; fi; exit $$status
	$(BIN)/check-jsonschema --builtin-schema vendor.compose-spec compose.yaml

# The browser tests drive Debian's Chromium (never a downloaded browser build).
browser:
	@test -x /usr/bin/chromium || { \
	  echo "installing Debian's chromium for the browser tests"; \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } \
	  || { echo "could not install chromium: run 'apt-get install -y chromium' as root"; exit 1; }; }

# The multi-replica tests put Debian's HAProxy in front of the replicas (docs/scale-out.md).
haproxy:
	@command -v haproxy >/dev/null 2>&1 || test -x /usr/sbin/haproxy || { \
	  echo "installing Debian's haproxy for the multi-replica tests"; \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy; } \
	  || { echo "could not install haproxy: run 'apt-get install -y haproxy' as root"; exit 1; }; }

unit: $(STAMP) browser haproxy
	$(BIN)/pytest -q -n 2 --dist loadgroup

test: lint typecheck deploy-check unit

bench: $(STAMP)
	$(BIN)/python bench/bridge_load.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
