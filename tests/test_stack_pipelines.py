"""The deployed stack's registry of declared pipelines (stack/pipelines.py): one entry per
pipeline name, as each orchestrator shows one DAG or deployment per name. A second file that
declares a name is refused, in one line naming both files, while a command runs the first (the
workers would run the other file's code); it takes the name once none does. An entry whose
file is gone, or now declares another name, breaks and hides nothing.

The commands are real processes: a registration held by one that waits, or one that has ended.
"""

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from parity.errors import PipelineError
from stack import pipelines
from tests.conftest import PROJECT

PIPELINE = """
import pandas as pd
from parity import Output, Pipeline, step


@step
def {step}(n: int = 1) -> pd.DataFrame:
    return pd.DataFrame({{"k": list(range(n))}})


pipeline = Pipeline("{name}", steps=[{step}], outputs=[Output("{step}", key=["k"])])
"""
# A command's registration: it holds the name until its stdin closes (or at once ends).
REGISTER = """
import sys
from pathlib import Path
from parity.loader import load
from stack.pipelines import register
register(load(sys.argv[1])[0], Path(sys.argv[2]))
print("registered", flush=True)
sys.stdin.read()
"""


def declare(folder: Path, name: str, step: str = "rows") -> Path:
    """A pipeline file of a user's, `<folder>/<name>.py`, declaring `name`."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.py"
    path.write_text(PIPELINE.format(name=name, step=step))
    return path


def holding(pipeline: Path, registry: Path) -> subprocess.Popen:
    """A command that has registered `pipeline` and runs on (until its stdin is closed)."""
    command = subprocess.Popen(
        [sys.executable, "-c", REGISTER, str(pipeline), str(registry)], cwd=PROJECT,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert command.stdout.readline() == "registered\n", command.communicate()[1]
    return command


def registering(pipeline: Path, registry: Path) -> subprocess.CompletedProcess:
    """A command that registers `pipeline` and ends."""
    command = [sys.executable, "-c", REGISTER, str(pipeline), str(registry)]
    return subprocess.run(command, cwd=PROJECT, input="", capture_output=True, text=True,
                          check=False)  # fmt: skip


def entry(registry: Path, name: str) -> dict:
    return json.loads((registry / f"{name}.json").read_text())


def refusal(name: str, new: Path, old: Path, registry: Path) -> str:
    return (f"pipeline {name!r}: {new} cannot be registered with the stack: {old}, registered "
            f"under the same name ({registry / f'{name}.json'}), is running; give one of them "
            "another Pipeline name, or wait for that run to end")  # fmt: skip


def test_another_file_of_a_name_a_command_runs_is_refused_in_one_line(tmp_path):
    registry = tmp_path / "registry"
    mine, copy = declare(tmp_path / "a", "twin"), declare(tmp_path / "b", "twin", step="cells")
    running = holding(mine, registry)
    try:
        refused = registering(copy, registry)
    finally:
        running.communicate("")
    assert refused.returncode == 1, refused.stderr  # the script's uncaught UsageError
    assert refused.stderr.strip().splitlines()[-1] == (
        "parity.errors.UsageError: " + refusal("twin", copy, mine, registry)
    )
    assert entry(registry, "twin") == {"pipeline": str(mine)}


def test_the_command_refused_exits_2_with_its_one_line_and_submits_nothing(tmp_path):
    """Through a deployed command, with the stack's own registry: the refusal comes before
    anything is asked of the stack (none runs here), as the command's one line, exit 2. The
    command imports no orchestrator before it registers, so this environment runs it."""
    name = f"twin_{uuid.uuid4().hex[:8]}"  # of this test only, in the project's registry
    mine, copy = declare(tmp_path / "a", name), declare(tmp_path / "b", name, step="cells")
    running = holding(mine, pipelines.FOLDER)
    try:
        refused = subprocess.run(
            [sys.executable, "airflow/run_pipeline_deployed.py", "run", str(copy),
             "--output-dir", str(tmp_path / "out")],
            cwd=PROJECT, capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert refused.stderr == f"error: {refusal(name, copy, mine, pipelines.FOLDER)}\n"
        assert refused.stdout == ""
        assert entry(pipelines.FOLDER, name) == {"pipeline": str(mine)}
        assert not any((tmp_path / "out").glob("*"))
    finally:
        running.communicate("")
        for suffix in (".json", ".lock"):
            (pipelines.FOLDER / f"{name}{suffix}").unlink(missing_ok=True)


def test_the_same_file_registered_by_two_commands_at_once_is_one_entry(tmp_path):
    registry = tmp_path / "registry"
    mine = declare(tmp_path / "a", "twin")
    running = holding(mine, registry)
    try:
        again = registering(mine, registry)
    finally:
        running.communicate("")
    assert (again.returncode, again.stderr) == (0, "")
    assert entry(registry, "twin") == {"pipeline": str(mine)}


def test_once_no_command_runs_the_name_another_file_takes_it_saying_so(tmp_path):
    registry = tmp_path / "registry"
    mine, copy = declare(tmp_path / "a", "twin"), declare(tmp_path / "b", "twin", step="cells")
    assert registering(mine, registry).returncode == 0
    taken = registering(copy, registry)
    assert taken.returncode == 0, taken.stderr
    assert taken.stderr == f"stack pipelines: 'twin' is now {copy} (was {mine})\n"
    assert entry(registry, "twin") == {"pipeline": str(copy)}
    assert pipelines.registered(registry)["twin"].order == ("cells",)


def test_an_entry_whose_file_is_gone_breaks_and_hides_nothing(tmp_path, capsys):
    registry = tmp_path / "registry"
    gone, other = declare(tmp_path / "a", "twin"), declare(tmp_path / "a", "other")
    for pipeline in (gone, other):
        assert registering(pipeline, registry).returncode == 0
    gone.unlink()  # the stack's folder outlives `make down` and the user's folders
    assert list(pipelines.registered(registry)) == ["other"]
    assert capsys.readouterr().err == (
        f"stack pipelines: {registry / 'twin.json'}: left out: PIPELINE={gone}: no such file\n"
    )
    with pytest.raises(PipelineError) as missing:
        pipelines.find("twin", registry)
    assert str(missing.value) == f"PIPELINE={gone}: no such file"
    assert pipelines.find("other", registry).name == "other"
    copy = declare(tmp_path / "b", "twin", step="cells")
    taken = registering(copy, registry)
    assert (taken.returncode, taken.stderr) == (0, "")  # nothing to say of a file that is gone
    assert {name: p.order for name, p in pipelines.registered(registry).items()} == {
        "other": ("rows",),
        "twin": ("cells",),
    }


def test_an_entry_whose_file_now_declares_another_name_hides_nothing(tmp_path, capsys):
    """A file renamed its Pipeline after it was registered: its old entry must not stand in
    for the file registered under the new name."""
    registry = tmp_path / "registry"
    renamed = declare(tmp_path / "a", "alpha")
    assert registering(renamed, registry).returncode == 0
    renamed.write_text(renamed.read_text().replace('"alpha"', '"beta"'))
    beta = declare(tmp_path / "b", "beta", step="cells")
    assert registering(beta, registry).returncode == 0
    assert {name: p.order for name, p in pipelines.registered(registry).items()} == {
        "beta": ("cells",)
    }
    assert capsys.readouterr().err == (
        f"stack pipelines: {registry / 'alpha.json'}: left out: "
        f"{renamed} declares 'beta' now, not 'alpha'\n"
    )
    with pytest.raises(PipelineError) as renamed_away:
        pipelines.find("alpha", registry)
    assert str(renamed_away.value) == f"{renamed} declares 'beta' now, not 'alpha'"
    assert pipelines.find("beta", registry).order == ("cells",)
