"""make up / make down / make status, and `exec` for deployed-mode runs (see stack/__init__.py)."""

import argparse
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

from stack import (
    layout,
    locks,
    orchestrators,
    pipelines,
    postgres,
    processes,
    redis,
    settings,
    supervisor,
)
from stack.errors import StackError

SUPERVISORD_TIMEOUT = 30.0
SERVICE_TIMEOUT = 120.0
SHUTDOWN_TIMEOUT = 120.0


def _healthy(values: dict[str, str]) -> bool:
    """Every program RUNNING and every UI answering: nothing for `up` to do."""
    if any(info["statename"] != "RUNNING" for info in supervisor.processes()):
        return False
    found = orchestrators.urls(orchestrators.discover(), values)
    return all(orchestrators.http_ok(health) for _, _, health, _ in found)


def up() -> dict[str, str]:
    """Start whatever is not running and wait until every service answers; returns settings."""
    binaries = layout.find_binaries()
    started_here = False
    if supervisor.pid() is not None and supervisor.answers():
        values = settings.read()
        if not values:
            raise StackError(f"supervisord runs but {layout.ENV_FILE} is gone: make down; make up")
        if _healthy(values):
            return values
    else:
        layout.STATE.mkdir(parents=True, exist_ok=True)
        for folder in layout.PRIVATE_FOLDERS:  # logs, $HOME, sockets: yours alone
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            folder.chmod(0o700)
        processes.stop_leftovers()  # of a supervisord that was killed
        ports = [name for found in orchestrators.discover() for name in found.ports]
        values = settings.choose(binaries, ports)
        postgres.ensure_cluster(binaries, values)
        settings.write(values)
        redis.write_config(values)
        supervisor.start(settings.program_environment(values), SUPERVISORD_TIMEOUT)
        started_here = True
    try:
        _bring_up(binaries, values)
    except BaseException:
        if started_here:
            down(quiet=True)
        raise
    return values


def _bring_up(binaries: layout.Binaries, values: dict[str, str]) -> None:
    postgres.wait_ready(
        binaries, values, lambda: supervisor.state_of("postgres") in ("STARTING", "RUNNING"),
        SERVICE_TIMEOUT,
    )  # fmt: skip
    redis.wait_ready(
        binaries.redis_cli, values,
        lambda: supervisor.state_of("redis") in ("STARTING", "RUNNING"), SERVICE_TIMEOUT,
    )  # fmt: skip
    postgres.ensure_databases(binaries, values)
    pipelines.register_default()  # before any server loads the registered pipelines
    environment = settings.program_environment(values)
    found = orchestrators.discover()
    with ThreadPoolExecutor(max_workers=max(1, len(found))) as pool:
        futures = [pool.submit(orchestrators.bring_up, each, values, environment) for each in found]
        for future in futures:
            future.result()
    _all_running(SERVICE_TIMEOUT)


def _all_running(timeout: float) -> None:
    """Every program past supervisor's start-up check (startsecs) and RUNNING."""
    deadline = time.monotonic() + timeout
    while True:
        found = supervisor.processes()
        if not any(info["statename"] in ("STARTING", "BACKOFF") for info in found):
            break
        if time.monotonic() > deadline:
            break
        time.sleep(0.2)
    for info in found:
        if info["statename"] != "RUNNING":
            group, program = info["group"], info["name"]
            name = program if group == program else f"{group}:{program}"
            raise StackError(f"{name} is {info['statename']}; see {info['stdout_logfile']}")


def print_urls(values: dict[str, str]) -> None:
    print(
        f"PostgreSQL  postgresql://{values['STACK_PG_USER']}@127.0.0.1:{values['STACK_PG_PORT']}"
        f"  (databases: {', '.join(postgres.DATABASES)}; password: STACK_PG_PASSWORD in"
        f" {layout.ENV_FILE}, also {layout.PG_PASSWORD_FILE})"
    )
    print(f"Redis       redis://127.0.0.1:{values['STACK_REDIS_PORT']}"
          f"  (password: STACK_REDIS_PASSWORD in {layout.ENV_FILE})")  # fmt: skip
    for name, url, _, login in orchestrators.urls(orchestrators.discover(), values):
        print(f"{name:<11} {url}")
        _print_login(login)


def _print_login(login: str) -> None:
    """Where a UI's credential is (stack.env, 0600): a secret never goes to the console,
    whose output lands in CI logs and terminals shared on screen."""
    if login:
        print(f"{'':<11} log in with {login}")


def down(quiet: bool = False) -> None:
    """Stop supervisord and everything under it; then make sure nothing of the stack runs."""
    if supervisor.pid() is not None:
        supervisor.shutdown(SHUTDOWN_TIMEOUT)
    leftovers = processes.stop_leftovers()
    if leftovers and not quiet:
        listed = "; ".join(f"{pid}: {cmd[:80]}" for pid, cmd in sorted(leftovers.items()))
        print(
            f"stack: stopped {len(leftovers)} process(es) supervisord left: {listed}",
            file=sys.stderr,
        )
    remaining = processes.of_stack()
    if remaining:
        raise StackError(f"processes of the stack still running: {sorted(remaining)}")
    for stale in (layout.ENV_FILE, layout.SUPERVISORD_PID, layout.SUPERVISOR_SOCKET):
        stale.unlink(missing_ok=True)


def status() -> int:
    if supervisor.pid() is None or not supervisor.answers():
        leftovers = processes.of_stack()
        if leftovers:
            print(f"stack: supervisord is gone but {len(leftovers)} of its processes run:"
                  " make down stops them")  # fmt: skip
            return 1
        print("stack: down (make up starts it)")
        return 0
    values = settings.read()
    for line in supervisor.status_lines():
        print(line)
    all_ok = True
    for name, url, health, login in orchestrators.urls(orchestrators.discover(), values):
        ok = orchestrators.http_ok(health)
        all_ok &= ok
        print(f"{name:<11} {url}  {'answers' if ok else 'NOT ANSWERING'}")
        _print_login(login)
    running = all(info["statename"] == "RUNNING" for info in supervisor.processes())
    return 0 if running and all_ok else 1


def run_with_stack(command: list[str]) -> int:
    """COMMAND with the stack up: if it was down, up first and down afterwards, whatever
    COMMAND's outcome, but only once every other command using the stack has finished;
    the exit status is COMMAND's."""
    with ExitStack() as held:
        with locks.changing():
            was_up = supervisor.pid() is not None
            if not was_up:
                print("stack: down, starting it for this command (and stopping it after)")
            up()
            held.enter_context(locks.using())
        try:
            return subprocess.run(command, check=False).returncode
        finally:
            held.close()
            if not was_up:
                with locks.changing(), locks.using(exclusive=True):
                    down()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stack", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("up", help="start the stack (idempotent) and print its URLs")
    commands.add_parser("down", help="stop everything `up` started")
    commands.add_parser("status", help="each service's state and URL")
    run = commands.add_parser("exec", help="run a command with the stack up")
    run.add_argument("cmd", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            started = time.monotonic()
            with locks.changing():
                values = up()
            print_urls(values)
            print(f"stack: up ({time.monotonic() - started:.1f} s); make status, make down")
        elif args.command == "down":
            started = time.monotonic()
            with locks.changing():
                down()
            print(f"stack: down ({time.monotonic() - started:.1f} s), nothing left running")
        elif args.command == "status":
            return status()
        else:
            command = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
            if not command or not shutil.which(command[0]):
                parser.error(f"exec needs a command to run, got {command}")
            return run_with_stack(command)
    except StackError as error:
        print(f"stack: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("stack: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
