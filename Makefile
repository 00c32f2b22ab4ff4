# Every target is one line. uv is installed into .tools/ when it is not on PATH.
UV := $(or $(shell command -v uv 2>/dev/null),.tools/bin/uv)
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test check bench sync fmt

run: sync
	$(UV) run menusync serve --demo --host $(HOST) --port $(PORT)

test: sync
	$(UV) run pytest $(ARGS)

check: sync
	$(UV) run ruff check . && $(UV) run ruff format --check . && $(UV) run mypy && $(UV) run lint-imports && MENUSYNC_DATA_DIR=$$(mktemp -d) sh -c '$(UV) run alembic upgrade head && $(UV) run alembic check'

bench: sync
	$(UV) run python -m bench $(ARGS)

fmt: sync
	$(UV) run ruff check --fix . && $(UV) run ruff format .

sync: $(UV)
	$(UV) sync --locked --quiet

.tools/bin/uv:
	python3 -m venv .tools && .tools/bin/pip install --quiet --disable-pip-version-check uv
