"""The images, the compose file and the container tooling, checked without running a container.

`make containers-test` (containers/test.sh, run in CI) builds the images and runs them and
the compose file for real; these are the quick checks that need no engine: hadolint on the
one Dockerfile, each image's install (as its build argument WRAPPER makes it) held to the lock
`make setup` installs, the compose file held to the make targets it mirrors, the container
test held to the compose file, the host check of container outputs shown to pass golden bytes
and to fail a changed one, and `make docker-all` shown to leave output/ alone when there is
no engine.
"""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import pytest
import yaml

from parity import registry
from parity.registry import ORCHESTRATORS
from tests.conftest import PROJECT, SAMPLE, make, make_variable

COMPOSE = PROJECT / "docker-compose.yml"
CONTAINERS = PROJECT / "containers"
# Every image is built from the one Dockerfile, from the repository root; its build argument
# WRAPPER names the wrapper (containers/build.sh and docker-compose.yml give it).
DOCKERFILE = PROJECT / "Dockerfile"
BUILD_ARGS = {name: {"WRAPPER": name} for name in registry.WRAPPERS}


@dataclass(frozen=True)
class Image:
    """What a Dockerfile's final stage makes, and how its build stage installs."""

    arguments: dict[str, str]  # ARG defaults
    syncs: list[list[str]]  # the build stage's `uv sync` arguments, in order
    workdir: str
    copies: list[tuple[str, str]]  # (from the build context, to the image)
    environment: dict[str, str]
    user: str
    cmd: list[str]


@dataclass
class Stage:
    base: str  # an image, or an earlier stage's name
    values: dict[str, str]  # the build arguments it declares, as the build gives them
    steps: list[tuple[str, str]]


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


# Docker's own substitution in FROM, COPY, ENV, WORKDIR...: $NAME, ${NAME}, ${NAME:-word}
# (word when NAME is unset or empty) and ${NAME:+word} (word when NAME is set and not empty).
_VARIABLE = re.compile(r"\$(?:\{(\w+)(?::([-+])([^}]*))?\}|(\w+))")


def substitute(text: str, values: dict[str, str]) -> str:
    """`text` with the build arguments in `values` replaced; any other name (an ENV's $PATH)
    is left as written, as the image's own environment will give it."""

    def replace(match: re.Match) -> str:
        name, operator, word = match[1] or match[4], match[2], match[3]
        if name not in values:
            return match[0]
        value = values[name]
        if operator == "-":
            return value or word
        if operator == "+":
            return word if value else ""
        return value

    return _VARIABLE.sub(replace, text)


def uv_syncs(script: str, values: dict[str, str]) -> list[list[str]]:
    """The arguments of each `uv sync` a RUN makes, found by running it as Docker does
    (`/bin/sh -c`, the stage's build arguments in the environment) with a stub for `uv`."""
    stub = 'uv() { [ "$1" = sync ] && shift && printf "%s\\037" "$@" && printf "\\036"; }; '
    result = subprocess.run(["sh", "-c", stub + script], capture_output=True, text=True,
                            env={"PATH": os.environ["PATH"], **values}, check=True)  # fmt: skip
    return [sync.split("\x1f")[:-1] for sync in result.stdout.split("\x1e")[:-1]]


def read_image(dockerfile: Path, build_args: dict[str, str]) -> Image:
    """The image `docker build --build-arg NAME=VALUE...` makes of `dockerfile`: its last
    stage, on top of the stages it is built FROM, with the build arguments given."""
    arguments, header, stages = {}, {}, {}
    stage: Stage | None = None
    for instruction, rest in instructions(dockerfile):
        if instruction == "ARG":
            name, has_default, default = rest.partition("=")
            if has_default:
                arguments[name] = default
            if stage is None:  # before the first FROM: what FROM lines may use
                header[name] = build_args.get(name, default)
            else:  # in a stage: given, else its default here, else the header's value
                stage.values[name] = build_args.get(name, default if has_default
                                                    else header.get(name, ""))  # fmt: skip
        elif instruction == "FROM":
            base, *name = re.split(r"\s+as\s+", substitute(rest, header), flags=re.IGNORECASE)
            stage = Stage(base.strip(), {}, [])
            stages[name[0].strip() if name else f"stage {len(stages)}"] = stage
        else:
            stage.steps.append((instruction, rest))

    def lineage(stage: Stage) -> list[Stage]:
        return [*lineage(stages[stage.base]), stage] if stage.base in stages else [stage]

    def made_of(stage: Stage) -> set[int]:
        """The stages an image is made of: its lineage, and what those copy --from."""
        found = {id(each) for each in lineage(stage)}
        for each in lineage(stage):
            for instruction, rest in each.steps:
                if instruction == "COPY" and rest.startswith("--from="):
                    found |= made_of(stages[rest.split()[0].removeprefix("--from=")])
        return found

    final = list(stages.values())[-1]
    syncs = [
        sync
        for each in stages.values()
        if id(each) in made_of(final)
        for instruction, rest in each.steps
        if instruction == "RUN" and "uv sync " in rest
        for sync in uv_syncs(rest, each.values)
    ]
    workdir, copies, environment, user, cmd = "/", [], {}, "root", []
    for each in lineage(final):
        for instruction, rest in each.steps:
            rest = rest if instruction in ("RUN", "CMD") else substitute(rest, each.values)
            if instruction == "WORKDIR":
                workdir = rest
            elif instruction == "COPY" and not rest.startswith("--from"):
                *sources, target = rest.split()
                copies += [(source, target) for source in sources]
            elif instruction == "ENV":
                environment.update(pair.split("=", 1) for pair in shlex.split(rest))
            elif instruction == "USER":
                user = rest
            elif instruction == "CMD":
                cmd = json.loads(rest)
    return Image(arguments, syncs, workdir, copies, environment, user, cmd)


def image(name: str) -> Image:
    """A wrapper's image, as containers/build.sh builds it."""
    return read_image(DOCKERFILE, BUILD_ARGS[name])


def services() -> dict[str, dict]:
    return yaml.safe_load(COMPOSE.read_text())["services"]


def image_of(service: dict) -> str:
    """The wrapper whose image a service builds: the one Dockerfile, with its build argument."""
    build = service["build"]
    assert PROJECT / build["context"] / build.get("dockerfile", "Dockerfile") == DOCKERFILE
    (name,) = [name for name, args in BUILD_ARGS.items() if args == build.get("args", {})]
    return name


def command_of(service: dict) -> list[str]:
    return service.get("command") or image(image_of(service)).cmd


def make_command(*arguments: str) -> list[str]:
    """The command a make target runs, from `make -n`, with its interpreter as `python`."""
    result = make("-n", *arguments)
    assert result.returncode == 0, result.stderr
    lines = re.sub(r"\\\n\s*", " ", result.stdout).splitlines()
    (line,) = [line for line in lines if "/bin/python " in line]
    program, *rest = shlex.split(line[line.index(str(PROJECT / ".venvs")) :])
    assert program.endswith("/bin/python"), program
    return ["python", *rest]


def test_one_dockerfile_builds_every_image():
    """What the images share is written once: no other Dockerfile in the repository."""
    folders = [
        folder
        for folder in PROJECT.iterdir()
        if folder.is_dir() and not folder.name.startswith(".") and folder.name != "output"
    ]
    found = [path for folder in folders for path in folder.rglob("*")
             if path.name in ("Dockerfile", "Containerfile")]  # fmt: skip
    assert found == []
    assert DOCKERFILE.is_file()


def test_the_default_build_is_the_reference_image():
    """`docker build -t parity-harness/reference .`, with no build argument."""
    assert read_image(DOCKERFILE, {}) == image("reference")


@pytest.mark.parametrize("dockerfile", [DOCKERFILE], ids=lambda path: path.name)
def test_hadolint_passes_and_every_ignored_rule_is_explained(dockerfile):
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


@pytest.mark.parametrize("name", registry.WRAPPERS)
def test_each_image_installs_the_project_from_the_lock_make_setup_installs(name):
    built = image(name)
    assert built.arguments["UV_VERSION"] == make_variable("UV_VERSION")
    assert built.syncs, "no uv sync in the build stage"
    for sync in built.syncs:
        assert "--locked" in sync and "--no-default-groups" in sync  # no test or bench tools
        extras = [value for flag, value in pairwise(sync) if flag == "--extra"]
        if name == "reference":
            assert extras == []
        else:
            assert make_variable(f"SYNC_{name}").split() == ["--no-default-groups", "--extra", name]
            assert extras == [name]
    # The project itself is installed, not only its dependencies: every manifest asks for its
    # version. Not editable, so the image runs the one copy it installed.
    assert "--no-install-project" not in built.syncs[-1]
    assert "--no-editable" in built.syncs[-1]
    assert not any(source.startswith("shared_etl") for source, _ in built.copies)
    # The same Python minor as the local environments (their pyarrow wheels are per minor).
    local = subprocess.run(
        [str(PROJECT / ".venvs" / name / "bin" / "python"), "-c",
         "import sys; print('%d.%d' % sys.version_info[:2])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert built.arguments["PYTHON_IMAGE"].startswith(f"python:{local}."), built.arguments
    assert built.user not in ("root", "0"), "the image must not run as root"


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
            workdir = image(wrapper).workdir
            assert service["volumes"] == [f"./data:{workdir}/data:ro", f"./output:{workdir}/output"]
            assert command_of(service) == make_command(*target, f"INPUT={make_variable('SAMPLE')}")
    compare = found["compare"]
    assert compare["command"] == make_command("compare")
    assert compare["depends_on"] == {
        name: {"condition": "service_completed_successfully"} for name in runs
    }


def shell_values(*names: str) -> dict[str, str]:
    """Variables as containers/engine.sh sets them (sourcing it runs nothing)."""
    script = f"source {shlex.quote(str(CONTAINERS / 'engine.sh'))}; " + "; ".join(
        f'echo "{name}=${{{name}[*]}}"' for name in names
    )
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True)
    return dict(line.split("=", 1) for line in result.stdout.splitlines())


def test_the_container_test_runs_what_the_compose_file_runs():
    found = services()
    values = shell_values("IMAGES", "SAMPLE", "SAMPLE_START", "SAMPLE_END")
    assert sorted(values["IMAGES"].split()) == sorted(make_variable("WRAPPERS").split())
    assert values["SAMPLE"] == make_variable("SAMPLE")
    start, end = values["SAMPLE_START"], values["SAMPLE_END"]
    assert (start, end) == (make_variable("SAMPLE_START"), make_variable("SAMPLE_END"))
    adapters = (CONTAINERS / "pipeline.sh").read_text()
    block = adapters[adapters.index("declare -A ADAPTER=(") :].split("\n)", 1)[0]
    backfills = dict(re.findall(r'\[(\w+)\]="([^"]+)"', block))
    driver = (CONTAINERS / "test.sh").read_text()
    assert '"$logs/$mode-$name-backfill.log" ${ADAPTER[$name]}' in driver
    assert sorted(backfills) == sorted(values["IMAGES"].split())
    for name, program in backfills.items():
        service = found[f"{name}-backfill"]
        assert service["image"] == f"parity-harness/{name}"  # the tag containers/build.sh gives
        assert service["command"] == [*shlex.split(program), "--input-path", values["SAMPLE"],
                                      "--start", start, "--end", end,
                                      "--output-dir", f"output/backfill/{name}"]  # fmt: skip


@pytest.fixture(scope="module")
def golden_outputs(tmp_path_factory) -> Path:
    """An output/ as the containers leave it: every wrapper's run and backfill, then compare.
    The reference runner's files stand for every wrapper's: the check reads bytes, not names."""
    output = tmp_path_factory.mktemp("containers") / "output"
    start, end = make_variable("SAMPLE_START"), make_variable("SAMPLE_END")
    for arguments in (["--output-path", str(output / "reference_output.parquet")],
                      ["--start", start, "--end", end, "--output-dir",
                       str(output / "backfill" / "reference")]):  # fmt: skip
        result = subprocess.run(  # the reference image's command
            [sys.executable, "-m", "parity", "--input-path", str(SAMPLE), *arguments],
            cwd=PROJECT, capture_output=True, text=True, check=False)  # fmt: skip
        assert result.returncode == 0, result.stderr
    for wrapper in ORCHESTRATORS:
        for path in output.glob("reference_output.*"):
            shutil.copy2(path, output / path.name.replace("reference", wrapper))
        shutil.copytree(output / "backfill" / "reference", output / "backfill" / wrapper)
    verdict = subprocess.run(
        [sys.executable, "-m", "compare", str(output), "--golden", make_variable("GOLDEN"),
         "--report-dir", str(output)],
        cwd=PROJECT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert verdict.returncode == 0, verdict.stdout + verdict.stderr
    return output


def check_outputs(output: Path, *extra: str) -> subprocess.CompletedProcess:
    start, end = make_variable("SAMPLE_START"), make_variable("SAMPLE_END")
    return subprocess.run(
        [sys.executable, str(CONTAINERS / "check_outputs.py"), str(output),
         "--wrappers", ",".join(make_variable("WRAPPERS").split()),
         "--dates", f"{start}..{end}", *extra],
        capture_output=True, text=True, check=False,
    )  # fmt: skip


def test_the_host_check_passes_golden_outputs_owned_by_you(golden_outputs):
    result = check_outputs(golden_outputs, "--owner", str(os.getuid()))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_the_host_check_names_a_file_whose_bytes_changed(golden_outputs, tmp_path):
    output = tmp_path / "output"
    shutil.copytree(golden_outputs, output)
    changed = output / "backfill" / "dagster" / f"{make_variable('SAMPLE_START')}.parquet"
    data = bytearray(changed.read_bytes())
    data[len(data) // 2] ^= 0xFF
    changed.write_bytes(bytes(data))
    result = check_outputs(output)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"check_outputs: {changed}: sha256 is not the golden one for "
        f"backfill/{make_variable('SAMPLE_START')}/metrics"
    ]


def test_the_host_check_names_a_missing_run_and_a_manifest_without_the_project_version(
    golden_outputs, tmp_path
):
    output = tmp_path / "output"
    shutil.copytree(golden_outputs, output)
    (output / "airflow_output.rejects.parquet").unlink()
    manifest = output / "prefect_output.manifest.json"
    document = json.loads(manifest.read_text())
    del document["versions"]["parity"]
    manifest.write_text(json.dumps(document))
    result = check_outputs(output)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"check_outputs: {output / 'prefect_output.manifest.json'}: parity version None, "
        f"not {tomllib.loads((PROJECT / 'pyproject.toml').read_text())['project']['version']}",
        f"check_outputs: {output / 'airflow_output.rejects.parquet'}: missing",
    ]


@pytest.mark.skipif(
    shutil.which("docker") is not None
    and subprocess.run(["docker", "info"], capture_output=True, check=False).returncode == 0,
    reason="a Docker engine answers here: make docker-all would really run",
)
def test_docker_all_without_an_engine_leaves_output_alone(tmp_path):
    """Issue 12 item 17: the engine is checked before any file is touched."""
    shutil.copy2(PROJECT / "Makefile", tmp_path)
    (tmp_path / "parity").mkdir()
    shutil.copy2(registry.REGISTRY, tmp_path / "parity")  # what make and the scripts read
    shutil.copytree(CONTAINERS, tmp_path / "containers",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    output = tmp_path / "output"
    output.mkdir()
    (output / "notes.txt").write_text("mine\n")
    (output / "reference_output.parquet").write_bytes(b"an earlier run\n")
    result = subprocess.run(
        ["make", "--no-print-directory", "-C", str(tmp_path), "docker-all",
         "CONTAINER_ENGINE=docker"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    reason = result.stderr.splitlines()[0]  # then make's own "Error 2" line
    assert reason in ("CONTAINER_ENGINE=docker: no Docker engine answers ('docker info' fails)",
                      "CONTAINER_ENGINE=docker: no 'docker' command on PATH")  # fmt: skip
    assert (output / "notes.txt").read_text() == "mine\n"
    assert (output / "reference_output.parquet").read_bytes() == b"an earlier run\n"
    assert not (tmp_path / ".state").exists()


@pytest.mark.parametrize("beside", ["requirements.txt", None])
def test_docker_all_refuses_a_pipeline_the_images_cannot_run_before_any_engine(tmp_path, beside):
    """Issue 20: the images hold exactly uv.lock, so a pipeline's requirements.txt is refused
    (and a module name, which has no folder to mount): one line, exit 2, no engine asked."""
    folder = tmp_path / "mine"
    shutil.copytree(PROJECT / "examples" / "shop", folder)
    pipeline = str(folder / "shop.py")
    if beside:
        (folder / beside).write_text("tabulate\n")
    else:
        pipeline = "shop"  # a module name
    result = subprocess.run(
        [str(CONTAINERS / "docker-all.sh")],
        env={**os.environ, "PIPELINE": pipeline, "CONTAINER_ENGINE": "no-such-engine"},
        capture_output=True, text=True, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stdout == ""
    expected = (
        f"docker-all: {folder / 'requirements.txt'}: the images do not install a pipeline's "
        "requirements.txt (they hold exactly uv.lock); run it locally: "
        f"make all PIPELINE={pipeline}"
        if beside
        else "docker-all: PIPELINE=shop: no such file; the containers need a pipeline's file "
        "(folder/name.py), whose folder they mount (a module name cannot be mounted)"
    )
    assert result.stderr.splitlines() == [expected]
