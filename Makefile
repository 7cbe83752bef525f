# TinyTorch: the two commands of README.md. Each sets itself up (a .venv with the pinned working set).
#   make demo   create .venv if needed, install, run the main job
#   make test   create .venv if needed, install, run the whole test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TITO := $(BIN)/tito
STAMP := $(VENV)/.tinytorch-installed
PYTEST_WORKERS ?= auto

.PHONY: demo test venv clean

demo: $(STAMP)
	$(TITO) export --all
	$(TITO) module status
	@# Each step runs only when the modules it needs are implemented: their exported files hold no
	@# student stub (what an unfinished exercise of a student edition exports). Always so in the instructor tree.
	@todo=$$($(call stubbed,0[1-9])); if [ -z "$$todo" ]; then \
		$(TITO) zoo eval digits_mlp && $(TITO) zoo eval digits_cnn; \
	else echo "make demo: not yet: the reference models (tito zoo eval) need modules 01-09; still to implement: $$todo"; fi
	@# The TorchPerf Olympics on the bundled example submissions needs every module. Grading is idempotent
	@# (unchanged submissions keep their records); the leaderboard is re-derived.
	@todo=$$($(call stubbed,[0-9][0-9])); if [ -z "$$todo" ]; then \
		$(TITO) olympics grade tinytorch/assets/olympics/examples --out results/olympics && \
		$(TITO) olympics leaderboard results/olympics; \
	else first=$${todo%% *}; notebook=$$(ls nbs/$${first}_*.ipynb 2>/dev/null | head -n 1); \
		echo "make demo: not yet: the TorchPerf Olympics needs every module; still to implement: $$todo"; \
		echo "make demo: next: tito module start $${first#0}, write its code in $$notebook, then tito module complete $${first#0}"; fi

# $(call stubbed,NN): the numbers of the modules matching the regex NN whose exported package files (the ones
# whose header says "File to edit: ../nbs/NN_name.ipynb") still raise NotImplementedError("Module NN: implement ...").
stubbed = grep -rlE --include='*.py' 'File to edit: .*nbs/($(1))_' tinytorch | xargs -r grep -ohE \
	'NotImplementedError\("Module [0-9]+: implement' | grep -oE '[0-9]+' | sort -u | tr '\n' ' ' | sed 's/ $$//'

# The suite runs one pytest worker per core; one BLAS thread per worker keeps them from fighting
# over the cores (override with `make test BLAS_THREADS=2`).
BLAS_THREADS ?= 1

test: $(STAMP)
	@if [ -d modules ]; then $(TITO) export --check; fi
	OPENBLAS_NUM_THREADS=$(BLAS_THREADS) OMP_NUM_THREADS=$(BLAS_THREADS) MKL_NUM_THREADS=$(BLAS_THREADS) \
		$(BIN)/python -m pytest -n $(PYTEST_WORKERS) tests

venv: $(STAMP)

$(STAMP): requirements.txt setup.py settings.ini
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "TinyTorch needs Python >= 3.10; this is " + sys.version.split()[0] + ". Run: make PYTHON=python3.11 ...")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	$(BIN)/python -m pip check
	@touch $(STAMP)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
