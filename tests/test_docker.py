"""The images and the compose file, checked where no Docker engine runs.

hadolint lints every Dockerfile; the compose file is held to the Dockerfiles and make targets
it mirrors; and `docker compose up` is played outside Docker: every service's command runs in
a folder laid out as its image's /app (the files the Dockerfile copies, the compose mounts,
the Dockerfile's ENV, with the local environment of the same lock standing in for /opt/venv),
then the compare service gives its verdict against the golden hashes. What this cannot prove
is the image build itself and running as the image's user: that needs a Docker engine.
"""

import json
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import pytest
import yaml

from tests.conformance.wrappers import survivors
from tests.conftest import PROJECT, make, make_variable

COMPOSE = PROJECT / "docker-compose.yml"
DOCKERFILES = {
    "reference": PROJECT / "Dockerfile",
    "prefect": PROJECT / "prefect" / "Dockerfile",
    "airflow": PROJECT / "airflow" / "Dockerfile",
    "dagster": PROJECT / "dagster" / "Dockerfile",
}
# What the python base image itself sets (ENV in its Dockerfile), before ours.
BASE_ENVIRONMENT = {"PATH": "/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}


@dataclass(frozen=True)
class Image:
    """What a Dockerfile's final stage makes, and how its build stage installs."""

    arguments: dict[str, str]  # ARG defaults
    sync: list[str]  # the build stage's `uv sync` arguments
    workdir: str
    copies: list[tuple[str, str]]  # (from the build context, to the image)
    environment: dict[str, str]
    user: str
    cmd: list[str]


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments): comments dropped first (as Docker does: a comment never
    continues), then continuation lines joined."""
    lines = [line for line in dockerfile.read_text().splitlines()
             if not line.lstrip().startswith("#")]  # fmt: skip
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in (line.strip() for line in joined.splitlines())
        if line
    ]


def read_image(dockerfile: Path) -> Image:
    arguments, sync, stages = {}, [], []
    for instruction, rest in instructions(dockerfile):
        if instruction == "ARG" and "=" in rest:
            name, value = rest.split("=", 1)
            arguments[name] = value
        elif instruction == "FROM":
            stages.append([])
        elif stages:
            stages[-1].append((instruction, rest))
        if instruction == "RUN" and " uv sync " in rest:
            sync = shlex.split(rest.split(" uv sync ", 1)[1])
    workdir, copies, environment, user, cmd = "/", [], {}, "root", []
    for instruction, rest in stages[-1]:
        if instruction == "WORKDIR":
            workdir = rest
        elif instruction == "COPY" and not rest.startswith("--from"):
            source, target = rest.split()
            copies.append((source, target))
        elif instruction == "ENV":
            environment.update(pair.split("=", 1) for pair in shlex.split(rest))
        elif instruction == "USER":
            user = rest
        elif instruction == "CMD":
            cmd = json.loads(rest)
    return Image(arguments, sync, workdir, copies, environment, user, cmd)


def services() -> dict[str, dict]:
    return yaml.safe_load(COMPOSE.read_text())["services"]


def image_of(service: dict) -> str:
    """The environment name of the Dockerfile a service builds."""
    dockerfile = PROJECT / service["build"]["context"] / service["build"]["dockerfile"]
    (name,) = [name for name, path in DOCKERFILES.items() if path == dockerfile]
    return name


def command_of(service: dict) -> list[str]:
    return service.get("command") or read_image(DOCKERFILES[image_of(service)]).cmd


def make_command(*arguments: str) -> list[str]:
    """The command a make target runs, from `make -n`, with its interpreter as `python`."""
    result = make("-n", *arguments)
    assert result.returncode == 0, result.stderr
    lines = re.sub(r"\\\n\s*", " ", result.stdout).splitlines()
    (line,) = [line for line in lines if "/bin/python " in line]
    program, *rest = shlex.split(line[line.index(str(PROJECT / ".venvs")) :])
    assert program.endswith("/bin/python"), program
    return ["python", *rest]


@pytest.mark.parametrize("name", DOCKERFILES)
def test_hadolint_passes_and_every_ignored_rule_is_explained(name):
    dockerfile = DOCKERFILES[name]
    result = subprocess.run(
        [str(Path(sys.executable).with_name("hadolint")), "--no-color", str(dockerfile)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = dockerfile.read_text().splitlines()
    for number, line in enumerate(lines):
        if "hadolint ignore" in line:
            reason = lines[number - 1] if number else ""
            assert reason.startswith("#") and "hadolint" not in reason, (
                f"{dockerfile}:{number + 1}: say why the rule is ignored on the line above"
            )


@pytest.mark.parametrize("name", DOCKERFILES)
def test_each_image_installs_the_lock_make_setup_installs(name):
    image = read_image(DOCKERFILES[name])
    assert image.arguments["UV_VERSION"] == make_variable("UV_VERSION")
    assert "--locked" in image.sync
    extras = [value for flag, value in pairwise(image.sync) if flag == "--extra"]
    if name == "reference":
        assert extras == [] and "--no-default-groups" in image.sync  # no test or bench tools
    else:
        assert make_variable(f"SYNC_{name}").split() == ["--no-default-groups", "--extra", name]
        assert extras == [name]
    # The same Python minor as the local environments (their pyarrow wheels are per minor).
    local = subprocess.run(
        [str(PROJECT / ".venvs" / name / "bin" / "python"), "-c",
         "import sys; print('%d.%d' % sys.version_info[:2])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert image.arguments["PYTHON_IMAGE"].startswith(f"python:{local}."), image.arguments
    assert image.user not in ("root", "0"), "the image must not run as root"


def test_the_compose_file_runs_every_make_target_then_compare():
    found = services()
    wrappers = make_variable("WRAPPERS").split()
    runs = [*wrappers, *(f"{wrapper}-backfill" for wrapper in wrappers)]
    assert sorted(found) == sorted([*runs, "compare"])
    start, end = make_variable("SAMPLE_START"), make_variable("SAMPLE_END")
    for wrapper in wrappers:
        for name, target in ((wrapper, [wrapper]), (f"{wrapper}-backfill",
                             [f"backfill-{wrapper}", f"START={start}", f"END={end}"])):  # fmt: skip
            service = found[name]
            assert image_of(service) == wrapper
            assert service["build"]["context"] == "."
            workdir = read_image(DOCKERFILES[wrapper]).workdir
            assert service["volumes"] == [f"./data:{workdir}/data:ro", f"./output:{workdir}/output"]
            assert command_of(service) == make_command(*target, f"INPUT={make_variable('SAMPLE')}")
    compare = found["compare"]
    assert compare["command"] == make_command("compare")
    assert compare["depends_on"] == {
        name: {"condition": "service_completed_successfully"} for name in runs
    }


def container(service_name: str, service: dict, project: Path) -> tuple[Path, dict[str, str]]:
    """A fresh folder laid out as the service's container sees /app, and its environment."""
    name = image_of(service)
    image = read_image(DOCKERFILES[name])
    app = project / "containers" / service_name / image.workdir.lstrip("/")
    app.mkdir(parents=True)
    for source, target in image.copies:
        destination = app / target
        if (PROJECT / source).is_dir():
            shutil.copytree(PROJECT / source, destination,
                            ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
        else:
            shutil.copy2(PROJECT / source, destination)
    for volume in service["volumes"]:
        source, target = volume.split(":")[:2]
        (app / Path(target).relative_to(image.workdir)).symlink_to(project / source)

    def local(value: str) -> str:
        value = value.replace("/opt/venv", str(PROJECT / ".venvs" / name))
        return re.sub(rf"(?<![\w/]){re.escape(image.workdir)}(?![\w])", str(app), value)

    environment = {**BASE_ENVIRONMENT, "HOME": str(project / "home")}
    for key, value in image.environment.items():
        environment[key] = local(value).replace("$PATH", environment["PATH"])
    return app, environment


def test_compose_up_played_outside_docker_gives_the_golden_verdict(tmp_path):
    project = tmp_path / "compose"
    (project / "data").mkdir(parents=True)
    shutil.copy2(PROJECT / make_variable("SAMPLE"), project / "data")
    (project / "output").mkdir()
    (project / "home").mkdir()
    found = services()
    runs = {name: service for name, service in found.items() if name != "compare"}
    started = {}
    try:
        for name, service in runs.items():  # concurrently, as compose starts them
            app, environment = container(name, service, project)
            with (project / f"{name}.log").open("w") as log:
                process = subprocess.Popen(command_of(service), cwd=app, env=environment,
                                           stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
            started[name] = (app, process)
        for name, (_, process) in started.items():
            returncode = process.wait(timeout=900)
            assert returncode == 0, (project / f"{name}.log").read_text()[-3000:]
    finally:  # SIGTERM, as `docker compose down` would: the wrappers stop their services
        for _, process in started.values():
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=60)
    app, environment = container("compare", found["compare"], project)
    verdict = subprocess.run(command_of(found["compare"]), cwd=app, env=environment,
                             capture_output=True, text=True, check=False)  # fmt: skip
    assert verdict.returncode == 0, verdict.stdout + verdict.stderr
    report = json.loads((project / "output" / "parity-report.json").read_text())
    assert report["verdict"] == "identical"
    assert sorted(report["wrappers"]) == sorted(make_variable("WRAPPERS").split())
    golden = json.loads((PROJECT / make_variable("GOLDEN")).read_text())
    assert sorted(group["key"] for group in report["groups"]) == sorted(golden)
    # Each orchestrator kept its state in its own container's /app/.state, nothing in $HOME.
    for name in ("prefect", "airflow", "dagster"):
        for service_name in (name, f"{name}-backfill"):
            state = started[service_name][0] / ".state" / name
            assert any(state.iterdir()), f"{service_name}: no state in {state}"
        assert survivors(name) == [], f"{name} left processes running"
    assert list((project / "home").iterdir()) == []
