# shellcheck shell=bash disable=SC2034  # the variables are for the scripts that source it
# Sourced by the scripts beside it: which container engine to use, and the settings podman
# needs on this machine kind. Sets CONTAINER_ENGINE (docker or podman) or exits 2 with one line.
#
# CONTAINER_ENGINE=docker|podman picks one; unset, a running Docker engine is preferred, then
# podman. A `docker` command alone is not enough: it is often only the client.

PROJECT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE=$PROJECT/.state/containers

fail_usage() { echo "$*" >&2; exit 2; }

detect_engine() {
    case "${CONTAINER_ENGINE:-}" in
        docker | podman)
            command -v "$CONTAINER_ENGINE" > /dev/null \
                || fail_usage "CONTAINER_ENGINE=$CONTAINER_ENGINE: no '$CONTAINER_ENGINE' command on PATH"
            ;;
        "")
            if command -v docker > /dev/null && docker info > /dev/null 2>&1; then
                CONTAINER_ENGINE=docker
            elif command -v podman > /dev/null; then
                CONTAINER_ENGINE=podman
            else
                fail_usage "no container engine: neither a running Docker engine nor podman found (install one, or set CONTAINER_ENGINE=docker|podman)"
            fi
            ;;
        *) fail_usage "CONTAINER_ENGINE=$CONTAINER_ENGINE: expected docker or podman" ;;
    esac
    export CONTAINER_ENGINE
    if [[ $CONTAINER_ENGINE == podman ]]; then
        podman_settings
    elif ! docker info > /dev/null 2>&1; then
        fail_usage "CONTAINER_ENGINE=docker: no Docker engine answers ('docker info' fails)"
    fi
}

# Podman's defaults fail here in two ways: crun cannot run under this VM's hybrid cgroups,
# and its default ulimits exceed the hard limits root has. A containers.conf named by
# CONTAINERS_CONF, written at run time under .state, fixes both without changing any system
# file. A CONTAINERS_CONF you set yourself is used as it is.
podman_settings() {
    [[ -n ${CONTAINERS_CONF:-} ]] && return
    local nofile nproc conf=$STATE/containers.conf
    nofile=$(ulimit -Hn)
    nproc=$(ulimit -Hu)
    [[ $nofile == unlimited ]] && nofile=1048576
    if [[ $nproc == unlimited ]] || ((nproc > 16384)); then nproc=16384; fi
    mkdir -p "$STATE"
    {
        echo "# Written by containers/engine.sh for this machine; regenerated on every run."
        echo "[containers]"
        echo "default_ulimits = [\"nofile=$nofile:$nofile\", \"nproc=$nproc:$nproc\"]"
        if command -v runc > /dev/null; then
            echo "[engine]"
            echo "runtime = \"runc\""
        fi
    } > "$conf"
    export CONTAINERS_CONF=$conf
}

# One image per wrapper of the registry (parity/wrappers.txt, one name a line), each built
# from the one Dockerfile and the repository root with --build-arg WRAPPER=<name>.
mapfile -t IMAGES < "$PROJECT/parity/wrappers.txt"
DOCKERFILE=Dockerfile
image_tag() { echo "parity-harness/$1"; }

# What docker-compose.yml runs: every wrapper on the sample, and its backfill of these dates.
SAMPLE=data/synthetic_events.csv
SAMPLE_START=2024-01-01
SAMPLE_END=2024-01-07
sample_dates() {
    local day=$SAMPLE_START
    while [[ ! $day > $SAMPLE_END ]]; do
        echo "$day"
        day=$(date -u -d "$day + 1 day" +%F)
    done
}

# Seconds since a saved $EPOCHREALTIME, one decimal.
seconds_since() { awk -v start="$1" -v now="$EPOCHREALTIME" 'BEGIN { printf "%.1f", now - start }'; }
