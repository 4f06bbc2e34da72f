# Two commands on a fresh machine: `make demo` (the main job) and `make test` (the test suite).
# Both create or reuse the virtual environment in .venv and install what they need into it.
PYTHON ?= python3
VENV ?= .venv
EXTRAS ?= cpu,test,sm,demo
comma := ,
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(subst $(comma),-,$(EXTRAS))
PYTEST_ARGS ?=

.PHONY: install demo test docs-cli clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): setup.cfg setup.py | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $@

install: $(STAMP)

demo: install
	TF_CPP_MIN_LOG_LEVEL=2 $(BIN)/skyseg demo --out runs/demo

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

docs-cli: install
	$(BIN)/python -m skyseg_tf.cli_docs > docs/cli.md

clean:
	rm -rf $(VENV) runs build *.egg-info
