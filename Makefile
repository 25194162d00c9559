# The one front door (../shared/SPEC.md §8): the same targets and variables for every wrapper.
#   make all                                                          everything, then the verdict
#   make setup | data | compare | bless | test | bench | clean
#   make docker-all                                                   everything in containers, then the verdict (docker or podman)
#   make containers-test                                              build and run every image and the compose file; check the bytes
#   make <wrapper> [INPUT=csv] [OUTPUT=parquet] [DATE=YYYY-MM-DD]     wrapper: reference prefect dagster airflow
#   make backfill-<wrapper> START=D1 END=D2 [INPUT=csv] [OUTPUT_DIR=dir]
#   make backfill START=D1 END=D2                                     every wrapper's backfill

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

INPUT ?= data/synthetic_events.csv
OUTPUT ?=
DATE ?=
START ?=
END ?=
OUTPUT_DIR ?= output/backfill

# The committed sample: `make data` regenerates exactly these bytes.
SAMPLE := data/synthetic_events.csv
SAMPLE_ARGS := --rows 5000 --seed 42 --start 2024-01-01 --days 7
SAMPLE_START := 2024-01-01
SAMPLE_END := 2024-01-07
GOLDEN := compare/golden.json

UV_VERSION := 0.13.9
PYTHON ?= python3
VENVS := $(CURDIR)/.venvs
STATE := $(CURDIR)/.state
UV := $(VENVS)/tools/bin/uv
ENVIRONMENTS := reference prefect airflow dagster

# Every run keeps its files inside the project: staging here, orchestrator state beside it.
export ETL_STAGING_ROOT := $(STATE)/staging
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT :=

# What each environment holds beyond shared_etl: the reference one also runs tests and bench.
SYNC_reference := --group dev --group bench
SYNC_prefect := --no-default-groups --extra prefect
SYNC_airflow := --no-default-groups --extra airflow
SYNC_dagster := --no-default-groups --extra dagster

REFERENCE_PY := $(VENVS)/reference/bin/python

.PHONY: help setup data all compare bless docker-all containers-test test bench clean

help:
	@sed -n 's/^#   //p' $(MAKEFILE_LIST)

setup: $(foreach env,$(ENVIRONMENTS),$(VENVS)/$(env)/.synced)

# uv itself is pinned and kept in the project, so a fresh machine builds the same way.
$(UV):
	$(PYTHON) -m venv $(VENVS)/tools
	$(VENVS)/tools/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# One lock, one environment per orchestrator; a stamp makes a repeated setup instant.
$(VENVS)/%/.synced: pyproject.toml uv.lock | $(UV)
	UV_PROJECT_ENVIRONMENT=$(VENVS)/$* $(UV) sync --quiet --locked --compile-bytecode \
		--python $(PYTHON) $(SYNC_$*)
	touch $@

data: $(SAMPLE)

$(SAMPLE): | $(VENVS)/reference/.synced
	$(REFERENCE_PY) -m shared_etl.generate $(SAMPLE_ARGS) --output $@

# Every wrapper takes the same flags, so one rule runs them all:
#  --input-path IN --output-path OUT [--date D]  |  --input-path IN --start D1 --end D2 --output-dir DIR
WRAPPERS := reference prefect dagster airflow
RUN_reference := $(REFERENCE_PY) -m shared_etl
RUN_prefect := $(VENVS)/prefect/bin/python prefect/flow.py
RUN_dagster := $(VENVS)/dagster/bin/python dagster/definitions.py
RUN_airflow := $(VENVS)/airflow/bin/python airflow/run.py

$(WRAPPERS): %: $(VENVS)/%/.synced
	$(RUN_$@) --input-path $(INPUT) --output-path $(or $(OUTPUT),output/$@_output.parquet) \
		$(if $(DATE),--date $(DATE))

$(addprefix backfill-,$(WRAPPERS)): backfill-%: $(VENVS)/%/.synced
	@test -n "$(START)" -a -n "$(END)" || { echo "usage: make $@ START=YYYY-MM-DD END=YYYY-MM-DD" >&2; exit 2; }
	$(RUN_$*) --input-path $(INPUT) --start $(START) --end $(END) --output-dir $(OUTPUT_DIR)/$*

backfill: $(addprefix backfill-,$(WRAPPERS))

# The wrapper folders share the targets' names: without this, `make prefect` would be "up to date".
.PHONY: backfill $(WRAPPERS) $(addprefix backfill-,$(WRAPPERS))

# Everything, from a clean output/: every wrapper, every backfill of the sample's dates, the verdict.
all: setup data
	@rm -rf output; mkdir -p $(STATE)/logs; failed=0; \
	for target in $(WRAPPERS) $(addprefix backfill-,$(WRAPPERS)); do \
		log=.state/logs/$$target.log; started=$$EPOCHREALTIME; \
		if $(MAKE) $$target INPUT=$(SAMPLE) START=$(SAMPLE_START) END=$(SAMPLE_END) > $$log 2>&1; \
		then status=ok; else status=FAILED; failed=1; fi; \
		echo "all: $$target $$status in $$(awk "BEGIN {printf \"%.1f\", $$EPOCHREALTIME - $$started}") s (log: $$log)"; \
	done; \
	$(MAKE) compare || failed=1; exit $$failed

# The parity verdict over output/, against each other and against the golden hashes.
compare: $(VENVS)/reference/.synced
	$(REFERENCE_PY) -m compare output --golden $(GOLDEN)

# Deliberately re-record the golden hashes from fresh reference outputs of the sample.
bless: $(VENVS)/reference/.synced
	rm -rf $(STATE)/bless
	$(MAKE) reference INPUT=$(SAMPLE) OUTPUT=$(STATE)/bless/reference_output.parquet
	$(MAKE) backfill-reference INPUT=$(SAMPLE) START=$(SAMPLE_START) END=$(SAMPLE_END) \
		OUTPUT_DIR=$(STATE)/bless/backfill
	$(REFERENCE_PY) -m compare --bless $(STATE)/bless --golden $(GOLDEN)

# Containers, with docker or podman (CONTAINER_ENGINE=docker|podman, detected when unset);
# PYTHON_IMAGE=... builds the images on another base than the Dockerfiles' python image.
CONTAINER_ENGINE ?=
PYTHON_IMAGE ?=
CONTAINERS := CONTAINER_ENGINE=$(CONTAINER_ENGINE) PYTHON_IMAGE=$(PYTHON_IMAGE)

# The same comparison in containers (docker-compose.yml): its exit status is the verdict's.
docker-all:
	@$(CONTAINERS) containers/docker-all.sh

# The images and the compose file built and run for real, checked against the golden bytes.
containers-test:
	@$(CONTAINERS) containers/test.sh

test: setup
	$(REFERENCE_PY) -m ruff check .
	$(REFERENCE_PY) -m pytest $(PYTEST_ARGS)

bench: $(VENVS)/reference/.synced
	$(REFERENCE_PY) -m bench $(BENCH_ARGS)

clean:
	rm -rf output .state
