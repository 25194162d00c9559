#!/usr/bin/env bash
# Runs a compose that honours `depends_on: condition: service_completed_successfully`
# against the chosen engine:  containers/compose.sh [COMPOSE ARGS...]
#   docker: `docker compose` (the plugin), else `docker-compose`.
#   podman: `docker-compose` (or the docker CLI's compose plugin) against a `podman system
#           service` on a unix socket in a temporary folder, stopped again when compose ends.
# podman-compose is never used: it starts `compare` without waiting for the runs it depends
# on, so a failed run would still end in a pass.
set -euo pipefail
# shellcheck source=containers/engine.sh
source "$(dirname "$0")/engine.sh"
detect_engine

compose=()
if [[ $CONTAINER_ENGINE == docker ]] && docker compose version > /dev/null 2>&1; then
    compose=(docker compose)
elif command -v docker-compose > /dev/null; then
    compose=(docker-compose)
elif command -v docker > /dev/null && docker compose version > /dev/null 2>&1; then
    compose=(docker compose)
else
    fail_usage "compose: no docker-compose nor docker compose plugin (podman-compose does not wait for depends_on conditions, so it is not used)"
fi

if [[ $CONTAINER_ENGINE == podman ]]; then
    socket_dir=$(mktemp -d "${TMPDIR:-/tmp}/parity-harness-podman.XXXXXX")
    podman system service --time=0 "unix://$socket_dir/podman.sock" \
        > "$socket_dir/service.log" 2>&1 &
    service=$!
    # shellcheck disable=SC2317  # called by the EXIT trap
    stop_service() {
        kill "$service" 2> /dev/null || true
        wait "$service" 2> /dev/null || true
        rm -rf "$socket_dir"
    }
    trap stop_service EXIT
    trap 'exit 130' INT TERM  # run the EXIT trap on a signal too
    deadline=$((SECONDS + 30))
    until [[ -S $socket_dir/podman.sock ]]; do
        if ! kill -0 "$service" 2> /dev/null || ((SECONDS > deadline)); then
            cat "$socket_dir/service.log" >&2
            echo "compose: podman system service did not start on $socket_dir/podman.sock" >&2
            exit 1
        fi
        sleep 0.1
    done
    # The API podman serves builds without BuildKit.
    export DOCKER_HOST=unix://$socket_dir/podman.sock DOCKER_BUILDKIT=0 COMPOSE_DOCKER_CLI_BUILD=0
fi
status=0
"${compose[@]}" "$@" || status=$?
exit "$status"
