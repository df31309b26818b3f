# Two entry points on a fresh machine: `make demo` and `make test`. Each creates .venv and
# installs everything first. CONSTRAINTS pins torch to the CPU build this kind of machine has;
# to keep a torch you installed yourself: make test VENV_FLAGS=--system-site-packages CONSTRAINTS=/dev/null
PYTHON ?= python3
VENV ?= .venv
VENV_FLAGS ?=
CONSTRAINTS ?= constraints.txt
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test install clean bench

$(STAMP): pyproject.toml $(CONSTRAINTS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV_FLAGS) $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c $(CONSTRAINTS) -e ".[test,demo,onnx]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/uniremoval demo --out demo_out

test: $(STAMP)
	$(PY) -m pytest -q tests

bench: $(STAMP)
	$(PY) benchmarks/infer.py --out bench_out

clean:
	rm -rf $(VENV) build dist src/*.egg-info demo_out bench_out
