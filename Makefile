# `make run` and `make test` each set themselves up: a virtual env in .venv with amu-tf installed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test test-fast test-no-kernel test-jax install lock clean bench

# every install takes the exact versions of the lock (made by `make lock` from setup.py's
# ranges), so a new release of a dependency cannot change a result or turn CI red
LOCK := requirements/lock.txt
PIP_VERSION := 26.3

$(STAMP): setup.py $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q "pip==$(PIP_VERSION)"
	$(BIN)/python -m pip install -q -r $(LOCK)
	$(BIN)/python -m pip install -q --no-deps -e .
	$(BIN)/python -m pip check
	touch $(STAMP)

install: $(STAMP)

# refresh the lock after changing setup.py's dependencies (Linux x86-64, Python 3.11: the
# machines CI and the developers use; the extras dev and jax included)
lock:
	$(PYTHON) -m uv --version >/dev/null 2>&1 || $(PYTHON) -m pip install -q uv
	$(PYTHON) -m uv pip compile setup.py --extra dev --extra jax \
		-c requirements/constraints.in --python-version 3.11 \
		--python-platform x86_64-manylinux_2_28 --annotation-style line \
		-o $(LOCK)

run: $(STAMP)
	$(BIN)/amu run --overwrite

test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile --durations=15

# the TensorFlow-ops attention path (no compiled kernel): layers, models, one short training
NO_KERNEL_TESTS := tests/test_fused_attention.py tests/test_layers.py tests/test_models.py \
	tests/test_training.py::test_zoo_classifier_learns_separable_problem
test-no-kernel: $(STAMP)
	AMU_TF_KERNELS=0 $(BIN)/python -m pytest -q -n 2 $(NO_KERNEL_TESTS)

# the layer, model and training tests under Keras's JAX backend (needs the jax extra:
# pip install -e ".[jax]"); TensorFlow-only tests are marked and skip
JAX_TESTS := tests/test_layers.py tests/test_models.py tests/test_training.py \
	tests/test_compass_layers.py tests/test_compass_probe.py tests/test_compass_classifier.py \
	tests/test_compass_published_head.py
test-jax: $(STAMP)
	KERAS_BACKEND=jax $(BIN)/python -m pytest -q -n 2 $(JAX_TESTS)

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_amu.py

clean:
	rm -rf $(VENV) runs *.egg-info
