# Two commands a new user needs: `make chat` and `make test` (`make test-fast` for the quick tier).
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Portable llama.cpp build: no -march=native (AMX/AVX-512 probing crashes in some VMs).
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF

.PHONY: install chat test test-fast clean

$(BIN)/ohlora: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install torch==2.13.0
	$(BIN)/pip install -e '.[test]'
	touch $(BIN)/ohlora

install: $(BIN)/ohlora

chat: install
	$(BIN)/ohlora

test: install
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q --durations=25

test-fast: install  # the scripted engine and the hash embedder: no model loads (under a minute)
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q -m "not slow"

clean:
	rm -rf $(VENV)
