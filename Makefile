# Two entry points on a fresh machine: `make demo` and `make test`. Each creates .venv and
# installs everything first. CONSTRAINTS pins torch to the CPU build this kind of machine has;
# point it at another file (or /dev/null) to keep a torch you installed yourself.
PYTHON ?= python3
VENV ?= .venv
CONSTRAINTS ?= constraints.txt
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test install clean bench

$(STAMP): pyproject.toml $(CONSTRAINTS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first and pinned, so no dependency resolves an unpinned (CUDA) torch.
	$(PY) -m pip install --quiet -c $(CONSTRAINTS) "torch$$(grep -m1 '^torch==' $(CONSTRAINTS) | cut -c6-)"
	$(PY) -m pip install --quiet -c $(CONSTRAINTS) -e ".[test,demo]"
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
