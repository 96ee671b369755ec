# trialkit: `make demo` and `make test` work on a fresh machine that has only Python >= 3.11.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DEMO_OUT ?= demo-output

.PHONY: demo test test-slow lint typecheck pytest bench clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/activate
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

demo: $(VENV)/.installed
	rm -rf $(DEMO_OUT)
	$(BIN)/trialkit demo --out $(DEMO_OUT)

pytest: $(VENV)/.installed
	$(BIN)/python -m pytest -q -n auto

# The tests marked `slow` (deselected by `make test`): live R re-runs, long simulations.
test-slow: $(VENV)/.installed
	$(BIN)/python -m pytest -q -n auto -m slow

lint: $(VENV)/.installed
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(VENV)/.installed
	$(BIN)/mypy

test: pytest lint typecheck

bench: $(VENV)/.installed
	for f in benchmarks/*.py; do $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache .mypy_cache .ruff_cache
