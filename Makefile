# The one front door (docs/contract.md §8): the same targets and variables for every wrapper.
#   make all [EXPECT="reference prefect"]                             everything, then the verdict (default: all four)
#   make all MODE=deployed [EXPECT="reference prefect@deployed"]      the same, and each orchestrator again through the stack
#   make setup | data | bless | check | test | bench | clean            check: lint + in-process tests (no orchestrator, seconds)
#   make compare [EXPECT="reference prefect"]                         the verdict over output/ (default: all four)
#   make docker-all [PIPELINE=file.py]                                everything in containers, then the verdict (docker or podman)
#   make containers-test                                              build and run every image and the compose file; check the bytes
#   make <wrapper> [INPUT=csv] [OUTPUT=parquet] [DATE=YYYY-MM-DD]     wrapper: reference prefect dagster airflow
#                   (with DATE and no OUTPUT: output/date-<DATE>/<wrapper>_output.parquet)
#   make backfill-<wrapper> START=D1 END=D2 [INPUT=csv] [OUTPUT_DIR=dir]
#   make backfill START=D1 END=D2                                     every wrapper's backfill
#   make up | status | down                                           the deployed stack (stack/)
#   make <wrapper>|backfill-<wrapper>|all|compare|bless PIPELINE=file.py [PARAMS='{"k": v}']   a pipeline of your own
#   make new-pipeline NAME=name [DIR=folder]                           a working pipeline of your own to start from
#   make <wrapper> MODE=deployed ..., make backfill-<wrapper> MODE=deployed ...   through the stack
#   
#   Variables, as make VAR=value [default]:
#     INPUT [data/synthetic_events.csv]  OUTPUT  DATE  START  END  OUTPUT_DIR   a run's or a backfill's, as above
#     OUTPUT_ROOT [output]            where every default output goes, and what make compare reads
#     EXPECT [all four wrappers]      the wrappers make all and make compare expect, e.g. "reference prefect"
#     MODE [local]                    local: each orchestrator in one process; deployed: through the stack
#     PIPELINE  PARAMS                a pipeline of your own (docs/own-pipeline.md)
#     NAME  DIR [.]                   make new-pipeline's name and folder
#     PYTEST_ARGS                     more pytest arguments for make check and make test, e.g. "-k prefect"
#     BENCH_ARGS                      arguments of make bench, e.g. "--suite compare" (--help lists them)
#     CONTAINER_ENGINE [docker, else podman]  PYTHON_IMAGE  REMOVE_IMAGES=1   the containers (docs/containers.md)
#     PYTHON [python3]                the interpreter make setup builds the environments with
#   In the environment, to watch the retries: ETL_FAIL_ATTEMPTS=N (the events pipeline), or
#     PARITY_FAIL_STEP=step PARITY_FAIL_ATTEMPTS=N (a pipeline of your own) fail a step's first N attempts

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

INPUT ?= data/synthetic_events.csv
OUTPUT ?=
DATE ?=
START ?=
END ?=
# Where every default output goes and what `make compare` reads.
OUTPUT_ROOT ?= output
OUTPUT_DIR ?= $(OUTPUT_ROOT)/backfill
# The wrappers `make compare` and `make all` expect (all four when empty), e.g. "reference prefect".
EXPECT ?=
# local: each orchestrator in one process (SQLite); deployed: submitted to the stack (make up).
MODE ?= local
ifeq ($(filter $(MODE),local deployed),)
$(error MODE must be local or deployed, not "$(MODE)")
endif

# The committed sample: `make data` regenerates exactly these bytes.
SAMPLE := data/synthetic_events.csv
SAMPLE_ARGS := --rows 5000 --seed 42 --start 2024-01-01 --days 7
SAMPLE_DATES := 2024-01-01 2024-01-02 2024-01-03 2024-01-04 2024-01-05 2024-01-06 2024-01-07
SAMPLE_START := $(firstword $(SAMPLE_DATES))
SAMPLE_END := $(lastword $(SAMPLE_DATES))
GOLDEN := compare/golden.json

UV_VERSION := 0.13.9
PYTHON ?= python3
VENVS := $(CURDIR)/.venvs
STATE := $(CURDIR)/.state
UV := $(VENVS)/tools/bin/uv
# The wrappers, from the one registry (parity/registry.py reads the same file for Python).
WRAPPERS := $(strip $(file <parity/wrappers.txt))
ifeq ($(WRAPPERS),)
$(error parity/wrappers.txt: no wrappers listed (the registry: one wrapper name a line))
endif
ENVIRONMENTS := $(WRAPPERS) stack

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

.PHONY: help setup data new-pipeline all compare bless docker-all containers-test check test bench clean up down status

help:
	@sed -n 's/^#   //p' $(MAKEFILE_LIST)

setup: $(foreach env,$(ENVIRONMENTS),$(VENVS)/$(env)/.synced)

# uv itself is pinned and kept in the project, so a fresh machine builds the same way.
$(UV):
	$(PYTHON) -m venv $(VENVS)/tools
	$(VENVS)/tools/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# One lock, one environment per orchestrator; a stamp makes a repeated setup instant.
$(VENVS)/%/.synced: pyproject.toml uv.lock | $(UV)
	@echo "setup: .venvs/$* from uv.lock"
	@UV_PROJECT_ENVIRONMENT=$(VENVS)/$* $(UV) sync --quiet --locked --compile-bytecode \
		--python $(PYTHON) $(SYNC_$*)
	@touch $@

data: $(SAMPLE)

$(SAMPLE): | $(VENVS)/reference/.synced
	$(REFERENCE_PY) -m shared_etl.generate $(SAMPLE_ARGS) --output $@

# A declared pipeline of your own (docs/contract.md §10): PIPELINE=path/to/file.py or a module
# name, PARAMS='{"name": value}' (JSON), through each wrapper's adapter of any pipeline. Its
# outputs go under OUTPUT_ROOT/<name>/ unless OUTPUT_DIR is given.
PIPELINE ?=
PARAMS ?=
export PARAMS
ADAPTER_reference := $(REFERENCE_PY) -m parity
ADAPTER_prefect := $(VENVS)/prefect/bin/python prefect/adapter.py
ADAPTER_dagster := $(VENVS)/dagster/bin/python dagster/adapter.py
ADAPTER_airflow := $(VENVS)/airflow/bin/python airflow/adapter.py
GIVEN_OUTPUT_DIR = $(if $(filter-out file,$(origin OUTPUT_DIR)),$(OUTPUT_DIR))
# --output-dir when OUTPUT_DIR is given (a backfill's: OUTPUT_DIR/<wrapper>), else the layout.
pipeline_where = $(if $(GIVEN_OUTPUT_DIR),--output-dir "$(GIVEN_OUTPUT_DIR)$(2)",--output-root "$(OUTPUT_ROOT)") --wrapper $(1)
pipeline_args = "$(PIPELINE)" $(if $(PARAMS),--params "$$PARAMS")
# The requirements.txt beside the pipeline, if any, into wrapper $(1)'s overlay under its pins
# (parity/requirements.py); refused in one line when it would change a pinned package.
pipeline_requirements = @$(REFERENCE_PY) scripts/pipeline_requirements.py "$(PIPELINE)" \
	--env $(1) --venv $(VENVS)/$(1) --uv $(UV) --sync-args "$(SYNC_$(1))"

# Deployed mode needs every environment: the stack runs each orchestrator's services.
NEEDS_deployed := setup

# MODE=deployed: the pipeline is registered with the running stack and submitted to it by
# <wrapper>/run_pipeline_deployed.py, with the adapter's arguments. `stack exec` starts the
# stack first if it is down, and stops it again afterwards. The reference runner has no
# orchestrator: it runs as it does in local mode.
DEPLOYED_prefect := $(VENVS)/prefect/bin/python prefect/run_pipeline_deployed.py
DEPLOYED_dagster := $(VENVS)/dagster/bin/python dagster/run_pipeline_deployed.py
DEPLOYED_airflow := $(VENVS)/airflow/bin/python airflow/run_pipeline_deployed.py
RUN_local = $(ADAPTER_$(1))
RUN_deployed = $(if $(filter reference,$(1)),$(ADAPTER_reference),$(STACK) exec -- \
	$(or $(DEPLOYED_$(1)),$(error $(1) has no deployed mode yet)))

# The events pipeline declared (shared_etl/pipeline.py) takes the events sample: `make data`.
ifneq ($(strip $(PIPELINE)),)
$(WRAPPERS): %: $(VENVS)/%/.synced $(NEEDS_$(MODE)) | data
	$(call pipeline_requirements,$@)
	$(call RUN_$(MODE),$@) run $(pipeline_args) $(if $(DATE),--date "$(DATE)") $(call pipeline_where,$@)

$(addprefix backfill-,$(WRAPPERS)): backfill-%: $(VENVS)/%/.synced $(NEEDS_$(MODE)) | data
	@test -n "$(START)" -a -n "$(END)" || { echo "usage: make $@ PIPELINE=p START=YYYY-MM-DD END=YYYY-MM-DD" >&2; exit 2; }
	$(call pipeline_requirements,$*)
	$(call RUN_$(MODE),$*) backfill $(pipeline_args) --start "$(START)" --end "$(END)" $(call pipeline_where,$*,/$*)
else
# The events pipeline (shared_etl/pipeline.py, the default) with its own flags, which every
# adapter takes (parity/cli.py):
#  --input-path IN --output-path OUT [--date D]  |  --input-path IN --start D1 --end D2 --output-dir DIR
# Variables are quoted, so a path with spaces is one argument. A run for one DATE gets its own
# folder by default, so it never replaces the all-dates outputs compare holds side by side.
$(WRAPPERS): %: $(VENVS)/%/.synced $(NEEDS_$(MODE))
	$(if $(OUTPUT),@$(call refuse_hidden,OUTPUT,$(OUTPUT)))
	$(call RUN_$(MODE),$@) --input-path "$(INPUT)" \
		--output-path "$(or $(OUTPUT),$(OUTPUT_ROOT)/$(if $(DATE),date-$(DATE)/)$@_output.parquet)" \
		$(if $(DATE),--date "$(DATE)")

$(addprefix backfill-,$(WRAPPERS)): backfill-%: $(VENVS)/%/.synced $(NEEDS_$(MODE))
	@test -n "$(START)" -a -n "$(END)" || { echo "usage: make $@ START=YYYY-MM-DD END=YYYY-MM-DD" >&2; exit 2; }
	@$(call refuse_hidden,OUTPUT_DIR,$(OUTPUT_DIR))
	$(call RUN_$(MODE),$*) --input-path "$(INPUT)" --start "$(START)" --end "$(END)" \
		--output-dir "$(OUTPUT_DIR)/$*"
endif

# A hidden name (OUTPUT=dir/.parquet) is skipped by every listing, compare's included: refused.
define refuse_hidden
case "$$(basename -- "$(2)")" in .*) echo "make: $(1)=$(2): a name starting with '.' is hidden (compare never sees it); choose another name" >&2; exit 2;; esac
endef

backfill: $(addprefix backfill-,$(WRAPPERS))

# The wrapper folders share the targets' names: without this, `make prefect` would be "up to date".
.PHONY: backfill $(WRAPPERS) $(addprefix backfill-,$(WRAPPERS))

# Everything, then the verdict on exactly what this run produced (scripts/make_all.py): each
# expected wrapper's run and backfill of the sample, one line each, then one compare. Only the
# outputs it rewrites (and the old reports) are removed first; other files are kept, not compared.
# `<wrapper>@deployed` is that wrapper in MODE=deployed, writing under $(OUTPUT_ROOT)/deployed/:
# MODE=deployed expects every wrapper in both modes, so local and deployed meet in one verdict,
# and one `stack exec` holds the stack up for all the runs (started and stopped here if down).
ALL_EXPECT_local := $(WRAPPERS)
ALL_EXPECT_deployed := $(WRAPPERS) $(addsuffix @deployed,$(filter-out reference,$(WRAPPERS)))
ALL_WRAPPERS = $(or $(strip $(EXPECT)),$(ALL_EXPECT_$(MODE)))
# With PIPELINE=: the same for a declared pipeline (scripts/pipeline_all.py), in either mode.
PIPELINE_ALL = $(REFERENCE_PY) scripts/pipeline_all.py --pipeline "$(PIPELINE)" --make "$(MAKE)" \
	--expect "$(ALL_WRAPPERS)" --root "$(OUTPUT_ROOT)"
ifneq ($(strip $(PIPELINE)),)
all compare bless: setup data
	@$(if $(and $(filter all,$@),$(findstring @deployed,$(ALL_WRAPPERS))),$(STACK) exec --) \
		$(PIPELINE_ALL) $@
else
all: setup data
	@$(if $(findstring @deployed,$(ALL_WRAPPERS)),$(STACK) exec --) \
		$(REFERENCE_PY) scripts/make_all.py --make "$(MAKE)" --wrappers "$(WRAPPERS)" \
		--expect "$(ALL_WRAPPERS)" --root "$(OUTPUT_ROOT)" --input $(SAMPLE) \
		--dates "$(SAMPLE_DATES)" --golden $(GOLDEN)

# The parity verdict over $(OUTPUT_ROOT)/, against each other and against the golden hashes.
compare: $(VENVS)/reference/.synced
	$(REFERENCE_PY) -m compare "$(OUTPUT_ROOT)" --golden $(GOLDEN)$(if $(strip $(EXPECT)), --expect "$(EXPECT)")

# Deliberately re-record the golden hashes from fresh reference outputs of the sample.
bless: $(VENVS)/reference/.synced
	rm -rf $(STATE)/bless
	$(MAKE) reference INPUT=$(SAMPLE) DATE= OUTPUT=$(STATE)/bless/reference_output.parquet
	$(MAKE) backfill-reference INPUT=$(SAMPLE) START=$(SAMPLE_START) END=$(SAMPLE_END) \
		OUTPUT_DIR=$(STATE)/bless/backfill
	$(REFERENCE_PY) -m compare --bless $(STATE)/bless --golden $(GOLDEN)
endif

# A working pipeline of your own to start from: NAME.py, its sample and golden file in DIR.
NAME ?=
DIR ?=
new-pipeline: $(VENVS)/reference/.synced
	@$(REFERENCE_PY) scripts/new_pipeline.py --name "$(NAME)" --dir "$(or $(DIR),.)" --make "$(MAKE)"

# Containers, with docker or podman (CONTAINER_ENGINE=docker|podman, detected when unset);
# PYTHON_IMAGE=... builds the images on another base than the Dockerfile's python image.
CONTAINER_ENGINE ?=
PYTHON_IMAGE ?=
CONTAINERS := CONTAINER_ENGINE=$(CONTAINER_ENGINE) PYTHON_IMAGE=$(PYTHON_IMAGE)

# The same comparison in containers (docker-compose.yml): its exit status is the verdict's.
# PIPELINE=path/to/name.py: make all PIPELINE= in containers (containers/pipeline.sh).
docker-all:
	@$(CONTAINERS) PIPELINE="$(PIPELINE)" containers/docker-all.sh

# The images and the compose file built and run for real, checked against the golden bytes.
containers-test:
	@$(CONTAINERS) containers/test.sh

# The deployed stack (stack/, docs/contract.md §8): up is idempotent and prints every URL;
# down stops everything up started and checks that nothing is left running.
up: setup
	$(STACK) up

down status: $(VENVS)/stack/.synced
	$(STACK) $@

# The quick tier: lint and every test that starts no orchestrator and needs no service.
check: $(VENVS)/reference/.synced
	$(REFERENCE_PY) -m ruff check .
	$(REFERENCE_PY) -m pytest -q -m "not orchestrators and not deployed" $(PYTEST_ARGS)

# Every test: the deployed tier beside the rest (scripts/test_tiers.sh).
test: setup
	$(REFERENCE_PY) -m ruff check .
	@scripts/test_tiers.sh $(REFERENCE_PY) $(PYTEST_ARGS)

bench: $(VENVS)/reference/.synced $(VENVS)/datacompy/.synced
	$(REFERENCE_PY) -m bench $(BENCH_ARGS)

# datacompy, the verdict's peer in make bench, has a lock of its own (bench/datacompy/):
# datacompy 1.1.0 needs polars<1.45 and pandas<3.1, which the project's pins exclude.
$(VENVS)/datacompy/.synced: bench/datacompy/pyproject.toml bench/datacompy/uv.lock | $(UV)
	@echo "setup: .venvs/datacompy from bench/datacompy/uv.lock"
	@UV_PROJECT_ENVIRONMENT=$(VENVS)/datacompy $(UV) sync --quiet --locked --compile-bytecode \
		--python $(PYTHON) --project bench/datacompy
	@touch $@

# The stack's state is under .state/: stop it first, so nothing runs on deleted files.
clean:
	@if [ -d $(STATE)/stack ] && [ -x $(VENVS)/stack/bin/python ]; then $(STACK) down; fi
	rm -rf output .state
