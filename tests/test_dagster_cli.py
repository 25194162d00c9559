"""Dagster's own command line on the adapter's definitions of the events pipeline
(`PIPELINE=shared_etl.pipeline`, dagster/adapter.py), as docs/wrappers.md shows it for the
shop example: one date of its assets materialized writes the reference runner's bytes for
that date; and the definitions Dagster loads hold an op per declared step with its retry
policy, daily partitioned.

One-line errors, retries and kills of the same definitions, run by the adapter's own command,
are tests/test_dagster_runs.py's."""

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import PROJECT, SAMPLE, assert_same_parquet, run_reference

pytestmark = pytest.mark.orchestrators

DAGSTER = PROJECT / ".venvs" / "dagster" / "bin" / "dagster"
PYTHON = PROJECT / ".venvs" / "dagster" / "bin" / "python"
EVENTS = "shared_etl.pipeline"  # the events pipeline's module (parity.registry's default)


def dagster_environment(home: Path) -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "DAGSTER_HOME": str(home), "PIPELINE": EVENTS}


@pytest.fixture
def home(tmp_path) -> Path:
    """A Dagster home of the test's own, telemetry off (the project's dagster.yaml)."""
    folder = tmp_path / "dagster-home"
    folder.mkdir()
    (folder / "dagster.yaml").write_text((PROJECT / "dagster" / "dagster.yaml").read_text())
    return folder


def test_dagster_asset_materialize_of_a_date_writes_the_reference_bytes(home, tmp_path):
    one = tmp_path / "one.parquet"
    config = {
        "ops": {"events_daily_metrics_assets": {"ops": {"publish_assets": {"config": {
            "output_dir": str(one)}}}}},
        "resources": {"params": {"config": {"input_path": str(SAMPLE)}}},
    }  # fmt: skip
    result = subprocess.run(
        [str(DAGSTER), "asset", "materialize", "-f", "dagster/adapter.py",
         "--select", 'key:"events_daily_metrics/*"', "--partition", "2024-01-03",
         "--config-json", json.dumps(config)],
        cwd=PROJECT, env=dagster_environment(home), capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    expected = tmp_path / "reference-2024-01-03.parquet"
    reference = run_reference("--input-path", str(SAMPLE), "--output-path", str(expected),
                              "--date", "2024-01-03")  # fmt: skip
    assert reference.returncode == 0, reference.stderr
    assert_same_parquet(one, expected)
    manifest = json.loads((tmp_path / "one.manifest.json").read_text())
    assert manifest["parameters"]["date"] == "2024-01-03"


# The events pipeline's Definitions as `dagster dev -f dagster/adapter.py` loads them: its job's
# ops, their inputs and retry policies, its partitions, and the asset keys.
DEFINITIONS = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("parity_dagster_adapter", sys.argv[1])
adapter = importlib.util.module_from_spec(spec)
spec.loader.exec_module(adapter)
defs = adapter.defs
defs.validate_loadable(defs)
job = defs.resolve_job_def("events_daily_metrics_job")
print(json.dumps({
    "ops": {node.name: {"inputs": sorted(node.definition.input_dict),
                        "retries": [node.definition.retry_policy.max_retries,
                                    node.definition.retry_policy.delay]
                        if node.definition.retry_policy else None}
            for node in job.graph.nodes},
    "partitions": [type(job.partitions_def).__name__, str(job.partitions_def.start.date())],
    "assets": sorted("/".join(key.path) for key in defs.resolve_asset_graph().get_all_asset_keys()),
}, default=str))
"""


def test_the_events_definitions_are_an_op_per_step_with_its_retries_daily(home):
    result = subprocess.run(
        [str(PYTHON), "-c", DEFINITIONS, str(PROJECT / "dagster" / "adapter.py")],
        cwd=PROJECT, env=dagster_environment(home), capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    # The events retry policy: two retries, one second apart (docs/front-door.md).
    assert found["ops"] == {
        "validated": {"inputs": [], "retries": [2, 1.0]},
        "metrics": {"inputs": ["validated"], "retries": [2, 1.0]},
        "rejects": {"inputs": ["validated"], "retries": [0, 0.0]},
        "publish": {"inputs": ["metrics", "rejects", "validated"], "retries": None},
    }
    assert found["partitions"] == ["DailyPartitionsDefinition", "2000-01-01"]
    assert found["assets"] == ["events_daily_metrics/metrics", "events_daily_metrics/rejects"]
