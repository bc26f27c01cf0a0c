# CoP toolkit. `make test` and `make demo` do all the set-up on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
DEMO_DIR ?= demo

.PHONY: install test test-fast parity demo demo-data bench clean browser-deps gpu-wheels mutate mutate-report

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip
	# CPU torch first, so nothing pulls a multi-GB CUDA build.
	$(PIP) install torch==2.13.0
	# basic-pitch without its TensorFlow requirement: we run its shipped ONNX model.
	$(PIP) install --no-deps basic-pitch==0.4.0
	# Transkun (MIT; weights inside the wheel) without its requirements: they pull
	# torchaudio (which must match the torch build exactly), tensorboard, pydub, sox...
	# Inference needs torch, numpy, pretty_midi, soxr, librosa (all ours); copdata
	# stands in for the one torchaudio call (a mel filterbank).
	$(PIP) install --no-deps transkun==2.0.1
	# musicnn (ISC) for its MTT_musicnn weights only: copdata.qa.timbre reads the TF
	# checkpoint itself and runs a torch port, so its TensorFlow requirement is not needed.
	$(PIP) install --no-deps musicnn==0.1.0
	$(PIP) install -e '.[test]'
	touch $@

install: $(VENV)/.installed

# Headless Chromium + WebDriver for the browser tests (Debian packages; root or sudo).
browser-deps:
	@if command -v chromedriver >/dev/null 2>&1 && { command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; }; then \
		echo "chromium and chromedriver present"; \
	else \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y chromium chromium-driver; \
	fi

test: install
	$(PY) -m pytest -q

# Parity suite: copbench's embedders and Fréchet distance against the reference
# packages, in a separate virtual environment (never the project's). The reference
# packages go in without their dependencies: their torchaudio / torchvision /
# laion_clap / encodec requirements do not load beside the CPU torch build; the
# suite shims the one torchaudio transform wav2clip uses and stubs the training-only
# imports of laion_clap and fadtk (see tests_parity/conftest.py, docs/copbench.md).
PARITY_VENV := .venv-parity
PARITY_PY := $(PARITY_VENV)/bin/python
PARITY_REFS := torchvggish==0.2 panns-inference==0.1.1 wav2clip==0.1.0 frechet-audio-distance==0.3.4 \
	laion-clap==1.1.7 fadtk==1.1.0 hypy-utils==1.0.29

$(PARITY_VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(PARITY_VENV)
	$(PARITY_PY) -m pip install --upgrade pip
	$(PARITY_PY) -m pip install torch==2.13.0
	$(PARITY_PY) -m pip install --no-deps $(PARITY_REFS)
	# resampy (torchvggish's resampler) still imports pkg_resources
	$(PARITY_PY) -m pip install torchlibrosa resampy "setuptools<81" pytest
	$(PARITY_PY) -m pip install -e .
	touch $@

parity: $(PARITY_VENV)/.installed
	$(PARITY_PY) -m pytest -q -s -p no:cacheprovider tests_parity  # -s: prints the measured differences

test-fast: install
	$(PY) -m pytest -q -m "not slow"

# Mutation testing of the numeric core (docs/testing.md); not part of `make test` or CI.
# `make mutate MODULE=copbench/stats.py` runs one module; MUTATE_JOBS=2 uses two cores.
# A rerun resumes: mutmut keeps each module's state under .mutmut/<module>/mutants.
MODULE ?=
MUTATE_JOBS ?= 1
$(VENV)/.mutate-installed: $(VENV)/.installed
	$(PIP) install -e '.[test,mutate]'
	touch $@

mutate: $(VENV)/.mutate-installed
	nice -n 10 $(PY) tools/mutate.py run $(MODULE) --jobs $(MUTATE_JOBS)
	$(PY) tools/mutate.py report --out docs/testing.md

mutate-report: $(VENV)/.mutate-installed
	$(PY) tools/mutate.py report --out docs/testing.md

demo: install
	$(PY) examples/demo.py --out $(DEMO_DIR)

demo-data: install
	$(VENV)/bin/copdata build --source synth --num-items 7 --valid-fraction 0.01 --item-seconds 20 --clip-seconds 10 --out $(DEMO_DIR)/data --force
	$(VENV)/bin/copdata validate $(DEMO_DIR)/data
	$(VENV)/bin/copdata stats $(DEMO_DIR)/data --plot $(DEMO_DIR)/stats.png
	$(VENV)/bin/copdata show $(DEMO_DIR)/data $$(head -1 $(DEMO_DIR)/data/clips.jsonl | $(PY) -c 'import json,sys; print(json.load(sys.stdin)["id"])') --out $(DEMO_DIR)/clip.png

bench: install
	$(PY) benchmarks/bench_build.py --source synth
	$(PY) benchmarks/bench_build.py --source local
	$(PY) benchmarks/bench_build.py --source youtube
	$(PY) benchmarks/bench_qa.py
	$(PY) benchmarks/bench_metrics.py --clips 3 --repeat 2
	$(PY) benchmarks/bench_model.py
	$(PY) benchmarks/bench_mos_sim.py

# Wheels the GPU device image lacks (Python 3.12, torch 2.11+cu130, torchaudio, torchvision,
# accelerate, transformers, onnxruntime, numpy, scipy, pandas, opencv, pyyaml, tqdm,
# safetensors, scikit-learn, numba, matplotlib, requests... are there) for training,
# sampling and scoring: CPython 3.12 manylinux x86-64, no dependencies pulled, one
# version each. benchmarks/gpu_check.sh installs .whl/ into a temporary target.
GPU_WHEELS := av==18.1.0 soundfile==0.14.0 cffi==2.1.1 pycparser==3.12 soxr==1.1.0 \
	librosa==0.11.0 audioread==3.1.0 pooch==1.9.0 platformdirs==4.14.9 decorator==5.3.2 \
	pretty_midi==0.2.11.post0 mido==1.3.3 mir_eval==0.8.2 basic-pitch==0.4.0 resampy==0.4.2
GPU_PLATFORMS := $(foreach p,manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64,--platform $(p))

gpu-wheels:
	rm -rf .whl && mkdir -p .whl
	$(PYTHON) -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
		--implementation cp $(GPU_PLATFORMS) -d .whl $(GPU_WHEELS)
	@du -sh .whl

clean:
	rm -rf $(VENV) $(PARITY_VENV) $(DEMO_DIR) .pytest_cache .mutmut mutants
