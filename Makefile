# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
# Installed before the package so pip does not pull a multi-GB CUDA build; override freely,
# e.g. `make demo TORCH_SPEC='torch==2.5.1'`.
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin

.PHONY: demo test reference accuracy tune clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

demo: $(VENV)/.installed
	$(BIN)/stockrnn demo

test: $(VENV)/.installed-test
	$(BIN)/python -m ruff check src tests bench
	$(BIN)/python -m pytest

# Benchmarks (need ../shared/data): the published recipe, the 24-stock accuracy report, the tuning.
reference: $(VENV)/.installed
	$(BIN)/python bench/reference.py

accuracy: $(VENV)/.installed
	$(BIN)/python bench/accuracy.py

tune: $(VENV)/.installed
	$(BIN)/python bench/tune.py

clean:
	rm -rf $(VENV) runs build src/*.egg-info
