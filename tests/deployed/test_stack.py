"""`make up`, `make status`, `make down`: the deployed stack as a user drives it.

Every service must answer on loopback (PostgreSQL with a database per orchestrator, Redis,
each UI); a second `make up` changes nothing; `make down` leaves no process behind.
"""

import re
import subprocess
import time

import pytest

from parity.registry import ORCHESTRATORS
from tests.conftest import PROJECT, make
from tests.deployed.conftest import (
    STATE,
    dagster_headers,
    http_status,
    settings,
    stack_processes,
    up,
)

pytestmark = pytest.mark.deployed

URL = re.compile(r"^(\S+)\s+(http://127\.0\.0\.1:\d+\S*)$", re.MULTILINE)


@pytest.fixture(scope="module")
def cold_up() -> tuple[str, float]:
    """`make up` from a stopped stack (its PostgreSQL cluster may exist): output, seconds."""
    assert make("down").returncode == 0
    started = time.monotonic()
    output = up()
    seconds = time.monotonic() - started
    print(f"make up, cold: {seconds:.1f} s")
    return output, seconds


def test_up_prints_every_ui_url_and_each_answers_http_200_to_its_login(cold_up):
    output, _ = cold_up
    urls = dict(URL.findall(output))
    assert "Prefect" in urls, output
    logins = {"Dagster": dagster_headers()}  # the others ask in the page (login form, auth string)
    for name, url in urls.items():
        assert http_status(url, headers=logins.get(name))[0] == 200, name


def test_up_says_where_each_credential_is_and_prints_none(cold_up):
    output, _ = cold_up
    for name in ("STACK_PREFECT_API_AUTH", "STACK_AIRFLOW_PASSWORD", "STACK_DAGSTER_PASSWORD",
                 "STACK_REDIS_PASSWORD", "STACK_PG_PASSWORD"):  # fmt: skip
        assert f"{name} in {STATE / 'stack.env'}" in output, name
    secrets = [value for name, value in settings().items() if "PASSWORD" in name or "AUTH" in name]
    assert secrets and not any(secret in output for secret in secrets)


def test_postgres_holds_a_database_per_orchestrator(cold_up):
    values = settings()
    query = subprocess.run(
        ["psql", "-X", "-tA", "-h", "127.0.0.1", "-p", values["STACK_PG_PORT"],
         "-U", values["STACK_PG_USER"], "-d", "postgres", "-c", "SELECT datname FROM pg_database"],
        capture_output=True, text=True, check=True,
        env={"PGPASSWORD": values["STACK_PG_PASSWORD"], "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert set(ORCHESTRATORS) <= set(query.stdout.split())


def test_redis_answers_ping_with_the_stacks_password(cold_up):
    values = settings()
    ping = subprocess.run(
        ["redis-cli", "--no-auth-warning", "-h", "127.0.0.1", "-p", values["STACK_REDIS_PORT"],
         "ping"],
        capture_output=True, text=True,
        env={"REDISCLI_AUTH": values["STACK_REDIS_PASSWORD"], "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert ping.stdout.strip() == "PONG"


def test_every_port_is_on_loopback_only(cold_up):
    listening = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True, check=True)
    ports = {value for name, value in settings().items() if name.endswith("_PORT")}
    for line in listening.stdout.splitlines():
        local = line.split()[3]
        if local.rsplit(":", 1)[1] in ports:
            assert local.rsplit(":", 1)[0] == "127.0.0.1", line


def test_up_again_is_instant_and_changes_nothing(cold_up):
    output, _ = cold_up
    before = (STATE / "supervisord.pid").read_text()
    started = time.monotonic()
    again = up()
    seconds = time.monotonic() - started
    print(f"make up, warm: {seconds:.1f} s")
    assert URL.findall(again) == URL.findall(output)
    assert (STATE / "supervisord.pid").read_text() == before
    assert seconds < 10


def test_status_shows_each_service_running_and_each_url(cold_up):
    status = make("status")
    assert status.returncode == 0, status.stdout + status.stderr
    for program in ("postgres", "redis", "prefect:server", "prefect:worker-1", "prefect:worker-2"):
        assert re.search(rf"^{re.escape(program)}\s+RUNNING", status.stdout, re.MULTILINE), program
    assert re.search(r"^Prefect\s+http://127\.0\.0\.1:\d+\S*\s+answers$", status.stdout, re.M)


def test_down_leaves_no_process_and_status_says_down():
    up()
    assert stack_processes(), "the stack should be running before make down"
    started = time.monotonic()
    down = make("down")
    print(f"make down: {time.monotonic() - started:.1f} s")
    assert down.returncode == 0, down.stdout + down.stderr
    assert stack_processes() == []
    assert "stack: down" in make("status").stdout


def test_a_missing_server_binary_is_one_line_saying_how_to_install_it(tmp_path):
    result = subprocess.run(
        [str(PROJECT / ".venvs" / "stack" / "bin" / "python"), "-m", "stack", "up"],
        capture_output=True, text=True, cwd=PROJECT,
        env={"PATH": str(tmp_path), "STACK_PG_BINDIR": str(tmp_path)},
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1
    assert "apt-get install postgresql" in result.stderr
