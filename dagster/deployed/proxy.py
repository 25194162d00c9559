"""The authenticating proxy in front of Dagster's webserver: nginx with HTTP basic auth.

    python dagster/deployed/proxy.py        (a `make up` step: dagster/deployed/stack.toml)

Dagster's open-source webserver has no login (Dagster+ has one; the OSS docs say to put it
behind an authenticating proxy). So the webserver listens only on a Unix socket in a 0700
folder (webserver.py), and nginx, from Debian's packages, listens on the stack's loopback
port DAGSTER_PORT, asks every request for the stack's user and password (STACK_DAGSTER_USER,
STACK_DAGSTER_PASSWORD in stack.env) and passes it on to the socket, WebSockets included.
`/server_info` (versions only) is left open as the health check, like Prefect's
`/api/health` and Airflow's `/api/v2/monitor/health`.

This writes, at each `make up`, nginx.conf and the password file (apache2-utils' htpasswd,
the password on its stdin, never its command line), both 0600, in that 0700 folder. nginx
needs no root: supervisord runs it as the stack's service user (STACK_PG_OS_USER: PostgreSQL's
`postgres` when `make up` runs as root, else you), so the folder and both files are that
user's. The webserver's socket in it is uvicorn's (mode 0666), so only that user and root
reach it. The folder is `.state/stack/dagster-web`, beside `dagster/` rather than in it: the
code server's socket in `dagster/` stays yours alone.
"""

import os
import pwd
import shutil
import subprocess
import sys
from pathlib import Path

NGINX, HTPASSWD = "/usr/sbin/nginx", "htpasswd"
INSTALL = "apt-get install nginx-light apache2-utils"


def folder(state: str) -> Path:
    """Where the webserver's socket, the proxy's config and the password file live."""
    return Path(state) / "dagster-web"


def nginx_conf(web: Path, port: str) -> str:
    temporaries = "".join(
        f"    {kind}_temp_path {web / 'tmp' / kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""# Written by dagster/deployed/proxy.py at `make up`; rewritten each time.
daemon off;
worker_processes 1;
pid {web / "nginx.pid"};
error_log stderr warn;
events {{ worker_connections 512; }}
http {{
    access_log off;
{temporaries}    upstream dagster_webserver {{ server unix:{web / "webserver.sock"}; }}
    map $http_upgrade $connection_upgrade {{ default upgrade; "" close; }}
    server {{
        listen 127.0.0.1:{port};
        auth_basic "Dagster (the deployed stack: make status says where the password is)";
        auth_basic_user_file {web / "htpasswd"};
        client_max_body_size 64m;
        proxy_http_version 1.1;
        proxy_set_header Host $http_host;
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection $connection_upgrade;
        proxy_read_timeout 1h;
        proxy_buffering off;
        location = /server_info {{ auth_basic off; proxy_pass http://dagster_webserver; }}
        # A page to open with the login in the URL (http://user:password@…/login): the browser
        # keeps the login and goes on to a URL without it, which the UI's own requests need.
        # (try_files: a `return` here would answer before auth_basic asks for the login.)
        location = /login {{ try_files /nonexistent @runs; }}
        location @runs {{ return 302 /runs; }}
        location / {{ proxy_pass http://dagster_webserver; }}
    }}
}}
"""


def _write_private(path: Path, text: str) -> None:
    temporary = path.with_name(path.name + ".tmp")
    with os.fdopen(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as out:
        out.write(text)
    temporary.replace(path)


def _give_to(user: pwd.struct_passwd, *paths: Path) -> None:
    """What nginx reads and writes, made its user's (a no-op when that user is you)."""
    for path in paths:
        if path.stat().st_uid != user.pw_uid:
            os.chown(path, user.pw_uid, user.pw_gid)


def main() -> int:
    if not Path(NGINX).exists() or not shutil.which(HTPASSWD):
        print(f"nginx or htpasswd not found (Dagster's login proxy): {INSTALL}", file=sys.stderr)
        return 1
    web = folder(os.environ["STACK_STATE"])
    web.mkdir(mode=0o700, parents=True, exist_ok=True)
    web.chmod(0o700)
    temporaries = [
        web / "tmp" / kind for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    ]
    for path in temporaries:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    _write_private(web / "nginx.conf", nginx_conf(web, os.environ["DAGSTER_PORT"]))
    hashed = subprocess.run(
        [HTPASSWD, "-niB", os.environ["STACK_DAGSTER_USER"]],
        input=os.environ["STACK_DAGSTER_PASSWORD"], capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    _write_private(web / "htpasswd", hashed)
    service = pwd.getpwnam(os.environ["STACK_PG_OS_USER"])
    _give_to(service, web, web / "tmp", *temporaries, web / "nginx.conf", web / "htpasswd")
    print(f"wrote {web / 'nginx.conf'} and {web / 'htpasswd'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
