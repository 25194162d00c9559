"""The deployed stack's tests run real services: PostgreSQL, Redis and each orchestrator's
servers and workers, started with `make up` and stopped with `make down`. They are skipped,
with the reason, only where the machine lacks the PostgreSQL or Redis binaries."""

import base64
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from stack import settings as stack_settings
from tests.conftest import PROJECT, SAMPLE, carries_session_mark, make, run_reference

DATES = [f"2024-01-0{day}" for day in range(1, 8)]
STATE = PROJECT / ".state" / "stack"
STACK_ENV = STATE / "stack.env"
LOOPBACK = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def missing_services() -> str | None:
    if not glob.glob("/usr/lib/postgresql/*/bin/initdb") and not os.environ.get("STACK_PG_BINDIR"):
        return "PostgreSQL server binaries absent (apt-get install postgresql)"
    if not shutil.which("redis-server"):
        return "redis-server absent (apt-get install redis-server)"
    if not (os.path.exists("/usr/sbin/nginx") and shutil.which("htpasswd")):
        return "nginx or htpasswd absent (apt-get install nginx-light apache2-utils)"
    return None


@pytest.fixture(scope="session", autouse=True)
def services_installed() -> None:
    reason = missing_services()
    if reason:
        pytest.skip(reason)
    result = make("setup")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module", autouse=True)
def stack_stopped_after(services_installed):
    """After each module, stop the stack unless it ran before: the local-mode tests that
    follow check that no orchestrator process is left running, and the stack's would be."""
    was_up = "RUNNING" in make("status").stdout
    yield
    if not was_up:
        assert make("down").returncode == 0


def retry_lines(output: str) -> list[str]:
    """The console lines that speak of a retry (issue 22: one per retry, with the step, the
    attempt, the reason and the delay)."""
    return [line for line in output.splitlines() if re.search(r"\bretry\b", line, re.IGNORECASE)]


def assert_local_modes_retry_lines(output: str, limit: str = "") -> None:
    """ETL_FAIL_ATTEMPTS=2 (faults in step `metrics`) under the events retry policy (two
    retries, one second apart: docs/front-door.md): two lines, each the one local mode prints
    (parity.console), giving the step, the attempt (`limit`: " of 3" where the orchestrator
    says), the reason and the delay."""
    retries = retry_lines(output)
    assert len(retries) == 2, output
    for attempt, line in enumerate(retries, start=1):
        assert (
            f"retry: step 'metrics' attempt {attempt}{limit} failed: TransientStepError: "
            f"metrics: injected transient failure on attempt {attempt} "
        ) in line, line
        assert line.endswith("; next attempt in 1 s"), line


def settings() -> dict[str, str]:
    """The running stack's ports and credentials, as `make up` recorded them."""
    values = stack_settings.read(STACK_ENV)
    assert values, f"{STACK_ENV} missing: the stack is not up"
    return values


def up() -> str:
    """`make up` (instant when the stack already runs); its output."""
    result = make("up")
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def http_status(
    url: str, body: dict | None = None, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    """GET `url` as a browser does (UIs route deep links only for HTML navigation), or POST
    `body` as JSON to an API; `headers` carry a credential."""
    data = json.dumps(body).encode() if body is not None else None
    sent = {"Content-Type": "application/json"} if data else {"Accept": "text/html"}
    request = urllib.request.Request(url, data=data, headers={**sent, **(headers or {})})
    with LOOPBACK.open(request, timeout=30) as response:
        return response.status, response.read()


def basic_auth(credential: str) -> dict[str, str]:
    """The Authorization header of HTTP basic auth for "user:password" (Prefect's auth
    string is sent this way)."""
    return {"Authorization": "Basic " + base64.b64encode(credential.encode()).decode()}


def prefect_headers() -> dict[str, str]:
    """What a Prefect client sends the stack's server: its auth string (stack.env)."""
    return basic_auth(settings()["STACK_PREFECT_API_AUTH"])


def dagster_headers() -> dict[str, str]:
    """What the Dagster proxy asks of every request: the stack's user and password."""
    values = settings()
    return basic_auth(f"{values['STACK_DAGSTER_USER']}:{values['STACK_DAGSTER_PASSWORD']}")


def airflow_token(base: str) -> str:
    """A token from Airflow's simple auth manager for the stack's user and password."""
    values = settings()
    login = {"username": values["STACK_AIRFLOW_USER"], "password": values["STACK_AIRFLOW_PASSWORD"]}
    status, answer = http_status(base + "/auth/token", login)
    assert status == 201, answer
    return json.loads(answer)["access_token"]


def _ancestors() -> set[int]:
    found, number = set(), os.getpid()
    while number > 1 and number not in found:
        found.add(number)
        number = int(Path(f"/proc/{number}/stat").read_text().rsplit(")", 1)[1].split()[1])
    return found


def stack_processes() -> list[str]:
    """Live processes of the stack, found without the stack's own code: a program from one of
    the project's environments (supervisord, servers, workers) that this session started or
    that the stack marked (STACK_STATE), or any process working inside .state/stack
    (PostgreSQL and Redis run in their data folders there). The other tier's runs, beside
    this session under `make test`, are neither."""
    venvs, mine, found = PROJECT / ".venvs", _ancestors(), []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) in mine:
            continue
        try:
            if (proc / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                continue
            cwd = Path(os.readlink(proc / "cwd"))
            arguments = (proc / "cmdline").read_bytes().decode().split("\0")
            marked = carries_session_mark(proc) or b"\0STACK_STATE=" in b"\0" + (
                proc / "environ"
            ).read_bytes()
        except (OSError, ValueError, IndexError):
            continue
        programs = [cwd / argument for argument in arguments[:2] if argument]
        if cwd.is_relative_to(STATE) or (marked and any(p.is_relative_to(venvs) for p in programs)):
            found.append(f"{proc.name}: {' '.join(arguments)[:160]}")
    return found


@pytest.fixture(scope="module")
def truth(tmp_path_factory) -> Path:
    """The reference runner's outputs: the sample (all dates, each date) and another input,
    `other_events.csv`, beside them."""
    folder = tmp_path_factory.mktemp("truth")
    other = folder / "other_events.csv"
    subprocess.run(
        [sys.executable, "-m", "shared_etl.generate", "--rows", "20000", "--seed", "5",
         "--start", "2024-02-10", "--days", "3", "--output", str(other)],
        check=True, cwd=PROJECT, capture_output=True,
    )  # fmt: skip
    jobs = [(SAMPLE, folder / "sample.parquet", None), (other, folder / "other.parquet", None)]
    jobs += [(SAMPLE, folder / f"{day}.parquet", day) for day in DATES]
    for source, output, day in jobs:
        result = run_reference(
            "--input-path", str(source), "--output-path", str(output),
            *(["--date", day] if day else []),
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
    return folder


def deployed(*variables: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """A make target in deployed mode, as a user runs it."""
    return make(*variables, "MODE=deployed", env=env)

