# Two commands on a fresh machine with Python 3.11 and make:
#   make run    create .venv, install, start the whole embedded pipeline on port 8888
#   make test   create .venv if needed, install, run every test (end-to-end included)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
ARGS   ?=

.PHONY: run test bench fuzz chaos lint format clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/trackpipe run $(ARGS)

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -q -ra

bench: $(STAMP)
	$(BIN)/python -m trackpipe.bench $(ARGS)

fuzz: $(STAMP)
	$(BIN)/python -m tests.fuzz_run $(ARGS)

# counted fault injection (kill -9 of each part, poison data) or, with ARGS="--soak 60", a soak
chaos: $(STAMP)
	$(BIN)/python -m trackpipe.chaos $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) var .pytest_cache
