"""The runtime (parity/): the contract's example pipeline, saved anywhere, runs as written
under the reference runner; declarations, parameters and results are checked once, in one
line each. Expected rows are worked out by hand from tests/pipelines/orders/orders.csv."""

import datetime as dt
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from parity import Output, Pipeline, step
from parity.binding import bind
from parity.errors import DeclarationError, ResultError, UsageError
from parity.loader import load
from parity.publication import output_table
from parity.results import restore, stage
from tests.conftest import PROJECT

COLUMNS = ["order_date", "customer_id", "amount"]
# Sums of orders.csv by (order_date, customer_id), sorted by that key.
ALL_DATES = [
    ("2024-01-01", "c1", 10), ("2024-01-01", "c2", 35), ("2024-01-02", "c1", 15),
    ("2024-01-03", "c1", 1), ("2024-01-03", "c3", 100),
]  # fmt: skip


def reference(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "parity", *args], cwd=cwd, capture_output=True, text=True,
        env={**os.environ, "PYTHONPATH": str(PROJECT), **(env or {})}, check=False,
    )  # fmt: skip


def rows(path: Path) -> list[tuple]:
    table = pq.read_table(path)
    assert table.column_names == COLUMNS
    return [tuple(row.values()) for row in table.to_pylist()]


def test_the_contract_example_saved_anywhere_runs_as_written(orders_folder, tmp_path):
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    result = reference("run", str(orders_folder / "orders.py"), "--output-dir", "out",
                       cwd=elsewhere)  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = elsewhere / "out"
    assert sorted(path.name for path in out.iterdir()) == ["daily_revenue.parquet",
                                                           "manifest.json"]  # fmt: skip
    assert rows(out / "daily_revenue.parquet") == ALL_DATES
    assert pq.read_schema(out / "daily_revenue.parquet").metadata is None
    manifest = json.loads((out / "manifest.json").read_text())
    sample = orders_folder / "orders.csv"
    assert manifest["inputs"] == {"orders_csv": {
        "path": str(sample), "sha256": hashlib.sha256(sample.read_bytes()).hexdigest(),
        "size_bytes": sample.stat().st_size,
    }}  # fmt: skip
    assert manifest["outputs"]["daily_revenue"]["key"] == ["order_date", "customer_id"]
    assert manifest["outputs"]["daily_revenue"]["sha256"] == hashlib.sha256(
        (out / "daily_revenue.parquet").read_bytes()
    ).hexdigest()
    assert manifest["parameters"] == {"orders_csv": str(sample), "date": None, "min_amount": 0}


def test_the_same_run_gives_the_same_bytes_from_any_folder(orders_folder, tmp_path):
    first = reference("run", "orders.py", "--output-dir", str(tmp_path / "a"), cwd=orders_folder)
    second = reference("run", str(orders_folder / "orders.py"), "--output-dir",
                       str(tmp_path / "b"), cwd=tmp_path)  # fmt: skip
    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    name = "daily_revenue.parquet"
    assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_params_and_date_reach_the_steps_typed(orders_folder):
    params = json.dumps({"orders_csv": "orders.csv", "min_amount": 8})
    result = reference("run", "orders.py", "--params", params, "--output-dir", "min8",
                       cwd=orders_folder)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert rows(orders_folder / "min8" / "daily_revenue.parquet") == [
        ("2024-01-01", "c1", 10), ("2024-01-01", "c2", 30), ("2024-01-02", "c1", 8),
        ("2024-01-03", "c3", 100),
    ]  # fmt: skip
    result = reference("run", "orders.py", "--date", "2024-01-03", "--output-dir", "day",
                       cwd=orders_folder)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert rows(orders_folder / "day" / "daily_revenue.parquet") == ALL_DATES[3:]


def test_a_backfill_writes_one_folder_per_date(orders_folder):
    result = reference("backfill", "orders.py", "--start", "2024-01-01", "--end", "2024-01-03",
                       "--output-dir", "backfill", cwd=orders_folder)  # fmt: skip
    assert result.returncode == 0, result.stderr
    by_date = {day: [row for row in ALL_DATES if row[0] == day]
               for day in ("2024-01-01", "2024-01-02", "2024-01-03")}  # fmt: skip
    for day, expected in by_date.items():
        assert rows(orders_folder / "backfill" / day / "daily_revenue.parquet") == expected
        manifest = json.loads((orders_folder / "backfill" / day / "manifest.json").read_text())
        assert manifest["parameters"]["date"] == day


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["--params", '{"orders_csv": "orders.csv", "min_amount": "8"}'],
         'error: PARAMS: min_amount: "8" is not a whole number'),
        (["--params", '{"orders_csv": "orders.csv", "colour": 1}'],
         "error: PARAMS: colour: no step takes such a parameter (the parameters of 'orders': "
         "date, min_amount, orders_csv)"),
        (["--params", "{}"], "error: PARAMS: orders_csv (str) is required"),
        (["--params", '{"orders_csv": "orders.csv", "date": "2024-01-01"}', "--date",
          "2024-01-02"], "error: DATE=2024-01-02 and a date in PARAMS: give the date once"),
        (["--params", "[1]"], "error: PARAMS must be a JSON object of names to values, not '[1]'"),
    ],
    ids=["wrong_type", "unknown", "missing", "date_twice", "not_an_object"],
)  # fmt: skip
def test_params_that_do_not_fit_are_refused_in_one_line_before_any_step(orders_folder, args,
                                                                         line):  # fmt: skip
    result = reference("run", "orders.py", *args, "--output-dir", "out", cwd=orders_folder)
    assert (result.returncode, result.stderr.splitlines()) == (2, [line])
    assert not (orders_folder / "out").exists() or not any((orders_folder / "out").iterdir())


def test_an_input_error_names_the_step_and_exits_2(orders_folder):
    (orders_folder / "bad.csv").write_text("order_id,order_date,customer_id\no1,2024-01-01,c1\n")
    params = json.dumps({"orders_csv": "bad.csv"})
    result = reference("run", "orders.py", "--params", params, "--output-dir", "out",
                       cwd=orders_folder)  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"error: step 'orders': {orders_folder / 'bad.csv'}: no amount column"
    ]


def test_an_injected_failure_fails_the_reference_runner_at_its_one_attempt(orders_folder):
    env = {"PARITY_FAIL_STEP": "daily_revenue", "PARITY_FAIL_ATTEMPTS": "1"}
    result = reference("run", "orders.py", "--output-dir", "out", cwd=orders_folder, env=env)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "error: daily_revenue: injected transient failure on attempt 1 (PARITY_FAIL_ATTEMPTS=1)"
    ]
    assert not (orders_folder / "out" / "daily_revenue.parquet").exists()


def test_importing_the_runtime_loads_no_orchestrator():
    code = (
        "import pkgutil, importlib, sys, parity\n"
        "for module in pkgutil.iter_modules(parity.__path__):\n"
        "    importlib.import_module('parity.' + module.name)\n"
        "print(sorted({name.split('.')[0] for name in sys.modules} & "
        "{'prefect', 'airflow', 'dagster', 'shared_etl', 'compare'}))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=PROJECT, capture_output=True,
                            text=True, check=False)  # fmt: skip
    assert (result.returncode, result.stdout.strip()) == (0, "[]"), result.stderr


# Each orchestrator folder's settings module, as a wrapper imports it before anything else (in
# a process that runs none of the folder's commands): one of its settings, where unset.
SETTINGS_MODULES = {
    "prefect": ("prefect_env", "PREFECT_HOME", PROJECT / ".state" / "prefect"),
    "dagster": ("dagster_env", "DAGSTER_HOME", PROJECT / ".state" / "dagster"),
    "airflow": ("airflow_env", "AIRFLOW_HOME", PROJECT / ".state" / "airflow-pipelines"),
}


@pytest.mark.parametrize("folder", sorted(SETTINGS_MODULES))
def test_a_settings_module_sets_its_orchestrators_settings_without_importing_it(folder):
    """It runs before the orchestrator's import, so the orchestrator reads what it set: if it
    imported the orchestrator itself, its settings would come too late."""
    module, variable, expected = SETTINGS_MODULES[folder]
    code = (
        f"import json, os, sys; sys.path.insert(0, {str(PROJECT / folder)!r})\n"
        f"import {module}\n"
        "print(json.dumps([sorted({name.split('.')[0] for name in sys.modules} & "
        f"{{'prefect', 'airflow', 'dagster'}}), os.environ[{variable!r}]]))"
    )
    env = {name: value for name, value in os.environ.items() if name != variable}
    result = subprocess.run([sys.executable, "-c", code], cwd=PROJECT, env=env,
                            capture_output=True, text=True, check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [[], str(expected)]


def test_a_settings_module_keeps_what_the_caller_set(tmp_path):
    code = (
        f"import os, sys; sys.path.insert(0, {str(PROJECT / 'dagster')!r})\n"
        "import dagster_env\n"
        "print(os.environ['DAGSTER_HOME'])"
    )
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
    result = subprocess.run([sys.executable, "-c", code], cwd=PROJECT, env=env,
                            capture_output=True, text=True, check=False)  # fmt: skip
    assert (result.returncode, result.stdout.strip()) == (0, str(tmp_path)), result.stderr


# Declarations: each refusal is one line naming the step and the parameter.


@step
def source(path: str) -> pd.DataFrame:
    return pd.DataFrame({"k": [1]})


def test_a_cycle_is_refused_naming_it():
    @step
    def first(second: pd.DataFrame) -> pd.DataFrame:
        return second

    @step
    def second(first: pd.DataFrame) -> pd.DataFrame:
        return first

    with pytest.raises(DeclarationError, match=r"^step 'first': its dependencies form a cycle: "
                                               r"first -> second -> first$"):  # fmt: skip
        Pipeline("p", steps=[first, second], outputs=[Output("second", key=["k"])])


@pytest.mark.parametrize(
    ("annotation", "message"),
    [
        (pd.DataFrame, r"^step 'total': parameter 'sourc': no step is named 'sourc', and "
                       r"DataFrame is no run-parameter type"),
        (list, r"^step 'total': parameter 'sourc': no step is named 'sourc', and list is no"),
    ],
    ids=["unknown_dependency", "unsupported_annotation"],
)  # fmt: skip
def test_an_unknown_dependency_or_type_is_refused_naming_step_and_parameter(annotation, message):
    def total(sourc):
        return sourc

    total.__annotations__ = {"sourc": annotation}
    with pytest.raises(DeclarationError, match=message):
        Pipeline("p", steps=[source, step(total)], outputs=[Output("total", key=["k"])])


@pytest.mark.parametrize(
    "name", ["context", "params", "ds", "ti", "run_id", "start", "end", "output_dir"]
)
def test_names_an_orchestrator_reserves_are_refused(name):
    namespace: dict = {}
    exec(f"def uses(source, {name}: str):\n    return source", namespace)
    with pytest.raises(DeclarationError, match=rf"^step 'uses': parameter '{name}': the name "
                                               "is reserved"):  # fmt: skip
        Pipeline("p", steps=[source, step(namespace["uses"])], outputs=[Output("uses", key="k")])


def test_two_outputs_of_one_name_and_one_parameter_two_ways_are_refused():
    with pytest.raises(DeclarationError, match=r"^output 'source': two outputs of one name$"):
        Pipeline("p", steps=[source], outputs=[Output("source", ["k"]), Output("source", ["k"])])

    @step
    def other(source: pd.DataFrame, path: int) -> pd.DataFrame:
        return source

    with pytest.raises(DeclarationError, match=r"^step 'other': parameter 'path': declared "
                                               r"`int` .* but `str` .* in step 'source'"):
        Pipeline("p", steps=[source, other], outputs=[Output("other", ["k"])])


def test_a_date_partition_needs_a_date_parameter():
    with pytest.raises(DeclarationError, match=r"partition='date' needs a step parameter"):
        Pipeline("p", steps=[source], outputs=[Output("source", ["k"])], partition="date")


# Values and results.


def test_the_binder_types_values_and_makes_sample_files_absolute(orders_folder):
    pipeline, folder = load(str(orders_folder / "orders.py"))
    assert folder == str(orders_folder)
    values = bind(pipeline, None, date="2024-01-02", pipeline_dir=folder)
    assert values == {"orders_csv": str(orders_folder / "orders.csv"),
                      "date": dt.date(2024, 1, 2), "min_amount": 0}  # fmt: skip
    with pytest.raises(UsageError, match=r'^PARAMS: date: "2024-13-01" is not a date'):
        bind(pipeline, '{"orders_csv": "x", "date": "2024-13-01"}')
    with pytest.raises(UsageError, match=r"^PARAMS: min_amount: true is not a whole number$"):
        bind(pipeline, '{"orders_csv": "x", "min_amount": true}')


def test_a_staged_dataframe_comes_back_as_pandas_own_round_trip_gives_it(tmp_path):
    frame = pd.DataFrame(
        {"name": pd.Series(["a", None, "c"], dtype="string"),
         "size": pd.Series([1, None, 3], dtype="Int64"),
         "kind": pd.Categorical(["x", "y", "x"]),
         "when": pd.to_datetime(["2024-01-01", "2024-01-02", None], utc=True)},
        index=pd.Index([10, 20, 30], name="row"),
    )  # fmt: skip
    frame.to_parquet(tmp_path / "pandas.parquet")
    expected = pd.read_parquet(tmp_path / "pandas.parquet")
    got = restore(stage("step", frame, str(tmp_path / "staged")))
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    assert list(got.dtypes.astype(str)) == list(expected.dtypes.astype(str))


def test_a_staged_table_and_named_results_come_back_as_they_were(tmp_path):
    table = pa.table({"k": pa.array([1, 2], pa.int32()), "v": pa.array(["a", None])})
    frame = pd.DataFrame({"k": [1]})
    back = restore(stage("step", {"table": table, "frame": frame}, str(tmp_path)))
    assert back["table"].equals(table) and back["table"].schema.equals(table.schema)
    pd.testing.assert_frame_equal(back["frame"], frame)
    with pytest.raises(ResultError, match=r"^step 'step': returned list, not a pandas DataFrame"):
        stage("step", [1, 2], str(tmp_path))


def test_an_output_is_sorted_by_its_key_and_refused_without_a_grain():
    output = Output("totals", key=["k"])
    frame = pd.DataFrame({"v": [3.0, 1.0, 2.0]}, index=pd.Index([3, 1, 2], name="k"))
    table = output_table(output, frame)
    assert table.column_names == ["k", "v"] and table.to_pydict() == {"k": [1, 2, 3],
                                                                      "v": [1.0, 2.0, 3.0]}
    assert table.schema.metadata is None
    with pytest.raises(ResultError, match=r"^output 'totals': 1 row\(s\) repeat a key \(k\)"):
        output_table(output, pd.DataFrame({"k": [1, 1, 2]}))
    with pytest.raises(ResultError, match=r"^output 'totals': key column 'k' has 1 null"):
        output_table(output, pa.table({"k": pa.array([1, None])}))
    with pytest.raises(ResultError, match=r"^output 'totals': key column\(s\) k not in its"):
        output_table(output, pd.DataFrame({"j": [1]}))



def test_a_key_of_one_name_and_a_partly_named_index_publish_as_declared():
    output = Output("totals", key="k")
    assert output.key == ("k",)
    frame = pd.DataFrame(
        {"v": [2, 1]}, index=pd.MultiIndex.from_tuples([(2, "b"), (1, "a")], names=["k", None])
    )
    table = output_table(output, frame)
    assert table.to_pydict() == {"k": [1, 2], "v": [1, 2]}  # the unnamed level is dropped


def test_a_partitioned_pipeline_whose_date_is_required_backfills(tmp_path):
    (tmp_path / "dated.py").write_text(
        "import datetime\nimport pandas as pd\nfrom parity import Output, Pipeline, step\n\n"
        "@step\ndef day(date: datetime.date) -> pd.DataFrame:\n"
        "    return pd.DataFrame({'day': [date.isoformat()]})\n\n"
        "pipeline = Pipeline('dated', steps=[day], outputs=[Output('day', key='day')],"
        " partition='date')\n"
    )
    result = reference("backfill", "dated.py", "--start", "2024-02-28", "--end", "2024-03-01",
                       "--output-dir", "out", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    for day in ("2024-02-28", "2024-02-29", "2024-03-01"):
        assert pq.read_table(tmp_path / "out" / day / "day.parquet").to_pydict() == {"day": [day]}


@pytest.mark.parametrize("value", ["2024-W01-1", "20240101", "2024-1-01", "2024-02-30"])
def test_a_date_is_exactly_yyyy_mm_dd(orders_folder, value):
    params = json.dumps({"orders_csv": "orders.csv", "date": value})
    result = reference("run", "orders.py", "--params", params, "--output-dir", "out",
                       cwd=orders_folder)  # fmt: skip
    assert (result.returncode, result.stderr.splitlines()) == (
        2, [f'error: PARAMS: date: "{value}" is not a date YYYY-MM-DD']
    )  # fmt: skip


@pytest.mark.parametrize("value", ["2024-02-30", "2024-1-01"])
def test_a_date_given_as_the_run_date_is_named_as_that_not_as_params(orders_folder, value):
    for command in (["run", "orders.py", "--date", value, "--output-dir", "out"],
                    ["--input-path", "orders.csv", "--output-path", "out.parquet", "--date",
                     value]):  # fmt: skip
        result = reference(*command, cwd=orders_folder)
        assert (result.returncode, result.stderr.splitlines()) == (
            2, [f"error: DATE={value}: not a date YYYY-MM-DD"]
        )  # fmt: skip


@pytest.mark.parametrize("name", ["events", "backfill", "deployed"])
def test_a_pipeline_may_not_take_a_folder_name_of_the_events_layout(name):
    with pytest.raises(DeclarationError, match=rf"^pipeline '{name}': the name is a folder"):
        Pipeline(name, steps=[source], outputs=[Output("source", ["k"])])
