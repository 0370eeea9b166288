# Two commands do everything on a fresh machine with Python 3.11 and pip:
#   make demo   — install, run the sample app under obsdash with traffic, show what obsdash saw
#   make test   — install the dev tools, run lint, types, the import wall and the whole test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CODE := obsdash instrumenters tests sample_app bench

.PHONY: demo test check lint types wall pytest install-sample install-dev clean bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install-sample: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[sample]'

install-dev: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'

demo: install-sample
	$(BIN)/python -m sample_app.demo $(DEMO_ARGS)

test: install-dev
	$(MAKE) check

check: lint types wall pytest

lint:
	$(BIN)/ruff check $(CODE)
	$(BIN)/ruff format --check $(CODE)

types:
	$(BIN)/mypy

wall:
	$(BIN)/lint-imports

pytest:
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Every benchmark (P1–P7) against its peer, one table: BENCH_ARGS=--quick for small sizes, --full for 10M stores,
# --out docs/benchmarks-latest.md to keep it.
bench: install-dev
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .obsdash .pytest_cache .mypy_cache .ruff_cache
