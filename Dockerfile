# The reference runner and the parity verdict (shared_etl and compare, no orchestrator).
#   docker build -t parity-harness/reference .
#   docker run --rm --user "$(id -u):$(id -g)" -v "$PWD/data:/app/data:ro" \
#       -v "$PWD/output:/app/output" parity-harness/reference
# The wrappers' images (prefect/, airflow/, dagster/) are built the same way from this context.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ARG UV_VERSION=0.13.9
RUN pip install --no-cache-dir uv==${UV_VERSION}
WORKDIR /app
ENV UV_PROJECT_ENVIRONMENT=/opt/venv UV_PYTHON_DOWNLOADS=never
COPY pyproject.toml uv.lock ./
# The lock `make setup` installs, so this pyarrow writes the same bytes as the local one:
# first its dependencies (a layer kept while only the code changes), then the project itself,
# whose installed version every manifest records.
RUN uv sync --locked --compile-bytecode --no-default-groups --no-install-project
COPY README.md ./
COPY parity/ parity/
COPY shared_etl/ shared_etl/
COPY compare/ compare/
RUN uv sync --locked --compile-bytecode --no-default-groups --no-editable

FROM ${PYTHON_IMAGE}
RUN useradd --system --uid 10001 --no-create-home etl
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY compare/ compare/
# Writable by any user, so the image also runs as `--user "$(id -u)"`, who then owns what it
# writes to a mounted output/.
RUN mkdir --mode=1777 .state data output
ENV PATH=/opt/venv/bin:$PATH
USER 10001
CMD ["python", "-m", "shared_etl", "--input-path", "data/synthetic_events.csv", "--output-path", "output/reference_output.parquet"]
