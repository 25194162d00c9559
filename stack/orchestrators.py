"""Each orchestrator's part of the stack, declared in `<orchestrator>/deployed/stack.toml`:

    ports = ["PREFECT_PORT"]            # free loopback ports to choose at `make up`
    [env]                               # extra variables for its `run` steps
    PREFECT_API_URL = "http://127.0.0.1:${PREFECT_PORT}/api"
    [[ui]]                              # printed by `make up` / `make status`
    name = "Prefect"
    url = "http://127.0.0.1:${PREFECT_PORT}"
    health = "http://127.0.0.1:${PREFECT_PORT}/api/health"    # must answer HTTP 200
    login = "the auth string STACK_PREFECT_API_AUTH in ${STACK_STATE}/stack.env"
    [[up]]                              # start-up steps, in order, each idempotent:
    start = ["prefect:server"]          #   supervisor programs to start
    [[up]]
    wait = "http://…/api/health"        #   a URL to poll until HTTP 200 (`timeout`, seconds)
    [[up]]
    run = ["…/prefect", "deploy", …]    #   a command that must exit 0 (`timeout`, seconds)

`${NAME}` is replaced by the stack's settings (stack.env). Orchestrators start side by side,
each one's steps in order, once PostgreSQL and Redis answer.
"""

import glob
import subprocess
import time
import tomllib
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from string import Template

from stack import layout, supervisor
from stack.errors import StackError

DEFAULT_TIMEOUT = 300.0
# Loopback only: a proxy from the caller's environment must never see a health check.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass(frozen=True)
class Orchestrator:
    name: str  # its folder: prefect, airflow, dagster
    ports: list[str]
    env: dict[str, str]
    ui: list[dict]
    up: list[dict]


def discover() -> list[Orchestrator]:
    found = []
    for path in sorted(glob.glob(str(layout.PROJECT / "*" / "deployed" / "stack.toml"))):
        manifest = tomllib.loads(Path(path).read_text())
        name = Path(path).parent.parent.name
        found.append(
            Orchestrator(
                name,
                manifest.get("ports", []),
                manifest.get("env", {}),
                manifest.get("ui", []),
                manifest.get("up", []),
            )
        )
    return found


def expand(text: str, values: dict[str, str]) -> str:
    return Template(text).substitute(values)


def http_ok(url: str) -> bool:
    try:
        with _OPENER.open(url, timeout=5) as response:
            return response.status == 200
    except (OSError, urllib.error.URLError):
        return False


def wait_http(url: str, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not http_ok(url):
        if time.monotonic() > deadline:
            raise StackError(f"{what}: {url} did not answer HTTP 200 within {timeout:.0f} s")
        time.sleep(0.5)


def bring_up(orchestrator: Orchestrator, values: dict[str, str], environment: dict) -> None:
    """Run its start-up steps in order; the first failing one raises with its log's path."""
    log = layout.LOGS / f"{orchestrator.name}-up.log"
    own = {name: expand(value, values) for name, value in orchestrator.env.items()}
    environment = {**environment, **own}
    for step in orchestrator.up:
        started = time.monotonic()
        timeout = float(step.get("timeout", DEFAULT_TIMEOUT))
        if "start" in step:
            with ThreadPoolExecutor(max_workers=len(step["start"])) as pool:
                list(pool.map(supervisor.start_program, step["start"]))
        elif "wait" in step:
            wait_http(expand(step["wait"], values), timeout, orchestrator.name)
        elif "run" in step:
            command = [expand(part, values) for part in step["run"]]
            _run(orchestrator.name, command, environment, timeout, log)
        else:
            raise StackError(f"{orchestrator.name}/deployed/stack.toml: unknown step {step}")
        with log.open("a") as out:  # where the seconds of `make up` go
            out.write(f"# {step} took {time.monotonic() - started:.1f} s\n")


def _run(name: str, command: list[str], environment: dict, timeout: float, log: Path) -> None:
    with log.open("a") as out:
        out.write(f"$ {' '.join(command)}\n")
        out.flush()
        try:
            result = subprocess.run(
                command, cwd=layout.PROJECT, env=environment, stdout=out,
                stderr=subprocess.STDOUT, timeout=timeout, check=False,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            what = " ".join(command[-3:])
            raise StackError(f"{name}: `{what}` took over {timeout:.0f} s; see {log}") from None
    if result.returncode != 0:
        raise StackError(f"{name}: `{' '.join(command[-3:])}` failed; see {log}")


def urls(
    orchestrators: list[Orchestrator], values: dict[str, str]
) -> list[tuple[str, str, str, str]]:
    """(name, url, health url, how to log in) of every UI; the last says where the
    credential is, never the credential itself."""
    return [
        (
            ui["name"],
            expand(ui["url"], values),
            expand(ui.get("health", ui["url"]), values),
            expand(ui.get("login", ""), values),
        )
        for orchestrator in orchestrators
        for ui in orchestrator.ui
    ]
