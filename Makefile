# The one front door (../shared/SPEC.md §8): the same targets and variables for every wrapper.
#   make all                                                          everything, then the verdict
#   make setup | data | compare | bless | test | bench | clean
#   make docker-all                                                   everything in containers (needs a Docker engine)
#   make <wrapper> [INPUT=csv] [OUTPUT=parquet] [DATE=YYYY-MM-DD]     wrapper: reference prefect dagster airflow
#   make backfill-<wrapper> START=D1 END=D2 [INPUT=csv] [OUTPUT_DIR=dir]
#   make backfill START=D1 END=D2                                     every wrapper's backfill
#   make up | status | down                                           the deployed stack (stack/)
#   make <wrapper> MODE=deployed ..., make backfill-<wrapper> MODE=deployed ...   through the stack

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
# local: each orchestrator in one process (SQLite); deployed: submitted to the stack (make up).
MODE ?= local
ifeq ($(filter $(MODE),local deployed),)
$(error MODE must be local or deployed, not "$(MODE)")
endif

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
ENVIRONMENTS := reference prefect airflow dagster stack

# Every run keeps its files inside the project: staging here, orchestrator state beside it.
export ETL_STAGING_ROOT := $(STATE)/staging
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT :=

# What each environment holds beyond shared_etl: the reference one also runs tests and bench.
SYNC_reference := --group dev --group bench
SYNC_prefect := --no-default-groups --extra prefect
SYNC_airflow := --no-default-groups --extra airflow
SYNC_dagster := --no-default-groups --extra dagster
SYNC_stack := --only-group stack

REFERENCE_PY := $(VENVS)/reference/bin/python
STACK := $(VENVS)/stack/bin/python -m stack

.PHONY: help setup data all compare bless docker-all test bench clean up down status

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

# MODE=deployed: the same flags, submitted to the running stack by RUN_<wrapper>_deployed.
# `stack exec` starts the stack first if it is down, and stops it again afterwards.
# The reference runner has no orchestrator: it runs as it does in local mode.
RUN_prefect_deployed := $(VENVS)/prefect/bin/python prefect/run_deployed.py
RUN_airflow_deployed := $(VENVS)/airflow/bin/python airflow/run_deployed.py
RUN_local = $(RUN_$(1))
RUN_deployed = $(if $(filter reference,$(1)),$(RUN_reference),$(STACK) exec -- \
	$(or $(RUN_$(1)_deployed),$(error $(1) has no deployed mode yet (issue 14))))
# Deployed mode needs every environment: the stack runs each orchestrator's services.
NEEDS_deployed := setup

$(WRAPPERS): %: $(VENVS)/%/.synced $(NEEDS_$(MODE))
	$(call RUN_$(MODE),$@) --input-path $(INPUT) \
		--output-path $(or $(OUTPUT),output/$@_output.parquet) $(if $(DATE),--date $(DATE))

$(addprefix backfill-,$(WRAPPERS)): backfill-%: $(VENVS)/%/.synced $(NEEDS_$(MODE))
	@test -n "$(START)" -a -n "$(END)" || { echo "usage: make $@ START=YYYY-MM-DD END=YYYY-MM-DD" >&2; exit 2; }
	$(call RUN_$(MODE),$*) --input-path $(INPUT) --start $(START) --end $(END) \
		--output-dir $(OUTPUT_DIR)/$*

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

# The same comparison in containers (docker-compose.yml): its exit status is the verdict's.
# Containers run as you, so the files in output/ are yours.
docker-all: export HOST_UID := $(shell id -u)
docker-all: export HOST_GID := $(shell id -g)
docker-all:
	rm -rf output; mkdir -p output
	docker compose build
	docker compose run --rm compare

# The deployed stack (stack/, ../shared/SPEC.md §8): up is idempotent and prints every URL;
# down stops everything up started and checks that nothing is left running.
up: setup
	$(STACK) up

down status: $(VENVS)/stack/.synced
	$(STACK) $@

test: setup
	$(REFERENCE_PY) -m ruff check .
	$(REFERENCE_PY) -m pytest $(PYTEST_ARGS)

bench: $(VENVS)/reference/.synced
	$(REFERENCE_PY) -m bench $(BENCH_ARGS)

clean:
	rm -rf output .state
