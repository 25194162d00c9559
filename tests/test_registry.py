"""The one registry of wrappers (parity/wrappers.txt): its reader refuses a malformed file with
one line naming the file and the line, and every list of wrappers in the project is the
registry's. Make, bash and Python read the file itself; docker-compose.yml cannot read
anything, so it is held to the registry here, and this test fails when they disagree."""

import re
import shlex
import subprocess

import pytest
import yaml

import compare
from parity import registry
from stack import postgres
from tests.conftest import PROJECT, make, make_variable

WRAPPERS = ["reference", "prefect", "dagster", "airflow"]  # what the harness has, in its order
FIRST = "the one compared with"


def test_the_registry_lists_the_harness_wrappers_in_their_order():
    assert registry.read(registry.REGISTRY) == tuple(WRAPPERS)
    assert list(registry.WRAPPERS) == WRAPPERS
    assert registry.ORCHESTRATORS == ("prefect", "dagster", "airflow")
    assert registry.REGISTRY.read_text() == "".join(f"{name}\n" for name in WRAPPERS)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("reference\nprefect \n", "{path}:2: 'prefect ' is not a wrapper name ([a-z][a-z0-9_]*)"),
        ("reference\n\nprefect\n", "{path}:2: '' is not a wrapper name ([a-z][a-z0-9_]*)"),
        ("reference\nPrefect\n", "{path}:2: 'Prefect' is not a wrapper name ([a-z][a-z0-9_]*)"),
        ("reference\nprefect\nprefect\n", "{path}:3: 'prefect' is listed twice"),
        ("prefect\nreference\n", "{path}: the first wrapper must be 'reference', " + FIRST),
        ("", "{path}: the first wrapper must be 'reference', " + FIRST),
    ],
)  # fmt: skip
def test_a_malformed_registry_is_refused_naming_the_file_and_line(tmp_path, text, reason):
    path = tmp_path / "wrappers.txt"
    path.write_text(text)
    with pytest.raises(ValueError) as refused:
        registry.read(path)
    assert str(refused.value) == reason.format(path=path)


def test_make_reads_the_registry():
    assert make_variable("WRAPPERS").split() == WRAPPERS
    assert make_variable("ENVIRONMENTS").split() == [*WRAPPERS, "stack"]
    assert make_variable("ALL_EXPECT_deployed").split() == [
        *WRAPPERS, "prefect@deployed", "dagster@deployed", "airflow@deployed"
    ]  # fmt: skip
    # `make help` names the wrappers too: its line is written by hand, so it is held here.
    (line,) = [line for line in make("help").stdout.splitlines() if "wrapper: " in line]
    assert line.split("wrapper: ", 1)[1].split() == WRAPPERS


def test_make_refuses_an_empty_registry(tmp_path):
    """The Makefile in a folder whose registry lists nothing: one line naming the file."""
    (tmp_path / "Makefile").write_bytes((PROJECT / "Makefile").read_bytes())
    (tmp_path / "parity").mkdir()
    (tmp_path / "parity" / "wrappers.txt").write_text("")
    result = subprocess.run(["make", "--no-print-directory", "-C", str(tmp_path), "help"],
                            capture_output=True, text=True, check=False)  # fmt: skip
    assert result.returncode == 2
    assert re.fullmatch(
        r"Makefile:\d+: \*\*\* parity/wrappers\.txt: no wrappers listed \(the registry: one "
        r"wrapper name a line\)\.  Stop\.\n",
        result.stderr,
    ), result.stderr


def test_the_container_scripts_read_the_registry():
    script = f"source {shlex.quote(str(PROJECT / 'containers' / 'engine.sh'))}; "
    script += 'printf "%s\\n" "${IMAGES[@]}"'
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.splitlines() == WRAPPERS


def test_compare_and_the_stack_read_the_registry():
    assert list(compare.KNOWN_WRAPPERS) == WRAPPERS
    assert postgres.DATABASES == ("prefect", "dagster", "airflow")


def test_the_compose_file_has_the_registrys_services():
    """docker-compose.yml cannot read the registry: a run and a backfill service for each of
    its wrappers, each on that wrapper's image, and compare waiting for every one."""
    services = yaml.safe_load((PROJECT / "docker-compose.yml").read_text())["services"]
    runs = [name for wrapper in registry.WRAPPERS for name in (wrapper, f"{wrapper}-backfill")]
    assert list(services) == [*runs, "compare"]
    for wrapper in registry.WRAPPERS:
        for name in (wrapper, f"{wrapper}-backfill"):
            assert services[name]["image"] == f"parity-harness/{wrapper}", name
    assert list(services["compare"]["depends_on"]) == runs


def test_the_containers_know_each_wrappers_adapter():
    driver = (PROJECT / "containers" / "pipeline.sh").read_text()
    block = driver[driver.index("declare -A ADAPTER=(") :].split("\n)", 1)[0]
    assert re.findall(r"\[(\w+)\]=", block) == WRAPPERS
