# CoP toolkit. `make test` and `make demo` do all the set-up on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
DEMO_DIR ?= demo

.PHONY: install test test-fast demo demo-data bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip
	# CPU torch first, so nothing pulls a multi-GB CUDA build.
	$(PIP) install torch==2.13.0
	# basic-pitch without its TensorFlow requirement: we run its shipped ONNX model.
	$(PIP) install --no-deps basic-pitch==0.4.0
	$(PIP) install -e '.[test]'
	touch $@

install: $(VENV)/.installed

test: install
	$(PY) -m pytest -q

test-fast: install
	$(PY) -m pytest -q -m "not slow"

demo: install
	$(PY) -m copmodel.demo --out $(DEMO_DIR)

demo-data: install
	$(VENV)/bin/copdata build --source synth --num-items 6 --item-seconds 20 --clip-seconds 10 --out $(DEMO_DIR)/data --force
	$(VENV)/bin/copdata validate $(DEMO_DIR)/data
	$(VENV)/bin/copdata stats $(DEMO_DIR)/data --plot $(DEMO_DIR)/stats.png
	$(VENV)/bin/copdata show $(DEMO_DIR)/data $$(head -1 $(DEMO_DIR)/data/clips.jsonl | $(PY) -c 'import json,sys; print(json.load(sys.stdin)["id"])') --out $(DEMO_DIR)/clip.png

bench: install
	$(PY) benchmarks/bench_build.py --source synth
	$(PY) benchmarks/bench_build.py --source local
	$(PY) benchmarks/bench_build.py --source youtube
	$(PY) benchmarks/bench_metrics.py --clips 3 --repeat 2
	$(PY) benchmarks/bench_model.py

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache
