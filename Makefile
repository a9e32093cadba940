# Every target sets up its own virtual environment on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
PYTEST_WORKERS ?= 2

.PHONY: demo test test-slow test-all lint format tour install clean mutation

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

# Tests run tiny shapes, so compiling is most of their time: XLA's backend
# optimisations off (the results are the same programs' results; only their
# speed differs) and a compilation cache shared by the run's workers and
# subprocesses halve `make test` (685 s -> 349 s on 2 cores). Only programs
# that take 0.2 s or more to compile are cached: writing the thousands of
# one-op programs of eager calls cost more than it saved (tests/attn/
# test_every_kind.py with translation/test_train.py: 107 s -> 96 s). Benchmarks
# and experiments run with the default flags.
TEST_ENV := XLA_FLAGS="$(XLA_FLAGS) --xla_backend_optimization_level=0" \
	JAX_COMPILATION_CACHE_DIR=$(abspath $(VENV))/jax-cache \
	JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0.2 JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES=0

test: lint
	$(TEST_ENV) $(BIN)/python -m pytest -q -m "not slow" -n $(PYTEST_WORKERS) --dist worksteal --durations=10 $(PYTEST_ARGS)

# What `make test` leaves out (the model-level tests of every kind, the longer
# end-to-end runs); CI runs both.
test-slow: $(STAMP)
	$(TEST_ENV) $(BIN)/python -m pytest -q -m slow -n $(PYTEST_WORKERS) --dist worksteal --durations=10 $(PYTEST_ARGS)

test-all: $(STAMP)
	$(TEST_ENV) $(BIN)/python -m pytest -q -n $(PYTEST_WORKERS) --dist worksteal $(PYTEST_ARGS)

# Not part of `make test`: one module at a time against its own tests
# (MUTATE_ARGS=attn/masking.py for one module, --list to see the mutants).
mutation: $(STAMP)
	$(BIN)/python tools/mutate.py $(MUTATE_ARGS)

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .hypothesis
