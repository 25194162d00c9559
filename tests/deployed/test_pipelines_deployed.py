"""A declared pipeline of a user's, run through each orchestrator of the deployed stack
(`make <wrapper> MODE=deployed PIPELINE=p`, and its backfill), writes the bytes its golden file
records; two pipelines run side by side, each untouched by the other.

The pipelines: a copy of tests/pipelines/orders/ in a temporary folder outside the project,
as a user's would be, and examples/shop/shop.py. Their golden files (<name>.golden.json,
beside each) are the independent record: sha256 of each output, written by `make bless`
from the reference runner. One stack for the whole module; per orchestrator, the four runs
(each pipeline's run and backfill) are started at once.

A run leaves nothing staged: a Prefect flow run's results, whether it succeeded or failed,
are gone when it ends; an Airflow run whose command was killed stops in one line when a later
command clears the staging area its workers stage in.
"""

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from parity.staging import clear_dead_areas
from tests.conftest import ORDERS, PROJECT, user_environment
from tests.deployed.conftest import dagster_headers, http_status, settings, up
from tests.deployed.test_airflow_deployed import api as airflow_api

pytestmark = pytest.mark.deployed

SHOP = PROJECT / "examples" / "shop" / "shop.py"
STAGING = PROJECT / ".state" / "staging"  # the stack's workers' staging root (supervisord.conf)
DATES = {"orders": ("2024-01-01", "2024-01-03"), "shop": ("2024-03-01", "2024-03-03")}


@pytest.fixture(scope="module")
def pipelines(tmp_path_factory) -> dict[str, Path]:
    """Each pipeline's file, by name: orders copied outside the project, shop in place."""
    folder = tmp_path_factory.mktemp("my-pipelines")
    for name in ("orders.py", "orders.csv", "orders.golden.json"):
        shutil.copy(ORDERS / name, folder / name)
    assert not folder.is_relative_to(PROJECT)
    up()
    return {"orders": folder / "orders.py", "shop": SHOP}


def golden(pipeline: Path) -> dict[str, str]:
    return json.loads(pipeline.with_name(f"{pipeline.stem}.golden.json").read_text())


def written(run_dir: Path, backfill_dir: Path) -> dict[str, str]:
    """sha256 of each output, by the golden file's key (run/<output>, backfill/<D>/<output>)."""
    found = {f"run/{path.stem}": path for path in run_dir.glob("*.parquet")}
    found |= {f"backfill/{path.parent.name}/{path.stem}": path
              for path in backfill_dir.glob("*/*.parquet")}  # fmt: skip
    return {key: hashlib.sha256(path.read_bytes()).hexdigest() for key, path in found.items()}


@pytest.mark.parametrize("wrapper", ["prefect", "dagster", "airflow"])
def test_two_pipelines_side_by_side_write_their_golden_bytes(wrapper, pipelines, tmp_path):
    commands = {}
    for name, path in pipelines.items():
        start, end = DATES[name]
        common = ["make", "--no-print-directory", "MODE=deployed", f"PIPELINE={path}"]
        commands[f"{name} run"] = [*common, wrapper, f"OUTPUT_DIR={tmp_path / name / 'run'}"]
        commands[f"{name} backfill"] = [*common, f"backfill-{wrapper}", f"START={start}",
                                        f"END={end}", f"OUTPUT_DIR={tmp_path / name}"]  # fmt: skip
    started = {label: subprocess.Popen(command, cwd=PROJECT, env=user_environment(),
                                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
               for label, command in commands.items()}  # fmt: skip
    outputs = {label: process.communicate(timeout=900)[0] for label, process in started.items()}
    for label, process in started.items():
        assert process.returncode == 0, f"{label}:\n{outputs[label]}"
    for name, path in pipelines.items():
        assert written(tmp_path / name / "run", tmp_path / name / wrapper) == golden(path), name
    if wrapper == "prefect":  # each flow run held its staged results in an area of its own
        assert staged_by(flow_runs("\n".join(outputs.values()))) == []


# The pipelines location's repository of a pipeline, as the webserver serves it to its UI.
ASSETS = """
query Assets($selector: RepositorySelector!) {
  repositoryOrError(repositorySelector: $selector) {
    __typename
    ... on Repository {
      jobs { name }
      assetNodes { assetKey { path } dependencyKeys { path }
                   partitionDefinition { type description } }
    }
  }
}"""


# A materialization of assets, as the UI's Materialize launches it: the asset job of the
# repository, the assets selected, a partition as the run's tag.
MATERIALIZE = """
mutation Materialize($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on Error { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}"""
RUN_STATUS = """query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }"""


def dagster_graphql(query: str, **variables: object) -> dict:
    url = f"http://127.0.0.1:{settings()['DAGSTER_PORT']}/graphql"
    status, answer = http_status(url, {"query": query, "variables": variables}, dagster_headers())
    assert status == 200
    decoded = json.loads(answer)
    assert "errors" not in decoded, decoded["errors"]
    return decoded["data"]


@pytest.fixture(scope="module")
def dagster_shop_runs(pipelines, tmp_path_factory) -> dict[str, tuple[int, str, list[str]]]:
    """A deployed Dagster run, backfill and failing run of shop, at once: by label, the
    command's exit status, its output and the ids of the runs it launched."""
    folder = tmp_path_factory.mktemp("dagster-shop")
    shop, (start, end) = pipelines["shop"], DATES["shop"]
    common = ["make", "--no-print-directory", "MODE=deployed", f"PIPELINE={shop}"]
    commands = {
        "run": ([*common, "dagster", f"OUTPUT_DIR={folder / 'run'}"], {}),
        "backfill": ([*common, "backfill-dagster", f"START={start}", f"END={end}",
                      f"OUTPUT_DIR={folder}"], {}),
        "failed": ([*common, "dagster", f"OUTPUT_DIR={folder / 'failed'}"],
                   {"PARITY_FAIL_STEP": "category_sales", "PARITY_FAIL_ATTEMPTS": "1"}),
    }  # fmt: skip
    started = {label: subprocess.Popen(command, cwd=PROJECT, env={**user_environment(), **env},
                                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
               for label, (command, env) in commands.items()}  # fmt: skip
    found = {}
    for label, process in started.items():
        output = process.communicate(timeout=900)[0]
        launched = re.findall(r"launched shop_job(?: \S+)? as run (\S+)", output)
        found[label] = (process.returncode, output, launched)
    return found


def test_dagster_runs_leave_no_staged_results_after_success_or_failure(dagster_shop_runs):
    """When they have ended, the staging root of the stack's run workers (.state/staging, as
    dagster/deployed/supervisord.conf sets it) holds nothing of theirs: a run's area is named
    dagster-<run id>-..."""
    outcome = {label: code for label, (code, _, _) in dagster_shop_runs.items()}
    assert outcome == {"run": 0, "backfill": 0, "failed": 2}, dagster_shop_runs  # make: 2
    assert "injected transient failure on attempt 1" in dagster_shop_runs["failed"][1]
    launched = {label: ids for label, (_, _, ids) in dagster_shop_runs.items()}
    assert [len(ids) for ids in launched.values()] == [1, 3, 1], dagster_shop_runs
    staging = Path(settings()["STACK_PROJECT"]) / ".state" / "staging"
    left = [entry.name for entry in staging.iterdir()
            if any(entry.name.startswith(f"dagster-{run}-") for ids in launched.values()
                   for run in ids)]  # fmt: skip
    assert left == []


def test_the_pipelines_location_holds_the_pipelines_job_and_assets(dagster_shop_runs):
    """Once shop has run, the location `pipelines` serves its job and its assets, one per
    declared output with the daily partitions (dagster/adapter.py's build_definitions)."""
    assert dagster_shop_runs["run"][0] == 0, dagster_shop_runs["run"][1]
    selector = {"repositoryLocationName": "pipelines", "repositoryName": "shop"}
    repository = dagster_graphql(ASSETS, selector=selector)["repositoryOrError"]
    assets = {
        "/".join(node["assetKey"]["path"]): {
            "deps": sorted("/".join(key["path"]) for key in node["dependencyKeys"]),
            "partitions": node["partitionDefinition"]["type"],
            "daily": node["partitionDefinition"]["description"].startswith(
                "Daily, starting 2000-01-01"),
        }
        for node in repository["assetNodes"]
    }  # fmt: skip
    daily = {"deps": [], "partitions": "TIME_WINDOW", "daily": True}
    assert assets == {"shop/category_sales": daily, "shop/product_sales": daily}
    assert "shop_job" in {job["name"] for job in repository["jobs"]}


def test_materializing_shops_assets_in_the_location_writes_a_dates_golden_bytes(
    dagster_shop_runs, tmp_path
):
    """The assets of the location, materialized for one date in a launched run (a run worker
    of the stack), publish that date's golden bytes and leave no staging behind."""
    assert dagster_shop_runs["run"][0] == 0, dagster_shop_runs["run"][1]
    shop, day = PROJECT / "examples" / "shop", "2024-03-02"
    config = {
        "ops": {"shop_assets": {"ops": {"publish_assets": {"config": {
            "output_dir": str(tmp_path)}}}}},
        "resources": {"params": {"config": {"orders_csv": str(shop / "orders.csv"),
                                            "products_csv": str(shop / "products.csv")}}},
    }  # fmt: skip
    params = {
        "selector": {"repositoryLocationName": "pipelines", "repositoryName": "shop",
                     "jobName": "__ASSET_JOB",
                     "assetSelection": [{"path": ["shop", "category_sales"]},
                                        {"path": ["shop", "product_sales"]}]},
        "runConfigData": config,
        "executionMetadata": {"tags": [{"key": "dagster/partition", "value": day}]},
    }  # fmt: skip
    launched = dagster_graphql(MATERIALIZE, params=params)["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run = launched["run"]["runId"]
    deadline, status = time.monotonic() + 300, None
    while time.monotonic() < deadline:
        status = dagster_graphql(RUN_STATUS, id=run)["runOrError"]["status"]
        if status in ("SUCCESS", "FAILURE", "CANCELED"):
            break
        time.sleep(1)
    assert status == "SUCCESS"
    want = {key.split("/")[-1]: digest for key, digest in golden(SHOP).items()
            if key.startswith(f"backfill/{day}/")}  # fmt: skip
    published = {path.stem: hashlib.sha256(path.read_bytes()).hexdigest()
                 for path in tmp_path.glob("*.parquet")}  # fmt: skip
    assert published == want
    staging = Path(settings()["STACK_PROJECT"]) / ".state" / "staging"
    assert [entry.name for entry in staging.iterdir()
            if entry.name.startswith(f"dagster-{run}-")] == []  # fmt: skip


def flow_runs(output: str) -> list[str]:
    """The ids of the flow runs a deployed Prefect command says it submitted."""
    return re.findall(r"as flow run ([0-9a-f-]{36})\b", output)


def staged_by(flow_run_ids: list[str]) -> list[str]:
    """What is left under the staging root of these flow runs' staged results: the adapter
    names a flow run's folder after its id (prefect-<id>-…), wherever it is made."""
    assert flow_run_ids
    left = []  # os.walk passes over what other runs remove meanwhile; rglob would raise
    for folder, subfolders, files in os.walk(STAGING):
        left += [os.path.join(folder, name) for name in subfolders + files
                 if any(run_id in name for run_id in flow_run_ids)]  # fmt: skip
    return left


def test_a_failed_prefect_backfill_leaves_no_staged_files(pipelines, tmp_path):
    """Every date's step fails for good, after its shared step's results were staged: the
    command ends with the step's one line, and the flow run's staged files are gone."""
    start, end = DATES["orders"]
    failed = subprocess.run(
        ["make", "--no-print-directory", "MODE=deployed", f"PIPELINE={pipelines['orders']}",
         "backfill-prefect", f"START={start}", f"END={end}", f"OUTPUT_DIR={tmp_path}"],
        cwd=PROJECT, capture_output=True, text=True, check=False, timeout=900,
        env={**user_environment(), "PARITY_FAIL_STEP": "daily_revenue",
             "PARITY_FAIL_ATTEMPTS": "9"},
    )  # fmt: skip
    assert failed.returncode == 2, failed.stdout + failed.stderr
    assert "error: daily_revenue: injected transient failure on attempt 3" in failed.stderr
    assert staged_by(flow_runs(failed.stdout)) == []
    assert list(tmp_path.rglob("*.parquet")) == []


GATED = '''
import os
import time

import pandas as pd
from parity import Output, Pipeline, step


@step
def held(gate: str) -> pd.DataFrame:
    """Says it has started, then waits for the test to let it finish."""
    open(os.path.join(gate, "started"), "w").close()
    deadline = time.monotonic() + 600
    while not os.path.exists(os.path.join(gate, "go")):
        if time.monotonic() > deadline:
            raise RuntimeError("the test never let this step finish")
        time.sleep(0.2)
    return pd.DataFrame({"k": [1, 2]})


@step
def after(held: pd.DataFrame) -> pd.DataFrame:
    return held


pipeline = Pipeline("gated", steps=[held, after], outputs=[Output("after", key=["k"])])
'''


def test_a_killed_commands_airflow_run_stops_when_its_staging_area_is_cleared(pipelines, tmp_path):
    """The command that asked for a deployed Airflow run is killed while a task works; a
    later command clears its staging area as dead (parity.staging), the area the workers
    stage in. The working task must not stage into the cleared area as if nothing happened,
    nor the run go on: it fails in one line, and nothing is left staged or published."""
    pipeline, gate, output = tmp_path / "gated.py", tmp_path / "gate", tmp_path / "out"
    pipeline.write_text(GATED)
    gate.mkdir()
    command = subprocess.Popen(
        ["make", "--no-print-directory", "MODE=deployed", f"PIPELINE={pipeline}", "airflow",
         f"OUTPUT_DIR={output}", f"PARAMS={json.dumps({'gate': str(gate)})}"],
        cwd=PROJECT, env=user_environment(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, start_new_session=True,
    )  # fmt: skip
    run_id, seen = None, []
    for line in command.stdout:
        seen.append(line)
        if "triggered dag run " in line:
            run_id = line.split("triggered dag run ")[1].split()[0]
            break
    assert run_id, "".join(seen)
    deadline = time.monotonic() + 300
    while not (gate / "started").exists():
        assert time.monotonic() < deadline, "the step never started"
        time.sleep(0.2)
    os.killpg(command.pid, signal.SIGKILL)
    command.communicate()
    area = airflow_api(f"/api/v2/dags/gated/dagRuns/{run_id}")["conf"]["staging_area"]
    assert area in clear_dead_areas(os.path.dirname(area))  # what the next command does first
    (gate / "go").touch()
    deadline = time.monotonic() + 300
    while (state := airflow_api(f"/api/v2/dags/gated/dagRuns/{run_id}")["state"]) not in (
        "success", "failed"
    ):  # fmt: skip
        assert time.monotonic() < deadline, f"run {run_id} still {state}"
        time.sleep(1)
    assert state == "failed"
    error = airflow_api(f"/api/v2/dags/gated/dagRuns/{run_id}/taskInstances/held/xcomEntries/"
                        "error?deserialize=true")["value"]  # fmt: skip
    error = json.loads(error) if isinstance(error, str) else error
    assert error["message"] == (
        f"step 'held': {area}: the command that asked for this run holds its staging area "
        "no more (it ended or was killed)"
    )
    assert not os.path.exists(area)
    assert list(output.rglob("*.parquet")) == []
