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

# The package is built by colcon in a scratch workspace (a plain build whose install tree is checked, and a
# --symlink-install build), and the suite runs once, through `colcon test` + `colcon test-result`.
WS := build/colcon_ws
COLCON := $(abspath $(BIN))/colcon

test: setup lint
	rm -rf $(WS) && mkdir -p $(WS)/src && touch $(WS)/COLCON_IGNORE && ln -s $(CURDIR) $(WS)/src/lix_ros
	cd $(WS) && $(COLCON) --log-base log build --base-paths src --build-base build_plain --install-base install_plain
	$(BIN)/python scripts/check_install_tree.py $(WS)/install_plain/lix_ros
	cd $(WS) && $(COLCON) --log-base log build --base-paths src --symlink-install
	$(BIN)/python scripts/check_install_tree.py $(WS)/install/lix_ros
	cd $(WS) && $(COLCON) --log-base log test --base-paths src --event-handlers console_direct+ --pytest-args -q --durations=15
	cd $(WS) && $(COLCON) test-result --test-result-base build --verbose

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
