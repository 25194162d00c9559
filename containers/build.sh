#!/usr/bin/env bash
# Builds the images, one per wrapper of the registry, from the one Dockerfile and the
# repository root (--build-arg WRAPPER=NAME), tagged as docker-compose.yml names them.
#   containers/build.sh [NAME...]        NAME: reference prefect dagster airflow (default: all)
# PYTHON_IMAGE, when set, replaces the Dockerfile's base image (its ARG PYTHON_IMAGE).
# Each build's log goes to .state/containers/logs/build-NAME.log; one line per image here.
set -euo pipefail
# shellcheck source=containers/engine.sh
source "$(dirname "$0")/engine.sh"
detect_engine
cd "$PROJECT"

names=("$@")
((${#names[@]})) || names=("${IMAGES[@]}")
build_args=()
[[ -n ${PYTHON_IMAGE:-} ]] && build_args+=(--build-arg "PYTHON_IMAGE=$PYTHON_IMAGE")
mkdir -p "$STATE/logs"
for name in "${names[@]}"; do
    [[ " ${IMAGES[*]} " == *" $name "* ]] || fail_usage "build: unknown image '$name' (expected one of: ${IMAGES[*]})"
    log=$STATE/logs/build-$name.log
    started=$EPOCHREALTIME
    if ! "$CONTAINER_ENGINE" build "${build_args[@]}" --build-arg "WRAPPER=$name" -f "$DOCKERFILE" \
        -t "$(image_tag "$name")" . > "$log" 2>&1; then
        tail -15 "$log" >&2
        echo "build: $(image_tag "$name") from $DOCKERFILE (WRAPPER=$name) failed (log: $log)" >&2
        if grep -q -E 'pinging container registry|pull access denied|failed to resolve source' "$log"; then
            echo "build: no base image: with no registry in reach, PYTHON_IMAGE=TAG names a local one (containers/standin-base.sh builds one)" >&2
        fi
        exit 1
    fi
    printf 'build: %s in %.1f s (%s, log: %s)\n' "$(image_tag "$name")" \
        "$(seconds_since "$started")" "$CONTAINER_ENGINE" "${log#"$PROJECT"/}"
done
