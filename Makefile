# Every target sets up its own virtual environment on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: demo test test-all lint format tour install clean mutation

$(STAMP): setup.cfg pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[experiments,test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python launch.py --config=experiments/configs/translation.py --sweep=demo --workdir=runs/demo
	$(BIN)/python launch.py --report=runs/demo

tour: $(STAMP)
	$(BIN)/python -m examples.attention_tour

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: lint
	$(BIN)/python -m pytest -q -m "not slow" -n 2 --durations=10 $(PYTEST_ARGS)

test-all: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 $(PYTEST_ARGS)

# Not part of `make test`: one module at a time against its own tests
# (MUTATE_ARGS=attn/masking.py for one module, --list to see the mutants).
mutation: $(STAMP)
	$(BIN)/python tools/mutate.py $(MUTATE_ARGS)

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .hypothesis
