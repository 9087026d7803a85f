# `make run` and `make test` each set themselves up: a virtual env in .venv with amu-tf installed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test test-fast test-no-kernel test-jax install clean bench

$(STAMP): setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/amu run --overwrite

test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

# the TensorFlow-ops attention path (no compiled kernel): layers, models, one short training
NO_KERNEL_TESTS := tests/test_fused_attention.py tests/test_layers.py tests/test_models.py \
	tests/test_training.py::test_zoo_classifier_learns_separable_problem
test-no-kernel: $(STAMP)
	AMU_TF_KERNELS=0 $(BIN)/python -m pytest -q -n 2 $(NO_KERNEL_TESTS)

# the layer, model and training tests under Keras's JAX backend (needs the jax extra:
# pip install -e ".[jax]"); TensorFlow-only tests are marked and skip
JAX_TESTS := tests/test_layers.py tests/test_models.py tests/test_training.py
test-jax: $(STAMP)
	KERAS_BACKEND=jax $(BIN)/python -m pytest -q -n 2 $(JAX_TESTS)

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_amu.py

clean:
	rm -rf $(VENV) runs *.egg-info
