# One-command setup, tests and the main job. Everything runs from .venv (created on demand).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.lix-setup-stamp

.PHONY: setup test lint demo preview bench clean

setup: $(STAMP)

$(STAMP): requirements.txt setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

lint: setup
	$(BIN)/ruff check .

test: setup lint
	$(BIN)/python -m pytest -q

# Main job: synthetic drive bag -> student/teacher/A-B nodes -> replay -> record -> evaluation report.
demo: setup
	$(BIN)/lix-demo --out out/demo

# A look at the synthetic data: RGB | depth | normals | LiDAR depth | labels.
preview: setup
	$(BIN)/lix-data preview --split test --count 4 --out out/preview.png

bench: setup
	$(BIN)/python benchmarks/bench_synthetic.py

clean:
	rm -rf out build *.egg-info .pytest_cache .ruff_cache
