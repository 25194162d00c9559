# One image per wrapper of the registry (parity/wrappers.txt), all from this file and the
# repository root; the build argument WRAPPER (default: reference) chooses which:
#   reference: the reference runner and the parity verdict (shared_etl and compare, no orchestrator)
#   prefect:   the pipeline's flow, run by Prefect's temporary API server on loopback
#   dagster:   the pipeline's job, run in process (no daemon, no web server)
#   airflow:   the pipeline's DAG, run by `dag.test`, one run per date for a backfill
#
#   docker build --build-arg WRAPPER=prefect -t parity-harness/prefect .
#   docker run --rm --user "$(id -u):$(id -g)" -v "$PWD/data:/app/data:ro" \
#       -v "$PWD/output:/app/output" parity-harness/prefect
# A backfill: ... parity-harness/prefect python prefect/adapter.py --input-path data/synthetic_events.csv \
#   --start 2024-01-01 --end 2024-01-07 --output-dir output/backfill/prefect
# (the other images' backfills: python -m parity, python dagster/adapter.py,
# python airflow/adapter.py, with the same flags).
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm
# Its default, reference, is written where it is used (the build stage and the last FROM):
# podman 4.3 resolves a stage named by an ARG's default here only if --build-arg gives it.
ARG WRAPPER

FROM ${PYTHON_IMAGE} AS build
ARG UV_VERSION=0.13.9
ARG WRAPPER=reference
RUN pip install --no-cache-dir uv==${UV_VERSION}
WORKDIR /app
ENV UV_PROJECT_ENVIRONMENT=/opt/venv UV_PYTHON_DOWNLOADS=never
COPY pyproject.toml uv.lock ./
# The lock `make setup` installs, so this pyarrow writes the same bytes as the local one:
# first its dependencies (a layer kept while only the code changes), then the project itself,
# whose installed version every manifest records. An orchestrator's image adds its extra, as
# make's SYNC_<wrapper> does (`sh -c` starts with no arguments: the reference image adds none).
RUN if [ "$WRAPPER" != reference ]; then set -- --extra "$WRAPPER"; fi \
    && uv sync --locked --compile-bytecode --no-default-groups "$@" --no-install-project
COPY README.md ./
COPY parity/ parity/
COPY shared_etl/ shared_etl/
COPY compare/ compare/
RUN if [ "$WRAPPER" != reference ]; then set -- --extra "$WRAPPER"; fi \
    && uv sync --locked --compile-bytecode --no-default-groups "$@" --no-editable

FROM ${PYTHON_IMAGE} AS runtime
RUN useradd --system --uid 10001 --no-create-home etl
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
# Writable by any user, so the image also runs as `--user "$(id -u)"`, who then owns what it
# writes to a mounted output/; an orchestrator keeps its state in /app/.state/<wrapper>.
RUN mkdir --mode=1777 .state data output
# PARITY_IMAGE: a pipeline's requirements.txt is refused here (parity/requirements.py).
ENV PATH=/opt/venv/bin:$PATH PARITY_IMAGE=1
USER 10001

# Each wrapper's own part: the folder it runs from, and its default command (a run of the sample).
FROM runtime AS reference
COPY compare/ compare/
# make docker-all PIPELINE=p's plan and verdict (containers/pipeline.sh): make all's own code.
COPY scripts/make_all.py scripts/pipeline_all.py scripts/
CMD ["python", "-m", "parity", "--input-path", "data/synthetic_events.csv", "--output-path", "output/reference_output.parquet"]

FROM runtime AS prefect
COPY prefect/ prefect/
CMD ["python", "prefect/adapter.py", "--input-path", "data/synthetic_events.csv", "--output-path", "output/prefect_output.parquet"]

FROM runtime AS dagster
COPY dagster/ dagster/
CMD ["python", "dagster/adapter.py", "--input-path", "data/synthetic_events.csv", "--output-path", "output/dagster_output.parquet"]

FROM runtime AS airflow
COPY airflow/ airflow/
# Airflow refuses to run without a user name, and a `--user` from the host has none in
# /etc/passwd: getpass reads $USER first.
ENV USER=etl
CMD ["python", "airflow/adapter.py", "--input-path", "data/synthetic_events.csv", "--output-path", "output/airflow_output.parquet"]

# The image WRAPPER names.
FROM ${WRAPPER:-reference}
