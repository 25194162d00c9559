"""The generic Dagster adapter (dagster/adapter.py) on the contract's example pipeline, driven as
a user drives it: its script in the Dagster environment, against the reference runner's bytes.

What Dagster itself did (its config schema, its event log) is read through Dagster's own API,
in the Dagster environment, from a Dagster home that belongs to this module alone.
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import PROJECT

pytestmark = pytest.mark.orchestrators

DAGSTER_PYTHON = str(PROJECT / ".venvs" / "dagster" / "bin" / "python")
ADAPTER = str(PROJECT / "dagster" / "adapter.py")
ORDERS = PROJECT / "tests" / "pipelines" / "orders"
STAGING = str(PROJECT / ".state" / "staging")
FAIL = {"PARITY_FAIL_STEP": "daily_revenue"}

# Dagster's own record of this module's runs, newest first: each run's creation time, status,
# tags and the (event type, step) of every event in its event log.
RECORD = """
import json, dagster as dg
instance = dg.DagsterInstance.get()
print(json.dumps([
    {"run_id": record.dagster_run.run_id, "job": record.dagster_run.job_name,
     "created": record.create_timestamp.timestamp(),
     "status": record.dagster_run.status.value, "tags": dict(record.dagster_run.tags),
     "events": [[entry.dagster_event.event_type_value, entry.dagster_event.step_key]
                for entry in instance.all_logs(record.dagster_run.run_id) if entry.dagster_event]}
    for record in instance.get_run_records()
]))
"""


# The definitions the adapter builds for a pipeline file: the parameters as Dagster's run config
# schema describes them, the ops with their inputs and retry policies, the partitioning.
SCHEMA = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("parity_dagster_adapter", sys.argv[1])
adapter = importlib.util.module_from_spec(spec)
spec.loader.exec_module(adapter)
from parity.loader import load

defs = adapter.build_definitions(load(sys.argv[2])[0])
defs.validate_loadable(defs)  # what `dagster dev` checks when it loads them
job = defs.resolve_job_def("orders_job")
root = job.run_config_schema.config_type
params = root.fields["resources"].config_type.fields["params"].config_type.fields["config"]

def kind(config_type):
    if config_type.kind.name == "NONEABLE":
        return {**kind(config_type.inner_type), "nullable": True}
    if config_type.kind.name == "SCALAR_UNION":  # Dagster's StringSource, IntSource, ...
        return kind(config_type.scalar_type)
    return {"type": config_type.given_name, "nullable": False}

print(json.dumps({
    "parameters": {
        name: {**kind(field.config_type), "required": field.is_required,
               "default": field.default_value if field.default_provided else "<none>",
               "description": field.description}
        for name, field in params.config_type.fields.items()
    },
    "ops": {
        node.name: {"inputs": sorted(node.definition.input_dict),
                    "retries": [node.definition.retry_policy.max_retries,
                                node.definition.retry_policy.delay]
                    if node.definition.retry_policy else None}
        for node in job.graph.nodes
    },
    "edges": sorted([node.alias, up.node] for node, inputs in job.graph.dependencies.items()
                    for up in inputs.values()),
    "partitions": type(job.partitions_def).__name__,
}, default=str))
"""


# The Definitions `PIPELINE=p dagster dev -f dagster/adapter.py` loads: the module imported with
# PIPELINE set, its `defs` checked as Dagster checks what it loads.
LOAD = """
import importlib.util, json, os, sys
import dagster as dg
spec = importlib.util.spec_from_file_location("parity_dagster_adapter", sys.argv[1])
adapter = importlib.util.module_from_spec(spec)
spec.loader.exec_module(adapter)
defs = adapter.defs
defs.validate_loadable(defs)
"""

# Its assets as Dagster's asset graph has them: key, upstream keys, partitions; and its jobs.
ASSETS = LOAD + """
graph = defs.resolve_asset_graph()
job = defs.resolve_job_def(sys.argv[2])
def partitions(definition):
    return definition and [type(definition).__name__, str(definition.start.date()),
                           definition == job.partitions_def]
print(json.dumps({
    "assets": {"/".join(key.path): {"deps": sorted("/".join(up.path) for up in node.parent_keys),
                                    "partitions": partitions(node.partitions_def)}
               for key, node in ((key, graph.get(key)) for key in graph.get_all_asset_keys())},
    "jobs": sorted(job.name for job in defs.get_repository_def().get_all_jobs()),
    "job_partitions": partitions(job.partitions_def),
}))
"""

# One in-process materialization of every asset (dg.materialize) with the given parameters,
# the published files under argv[3]: what Dagster recorded, and where each step staged.
MATERIALIZE = LOAD + """
[assets] = defs.assets
graph = assets.node_def.name
result = dg.materialize(
    [assets], run_config={
        "ops": {graph: {"ops": {"publish_assets": {"config": {"output_dir": sys.argv[3]}}}}},
        "resources": {"params": {"config": json.loads(sys.argv[2])}}},
    raise_on_error=False)
print(json.dumps({
    "success": result.success, "run_id": result.run_id,
    "materialized": {"/".join(event.asset_key.path): event.materialization.metadata["sha256"].text
                     for event in result.get_asset_materialization_events()},
    "staged": [result.output_for_node(f"{graph}.{node.name}")["path"]
               for node in assets.node_def.nodes if node.name != "publish_assets"],
}))
"""

SHOP = PROJECT / "examples" / "shop"

# A pipeline whose published steps read each other through one that publishes nothing, and one
# step publishing two named results; no partition.
LINEAGE = """
import pandas as pd
from parity import Output, Pipeline, step

@step
def raw(orders_csv: str) -> pd.DataFrame:
    return pd.read_csv(orders_csv, dtype=str)

@step
def cleaned(raw: pd.DataFrame) -> pd.DataFrame:
    return raw

@step
def totals(cleaned: pd.DataFrame) -> pd.DataFrame:
    return cleaned

@step
def split(totals: pd.DataFrame, raw: pd.DataFrame) -> dict:
    return {"big": totals, "small": raw}

pipeline = Pipeline(
    "lineage", steps=[raw, cleaned, totals, split],
    outputs=[Output(name, key=["order_id"])
             for name in ("raw", "totals", "split.big", "split.small")],
)
"""


@pytest.fixture(scope="module")
def place(tmp_path_factory) -> dict[str, Path]:
    """The example pipeline and its sample in a folder of their own, and a Dagster home."""
    root = tmp_path_factory.mktemp("adapter_dagster")
    folder = root / "pipeline"
    folder.mkdir()
    for name in ("orders.py", "orders.csv"):
        shutil.copy(ORDERS / name, folder / name)
    (folder / "no_amount.csv").write_text("order_id,order_date,customer_id\no1,2024-01-01,c1\n")
    home = root / "dagster-home"
    home.mkdir()
    return {"folder": folder, "home": home}


def _start(command: list[str], place: dict, env: dict | None = None) -> subprocess.Popen:
    environment = {**os.environ, "ETL_STAGING_ROOT": STAGING, "DAGSTER_HOME": str(place["home"])}
    for name in ("PARITY_FAIL_STEP", "PARITY_FAIL_ATTEMPTS"):
        environment.pop(name, None)
    return subprocess.Popen(
        command, cwd=place["folder"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**environment, **(env or {})},
    )  # fmt: skip


def _finish(process: subprocess.Popen) -> subprocess.CompletedProcess:
    try:
        stdout, stderr = process.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def dagster(place: dict, code: str, *args: str, env: dict | None = None) -> object:
    """What a snippet run in the Dagster environment prints, as JSON."""
    result = _finish(_start([DAGSTER_PYTHON, "-c", code, *args], place, env))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


CASES = {  # the byte-for-byte comparisons with the reference runner
    "sample": ["run"],
    "date": ["run", "--date", "2024-01-03"],
    "params": ["run", "--params", '{"orders_csv": "orders.csv", "min_amount": 8}'],
    "backfill": ["backfill", "--start", "2024-01-01", "--end", "2024-01-03"],
}
FAILURES = {  # adapter runs only: (arguments, environment)
    "retried": (["run"], {**FAIL, "PARITY_FAIL_ATTEMPTS": "2"}),
    "exhausted": (["run"], {**FAIL, "PARITY_FAIL_ATTEMPTS": "3"}),
    "input_error": (["run", "--params", '{"orders_csv": "no_amount.csv"}'], None),
    "wrong_type": (["run", "--params", '{"orders_csv": "orders.csv", "min_amount": "8"}'], None),
}


@pytest.fixture(scope="module")
def outcome(place) -> dict[str, tuple[subprocess.CompletedProcess, list[dict]]]:
    """Each scenario's adapter run, one after another, with the runs Dagster recorded while it
    lasted (read once, at the end); the reference runner's runs go on meanwhile."""
    references = [_start([sys.executable, "-m", "parity", command, "orders.py", *options,
                          "--output-dir", f"ref-{case}"], place, {"PYTHONPATH": str(PROJECT)})
                  for case, (command, *options) in CASES.items()]  # fmt: skip
    scenarios = {**{case: (args, None) for case, args in CASES.items()}, **FAILURES}
    windows = {}
    for name, ((command, *options), env) in scenarios.items():
        started = time.time()
        process = _start([DAGSTER_PYTHON, ADAPTER, command, "orders.py", *options,
                          "--output-dir", f"dagster-{name}"], place, env)  # fmt: skip
        windows[name] = (_finish(process), started, time.time())
    for process in references:
        expected = _finish(process)
        assert expected.returncode == 0, expected.stderr
    record = dagster(place, RECORD)
    return {name: (result, [run for run in record if started <= run["created"] <= ended])
            for name, (result, started, ended) in windows.items()}  # fmt: skip


def attempts(run: dict, step: str) -> int:
    """Dagster's count of a step's attempts in a run: its start plus each restart."""
    return sum(kind in ("STEP_START", "STEP_RESTARTED") and key == step
               for kind, key in run["events"])  # fmt: skip


def parquet_files(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in folder.rglob("*.parquet")}


def manifests(folder: Path) -> list[dict]:
    return [json.loads(path.read_text()) for path in sorted(folder.rglob("manifest.json"))]


@pytest.mark.parametrize("case", CASES)
def test_outputs_are_the_reference_runners_bytes(place, outcome, case):
    result, runs = outcome[case]
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    ours, theirs = place["folder"] / f"dagster-{case}", place["folder"] / f"ref-{case}"
    want, got = parquet_files(theirs), parquet_files(ours)
    assert want and sorted(got) == sorted(want)
    assert all(got[name] == want[name] for name in want), "parquet bytes differ"
    written, expected = manifests(ours), manifests(theirs)
    assert len(written) == len(expected) == (3 if case == "backfill" else 1)
    for manifest, expected_manifest in zip(written, expected, strict=True):
        assert manifest["wrapper"]["name"] == "dagster"
        assert manifest["wrapper"]["version"].startswith("1.13.")
        for field in ("parameters", "inputs", "outputs", "attempts"):
            assert manifest[field] == expected_manifest[field], field
    assert all(run["status"] == "SUCCESS" and run["job"] == "orders_job" for run in runs)
    if case != "backfill":
        assert [run["run_id"] for run in runs] == [written[0]["wrapper"]["run_id"]]
        return
    # The backfill: the date-independent step ran once, the dated one in a partition run a date.
    assert len(runs) == 4
    assert sum(attempts(run, "orders") for run in runs) == 1
    dated = [run for run in runs if attempts(run, "daily_revenue")]
    assert sorted(run["tags"].get("dagster/partition") for run in dated) == [
        "2024-01-01", "2024-01-02", "2024-01-03"]  # fmt: skip
    assert sorted(run["run_id"] for run in dated) == sorted(
        manifest["wrapper"]["run_id"] for manifest in written)  # fmt: skip


def test_parameters_are_dagsters_own_typed_config(place):
    found = dagster(place, SCHEMA, ADAPTER, str(place["folder"] / "orders.py"))
    parameters = found["parameters"]
    assert sorted(parameters) == ["date", "min_amount", "orders_csv"]
    assert parameters["orders_csv"] | {"description": None} == {
        "type": "String", "nullable": False, "required": True, "default": "<none>",
        "description": None}  # fmt: skip
    assert parameters["min_amount"]["type"] == "Int"
    assert parameters["min_amount"]["required"] is False
    assert parameters["min_amount"]["default"] == 0
    date = parameters["date"]
    assert (date["type"], date["nullable"], date["required"]) == ("String", True, False)
    assert date["default"] is None
    assert "YYYY-MM-DD" in date["description"]
    # One op per step, named by it, the dependencies as edges, retries as Dagster's own policy.
    assert found["ops"] == {
        "orders": {"inputs": [], "retries": [0, 0.0]},
        "daily_revenue": {"inputs": ["orders"], "retries": [2, 1.0]},
        "publish": {"inputs": ["daily_revenue", "orders"], "retries": None},
    }
    assert found["edges"] == [["daily_revenue", "orders"], ["publish", "daily_revenue"],
                              ["publish", "orders"]]  # fmt: skip
    assert found["partitions"] == "DailyPartitionsDefinition"


def test_transient_failures_are_retried_by_dagster(place, outcome):
    result, [run] = outcome["retried"]
    assert result.returncode == 0, result.stderr
    manifest = json.loads((place["folder"] / "dagster-retried" / "manifest.json").read_text())
    assert manifest["attempts"] == {"orders": 1, "daily_revenue": 3}
    assert run["run_id"] == manifest["wrapper"]["run_id"]
    assert attempts(run, "daily_revenue") == 3
    assert attempts(run, "orders") == 1


def test_retries_used_up_fail_in_one_line_naming_the_step(place, outcome):
    result, [run] = outcome["exhausted"]
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "error: daily_revenue: injected transient failure on attempt 3 (PARITY_FAIL_ATTEMPTS=3)"
    ]
    assert run["status"] == "FAILURE"
    assert attempts(run, "daily_revenue") == 3
    assert not (place["folder"] / "dagster-exhausted" / "daily_revenue.parquet").exists()


def test_input_error_exits_2_and_is_never_retried(place, outcome):
    result, [run] = outcome["input_error"]
    assert result.returncode == 2
    path = place["folder"] / "no_amount.csv"
    assert result.stderr.splitlines() == [f"error: step 'orders': {path}: no amount column"]
    assert run["status"] == "FAILURE"
    assert attempts(run, "orders") == 1
    assert attempts(run, "daily_revenue") == 0


def test_a_parameter_of_the_wrong_type_is_refused_before_dagster_runs(place, outcome):
    result, runs = outcome["wrong_type"]
    assert result.returncode == 2
    assert result.stderr.splitlines() == ['error: PARAMS: min_amount: "8" is not a whole number']
    assert runs == []
    assert not (place["folder"] / "dagster-wrong_type").exists()


def test_the_loaded_definitions_hold_an_asset_per_declared_output(place):
    found = dagster(place, ASSETS, ADAPTER, "shop_job", env={"PIPELINE": str(SHOP / "shop.py")})
    daily = ["DailyPartitionsDefinition", "2000-01-01", True]  # the job's own partitions
    assert found["assets"] == {
        "shop/category_sales": {"deps": [], "partitions": daily},
        "shop/product_sales": {"deps": [], "partitions": daily},
    }
    assert found["job_partitions"] == daily
    assert "shop_job" in found["jobs"]


def test_asset_deps_are_the_declared_dependencies_between_outputs(place, tmp_path):
    (tmp_path / "lineage.py").write_text(LINEAGE)
    found = dagster(place, ASSETS, ADAPTER, "lineage_job",
                    env={"PIPELINE": str(tmp_path / "lineage.py")})  # fmt: skip
    # totals reads raw through `cleaned`, which publishes nothing; split reads totals and raw.
    assert found["assets"] == {
        "lineage/raw": {"deps": [], "partitions": None},
        "lineage/totals": {"deps": ["lineage/raw"], "partitions": None},
        "lineage/split/big": {"deps": ["lineage/raw", "lineage/totals"], "partitions": None},
        "lineage/split/small": {"deps": ["lineage/raw", "lineage/totals"], "partitions": None},
    }
    assert found["job_partitions"] is None
    assert "lineage_job" in found["jobs"]


def test_materializing_the_assets_publishes_the_golden_bytes(place, tmp_path):
    staging_root = tmp_path / "staging"
    params = {"orders_csv": str(SHOP / "orders.csv"), "products_csv": str(SHOP / "products.csv")}
    found = dagster(place, MATERIALIZE, ADAPTER, json.dumps(params), str(tmp_path / "out"),
                    env={"PIPELINE": str(SHOP / "shop.py"),
                         "ETL_STAGING_ROOT": str(staging_root)})  # fmt: skip
    assert found["success"]
    golden = json.loads((SHOP / "shop.golden.json").read_text())
    want = {key.removeprefix("run/"): digest for key, digest in golden.items()
            if key.startswith("run/")}  # fmt: skip
    published = {path.stem: hashlib.sha256(path.read_bytes()).hexdigest()
                 for path in (tmp_path / "out").glob("*.parquet")}  # fmt: skip
    assert published == want
    assert found["materialized"] == {f"shop/{name}": digest for name, digest in want.items()}
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["wrapper"]["run_id"] == found["run_id"]
    # Every step staged its result in the run's own area, which went with the run.
    assert len(found["staged"]) == 5
    areas = {Path(path).relative_to(staging_root).parts[0] for path in found["staged"]}
    [area] = areas
    assert area.startswith(f"dagster-{found['run_id']}-")
    assert list(staging_root.iterdir()) == []


def test_dagsters_own_materialize_command_publishes_a_dates_golden_bytes(place, tmp_path):
    """`dagster asset materialize -f dagster/adapter.py` selects the assets out of the loaded
    Definitions' asset job, as the UI's Materialize does, for one partition: that date's
    backfill bytes, and its staging gone with the run."""
    home, staging_root, out = tmp_path / "home", tmp_path / "staging", tmp_path / "out"
    home.mkdir()
    shutil.copyfile(PROJECT / "dagster" / "dagster.yaml", home / "dagster.yaml")  # no telemetry
    config = {
        "ops": {"shop_assets": {"ops": {"publish_assets": {"config": {"output_dir": str(out)}}}}},
        "resources": {"params": {"config": {"orders_csv": str(SHOP / "orders.csv"),
                                            "products_csv": str(SHOP / "products.csv")}}},
    }  # fmt: skip
    command = [str(PROJECT / ".venvs" / "dagster" / "bin" / "dagster"), "asset", "materialize",
               "-f", ADAPTER, "--select", 'key:"shop/*"', "--partition", "2024-03-02",
               "--config-json", json.dumps(config)]  # fmt: skip
    result = _finish(_start(command, place, {
        "PIPELINE": str(SHOP / "shop.py"), "DAGSTER_HOME": str(home),
        "ETL_STAGING_ROOT": str(staging_root)}))  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    golden = json.loads((SHOP / "shop.golden.json").read_text())
    want = {key.removeprefix("backfill/2024-03-02/"): digest for key, digest in golden.items()
            if key.startswith("backfill/2024-03-02/")}  # fmt: skip
    published = {path.stem: hashlib.sha256(path.read_bytes()).hexdigest()
                 for path in out.glob("*.parquet")}  # fmt: skip
    assert published == want
    assert json.loads((out / "manifest.json").read_text())["parameters"]["date"] == "2024-03-02"
    assert list(staging_root.iterdir()) == []


# The deployed location's module, loaded as Dagster's code server loads it, with the registry
# (stack.pipelines.registered) holding shop and a pipeline Dagster refuses to build.
LOCATION = """
import contextlib, io, json, runpy, sys
project = sys.argv[3]
sys.path[:0] = [project + "/dagster", project]
import stack.pipelines
from parity.loader import load
good, _ = load(sys.argv[1])
bad, _ = load(sys.argv[2])
stack.pipelines.registered = lambda: {"bad": bad, "shop": good}
said = io.StringIO()
with contextlib.redirect_stderr(said):
    names = runpy.run_path(project + "/dagster/deployed_pipelines.py")
print(json.dumps({"repositories": sorted(n for n in names if n.endswith("_repository")),
                  "stderr": said.getvalue()}))
"""
REFUSED = """
import pandas as pd
from parity import Output, Pipeline, step


@step
def publish_assets() -> pd.DataFrame:
    return pd.DataFrame({"k": [1]})


pipeline = Pipeline("bad", steps=[publish_assets], outputs=[Output("publish_assets", key="k")])
"""


def test_a_pipeline_dagster_cannot_build_is_left_out_of_the_location_not_the_others(
    place, tmp_path
):
    (tmp_path / "bad.py").write_text(REFUSED)
    found = dagster(place, LOCATION, str(SHOP / "shop.py"), str(tmp_path / "bad.py"), str(PROJECT))
    assert found["repositories"] == ["shop_repository"]
    assert found["stderr"].startswith("stack pipelines: bad: left out of Dagster: pipeline 'bad':")
