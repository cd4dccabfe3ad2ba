# clipstore — quick start: `make demo` runs the main job, `make test` runs the tests.
# Each target creates .venv itself with a Python >= 3.12 (zarr 3.4 needs it).
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
# Find an interpreter: python3.13/python3.12 on PATH that really runs, else pyenv's, else stop.
PYTHON ?= $(shell for p in python3.13 python3.12; do $$p -c 'import sys; assert sys.version_info >= (3, 12)' >/dev/null 2>&1 && { command -v $$p; exit 0; }; done; \
  if command -v pyenv >/dev/null 2>&1; then for v in $$(pyenv versions --bare 2>/dev/null | grep -E '^3\.1[23]\.[0-9]+$$' | sort -rV); do r=$$(pyenv root)/versions/$$v/bin/python3; [ -x $$r ] && { echo $$r; exit 0; }; done; fi; \
  python3 -c 'import sys; assert sys.version_info >= (3, 12)' >/dev/null 2>&1 && command -v python3)
EXTRAS ?= tf,test,torch

.PHONY: help venv demo test bench lint clean
help:
	@echo "make demo   simulate a cohort, build a store, train, evaluate (built-in defaults)"
	@echo "make test   run the test suite"
	@echo "make bench  run every benchmark in bench/ (writes bench/results/*.json)"
	@echo "make lint   ruff over the whole tree (CI runs it before the tests)"

# One stamp per set of extras, checked in the recipe so that a target's own EXTRAS (demo needs no
# torch or test tools; bench needs GenVarLoader) decides what gets installed.
venv:
	@if [ -z "$(PYTHON)" ]; then echo "error: clipstore needs Python >= 3.12 (zarr 3.4 requires it). Install python3.12 or python3.13 (or pyenv install 3.12), or pass PYTHON=/path/to/python3.12." >&2; exit 2; fi
	@stamp=$(VENV)/.installed-$(EXTRAS); [ -f $$stamp ] && [ $$stamp -nt pyproject.toml ] && exit 0; set -e; \
	  [ -x $(PY) ] || $(PYTHON) -m venv $(VENV); \
	  echo "installing clipstore[$(EXTRAS)] into $(VENV)"; \
	  $(PY) -m pip install -q --upgrade pip; \
	  $(PY) -m pip install -q -e ".[$(EXTRAS)]"; \
	  if [[ ",$(EXTRAS)," == *,test,* ]] && tfv=$$($(PY) -c 'import tensorflow as tf; print(tf.__version__.rsplit(".", 1)[0])' 2>/dev/null); then \
	    $(PY) -m pip install -q --no-deps "tf_keras~=$$tfv.0" "clipnet==0.2.3"; fi; \
	  touch $$stamp
	@# (tf_keras and clipnet 0.2.3 are fixtures of tests/test_released.py: Keras 2 and clipnet's own
	@# architecture code. --no-deps: tf_keras would pull `tensorflow` beside tensorflow-cpu, and
	@# clipnet pins TF < 2.15 and numpy < 2; the fixture needs neither. Extras can't say --no-deps.)

demo: EXTRAS = tf
demo: venv
	$(VENV)/bin/clipstore demo $(DEMO_ARGS)

test: venv
	$(PY) -m pytest $(PYTEST_ARGS)

bench: EXTRAS = tf,test,torch,bench
bench: venv
	@set -e; for b in bench/*.py; do [ "$$(basename $$b)" = common.py ] && continue; echo "== $$b"; $(PY) $$b; done

lint: EXTRAS = test
lint: venv
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
