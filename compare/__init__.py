"""compare: the parity verdict over the wrappers' outputs (pyarrow only, no orchestrator)."""

# The project's wrappers, as the Makefile's WRAPPERS names them: what the gate expects unless
# told otherwise (`--expect`), and the only names it takes as a wrapper's outputs.
KNOWN_WRAPPERS = ("reference", "prefect", "dagster", "airflow")
