# conv3n: `make run` starts the product, `make test` runs every check. Both set up .venv first.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
# Bun for custom/code in JavaScript/TypeScript: the npm package `bun` ships the binary.
BUN_VERSION := 1.4.5
BUN := .tools/node_modules/.bin/bun

.PHONY: run test lint typecheck imports unit bench clean tools bytecode

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

# `make tools` installs Bun into .tools/ (needs npm); custom/code finds it there.
tools: $(BUN)

$(BUN):
	npm install --prefix .tools --no-save --no-audit --no-fund --loglevel=error bun@$(BUN_VERSION)
	$(BUN) --version

# The editable install leaves src/ without bytecode, and with PYTHONDONTWRITEBYTECODE set
# (some shells and images set it) every start would compile conv3n from source again:
# ~70 ms of `conv3n run`. compileall only rewrites what changed.
bytecode: $(STAMP)
	@$(BIN)/python -m compileall -q -j0 src

run: $(STAMP) $(BUN) bytecode
	$(BIN)/conv3n serve

lint: $(STAMP)
	$(BIN)/ruff check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

imports: $(STAMP)
	$(BIN)/lint-imports

unit: $(STAMP) $(BUN)
	$(BIN)/pytest -q tests

test: lint typecheck imports unit
# conv3n next to n8n and Node-RED (installs them under /tmp/peers once; ~10 min per run),
# not part of `make test`; e.g. make bench-peers ARGS="--systems conv3n --workflows c"
.PHONY: bench-peers
bench-peers: $(STAMP) bytecode
	$(BIN)/python bench/peers/run.py $(ARGS)

bench: $(STAMP) $(BUN) bytecode
	bash scripts/ensure_wrk.sh
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) .tools .mypy_cache .pytest_cache .ruff_cache
