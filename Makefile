# Every target sets the environment up first; `make install` is idempotent.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Use both cores of the machine for the test run by default.
PYTEST_WORKERS ?= 2

.PHONY: install test demo bench lint clean study

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[calibrate,trainer,test,scale]'
	touch $(STAMP)

test: install
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) tests

demo: install
	$(BIN)/python scripts/demo.py

bench: install
	$(BIN)/python benchmarks/run_all.py

lint: install
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) demo-output .pytest_cache .ruff_cache

# The shipped offline study (trainer/configs/study-tiny.yaml): report and pictures in study-output/tiny/.
study: install
	$(BIN)/trainer study trainer/configs/study-tiny.yaml
