"""A pipeline's own packages (a requirements.txt beside it, docs/own-pipeline.md): installed
for each wrapper's environment under that environment's pins, beside it rather than in it,
and refused in one line when a requirement would change a pinned package.

`inflection` is a small pure-Python package the harness does not use (so not in uv.lock): the
pipeline names its output's columns with it, and the expected names are written out here."""

import os
import subprocess
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.conftest import PROJECT, make

PIPELINE = """
import inflection
import pandas as pd
from parity import Output, Pipeline, step


@step
def totals(orders_csv: str) -> pd.DataFrame:
    table = pd.read_csv(orders_csv, dtype={"amount": "int64"}, keep_default_na=False)
    table = table.groupby("customerId", as_index=False)["amount"].sum()
    return table.rename(columns=inflection.underscore)


pipeline = Pipeline("totals", steps=[totals], outputs=[Output("totals", key=["customer_id"])],
                    sample={"orders_csv": "orders.csv"})
"""
ORDERS = "customerId,amount\nc2,5\nc1,7\nc2,1\n"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """The pipeline and its sample in a folder of a user's, outside the project."""
    place = tmp_path / "mine"
    place.mkdir()
    (place / "totals.py").write_text(PIPELINE)
    (place / "orders.csv").write_text(ORDERS)
    return place


def importable_in(env: str, module: str) -> bool:
    python = PROJECT / ".venvs" / env / "bin" / "python"
    return subprocess.run([python, "-c", f"import {module}"], capture_output=True).returncode == 0


@pytest.mark.orchestrators
def test_a_requirement_is_installed_beside_each_environment_not_in_it(folder, tmp_path):
    (folder / "requirements.txt").write_text("inflection==0.5.1\n")
    for wrapper in ("reference", "dagster"):
        result = make(wrapper, f"PIPELINE={folder / 'totals.py'}",
                      f"OUTPUT_DIR={tmp_path / wrapper}")  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        table = pq.read_table(tmp_path / wrapper / "totals.parquet")
        assert table.to_pydict() == {"customer_id": ["c1", "c2"], "amount": [7, 6]}
        assert not importable_in(wrapper, "inflection")  # the environment is still uv.lock's
    first = (tmp_path / "reference" / "totals.parquet").read_bytes()
    assert (tmp_path / "dagster" / "totals.parquet").read_bytes() == first


def test_without_its_requirement_the_pipeline_is_one_line_naming_the_package(folder, tmp_path):
    result = make("reference", f"PIPELINE={folder / 'totals.py'}", f"OUTPUT_DIR={tmp_path / 'o'}")
    assert result.returncode == 2
    assert f"error: PIPELINE={folder / 'totals.py'}: it imports 'inflection', which is not " \
           "installed in this environment" in result.stderr.splitlines()  # fmt: skip


def test_a_requirement_that_would_change_a_pin_is_refused_in_one_line(folder, tmp_path):
    pinned = next(line for line in (PROJECT / "pyproject.toml").read_text().splitlines()
                  if line.strip().startswith('"pandas=='))  # fmt: skip
    assert pinned.strip() != '"pandas==2.2.3",'
    (folder / "requirements.txt").write_text("inflection==0.5.1\npandas==2.2.3\n")
    result = make("reference", f"PIPELINE={folder / 'totals.py'}", f"OUTPUT_DIR={tmp_path / 'o'}")
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith(f"error: {folder / 'requirements.txt'}: cannot be installed in "
                                "the reference environment without changing a package the "
                                "harness pins")  # fmt: skip
    assert "pandas==2.2.3" in errors[0]
    assert not (tmp_path / "o").exists()


def test_run_outside_make_before_its_requirements_are_installed_says_how(folder, tmp_path):
    (folder / "requirements.txt").write_text(f"inflection==0.5.1  # {tmp_path}\n")  # a new file
    result = subprocess.run(
        [PROJECT / ".venvs" / "reference" / "bin" / "python", "-m", "parity", "run",
         str(folder / "totals.py"), "--output-dir", str(tmp_path / "o")],
        capture_output=True, text=True, cwd=PROJECT, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"error: {folder / 'requirements.txt'}: not installed in the reference environment; run "
        "the pipeline through make (make <wrapper> PIPELINE=...), which installs it"
    ]


def test_run_in_an_image_refuses_its_requirements_as_the_images_do(folder, tmp_path):
    """In the container images (PARITY_IMAGE set by the Dockerfile) no installer runs: the
    refusal says so rather than pointing at make."""
    (folder / "requirements.txt").write_text("inflection==0.5.1\n")
    result = subprocess.run(
        [PROJECT / ".venvs" / "reference" / "bin" / "python", "-m", "parity", "run",
         str(folder / "totals.py"), "--output-dir", str(tmp_path / "o")],
        capture_output=True, text=True, cwd=PROJECT, check=False,
        env={**os.environ, "PARITY_IMAGE": "1"},
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"error: {folder / 'requirements.txt'}: the images do not install a pipeline's "
        "requirements.txt (they hold exactly uv.lock; docs/containers.md); run it locally: "
        "make all PIPELINE=..."
    ]
    assert not (tmp_path / "o").exists()
