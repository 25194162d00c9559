"""The deployed stack: PostgreSQL, Redis and every orchestrator's production services, under
one supervisord, on loopback ports chosen at `make up`, with all state in `.state/stack/`.

    python -m stack up | down | status        (make up, make down, make status)
    python -m stack exec -- COMMAND ...       run COMMAND with the stack up; if it was down,
                                              bring it up first and down again afterwards

The shared part lives here (`supervisord.conf`, PostgreSQL, Redis, ports); each orchestrator
adds `<orchestrator>/deployed/supervisord.conf` (its programs) and
`<orchestrator>/deployed/stack.toml` (its ports, UI and start-up steps), found by a glob.
"""
