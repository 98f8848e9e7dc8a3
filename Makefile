# Set-up in two commands:  `make demo` (runs the demo)  and  `make test` (runs the tests).
# Both create .venv on first use with the CPU build of TensorFlow and every plugin.
PYTHON ?= python3
VENV   ?= .venv
PLUGINS := plugins/deepseg_unet64 plugins/deepseg_resunet plugins/deepseg_maskrcnn plugins/deepseg_kea_io \
           plugins/deepseg_albumentations
# plugins/deepseg_imgaug needs numpy < 2 (imgaug 0.4): `nox -s imgaug` tests it in its own venv

.PHONY: demo test lint venv

$(VENV)/.installed: pyproject.toml $(addsuffix /pyproject.toml,$(PLUGINS))
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e ".[cpu,test,lint,export]" $(addprefix -e ,$(PLUGINS))
	touch $@

venv: $(VENV)/.installed

demo: venv
	$(VENV)/bin/deepseg demo --workdir deepseg-demo

# tests run in one process per core, at most 4 (pytest-xdist; TEST_WORKERS=0: in this
# process); modules with costly fixtures (one Slurm cluster, a trained model) are marked
# xdist_group and run in one process each
TEST_WORKERS ?= $(shell $(PYTHON) -c 'import os; print(min(4, len(os.sched_getaffinity(0))))')
test: venv
	$(VENV)/bin/python -m pytest -n $(TEST_WORKERS) --dist loadgroup

# ruff over the repository, mypy over deepseg_core (pyproject.toml [tool.mypy]): seconds
lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
