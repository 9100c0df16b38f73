# Every target sets the environment up first; `make install` is idempotent.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Three test workers on the 2-core CI machine: many tests wait on a child process (a trainer run, a server)
# while it computes, and a third worker keeps both cores busy then.
PYTEST_WORKERS ?= 3

.PHONY: install test demo bench lint clean study study-artificial wheels-gpu gpu-check gpu-smoke

install: $(STAMP)

# PyTorch by pip: the machine's CPU wheel lies where pip looks (uv would download a CUDA build). The rest by uv
# (parallel downloads; 52 s against pip's 122-129 s, measured on the CI-sized machine), compiled to bytecode as pip
# does; by pip where uv cannot.
UV ?= uv==0.13.10
EXTRAS := .[calibrate,trainer,test,scale]

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q '$(UV)' && $(BIN)/python -m uv pip install -q --system-certs --compile-bytecode \
		--python $(BIN)/python -e '$(EXTRAS)' || $(BIN)/python -m pip install -q -e '$(EXTRAS)'
	touch $(STAMP)

test: install
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) tests

demo: install
	$(BIN)/python scripts/demo.py

bench: install
	$(BIN)/python benchmarks/run_all.py

lint: install
	$(BIN)/ruff check .

# --- GPU (docs/gpu.md) --------------------------------------------------------------------------
# `make wheels-gpu` (here, with the registry): exactly the wheels the GPU machine lacks, for Python 3.12
# on x86-64, into .whl/gpu (written as .whl/gpu.tmp, renamed when complete): no jax, jaxlib or CUDA wheel.
# Any Python with pip will do: make wheels-gpu GPU_PIP="/path/to/python -m pip".
GPU_WHEELS ?= .whl/gpu
GPU_PIP ?= $(PYTHON) -m pip
GPU_MAX_MIB ?= 50
GPU_OUT ?= gpu-check-output
GPU_PLATFORMS := $(foreach n,28 27 24 17,--platform manylinux_2_$(n)_x86_64) --platform manylinux2014_x86_64 \
	--platform manylinux1_x86_64
GPU_SDISTS := seqeval==1.2.2

wheels-gpu:
	rm -rf $(GPU_WHEELS).tmp && mkdir -p $(GPU_WHEELS).tmp
	$(GPU_PIP) download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
		$(GPU_PLATFORMS) -d $(GPU_WHEELS).tmp -r benchmarks/gpu/wheels.txt
	$(GPU_PIP) wheel -q --no-deps -w $(GPU_WHEELS).tmp $(GPU_SDISTS)
	@if ls $(GPU_WHEELS).tmp | grep -iqE '^(jax|jaxlib|nvidia|cuda|torch)[-_]'; then \
		echo "error: $(GPU_WHEELS).tmp holds a jax/CUDA/torch wheel; the GPU machine's must stay"; exit 1; fi
	@kib=$$(du -sk $(GPU_WHEELS).tmp | cut -f1); \
	if [ $$kib -gt $$(( $(GPU_MAX_MIB) * 1024 )) ]; then \
		echo "error: the wheels take $$kib KiB, over GPU_MAX_MIB=$(GPU_MAX_MIB) MiB (64 MiB travel)"; exit 1; fi; \
	echo "$(GPU_WHEELS): $$(ls $(GPU_WHEELS).tmp | wc -l) wheels, $$kib KiB"
	rm -rf $(GPU_WHEELS) && mv $(GPU_WHEELS).tmp $(GPU_WHEELS)

# On the GPU machine (no registry there): install from .whl/gpu and run the check, <= 8 minutes.
gpu-check:
	bash benchmarks/gpu/run.sh $(GPU_OUT)

# The same script at tiny sizes on this machine's CPU (what tests/test_gpu_script.py runs).
gpu-smoke: install
	JAX_PLATFORMS=cpu $(BIN)/python benchmarks/gpu/gpu_check.py --smoke --out $(GPU_OUT)-smoke

clean:
	rm -rf $(VENV) demo-output study-output .pytest_cache .ruff_cache $(GPU_OUT) $(GPU_OUT)-smoke

# The shipped offline study (trainer/configs/study-tiny.yaml): report and pictures in study-output/tiny/.
study: install
	$(BIN)/trainer study trainer/configs/study-tiny.yaml

# The shipped artificial-pretraining study (trainer/configs/study-artificial-tiny.yaml): the two artificial
# corpora first (PCFG+Zipf, PCFG+loglinear, from the shipped fixture treebank; a rerun reuses them), then the
# study (scratch vs natural Spanish vs the two artificial sources); report in study-output/artificial-tiny/.
ARTIFICIAL := study-output/artificial-corpora
ARTIFICIAL_SENTENCES ?= 30000
study-artificial: install
	for kind in zipf loglinear; do \
	  $(BIN)/trainer generate-pcfg --treebank trainer/artificial/data/es-tiny.conllu --relexicalise $$kind \
	    --sentences $(ARTIFICIAL_SENTENCES) --vocab-size 5000 --seed 0 --output $(ARTIFICIAL)/$$kind || exit 1; \
	done
	$(BIN)/trainer study trainer/configs/study-artificial-tiny.yaml
