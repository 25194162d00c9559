#!/usr/bin/env bash
# make docker-all: docker-compose.yml in the project folder, with docker or podman: every
# wrapper's run and backfill of the sample into output/, then compare (its exit status is
# this script's). The engine, a compose and the images come first; then, of output/, only
# the files this run writes again are removed, and it says so.
# With PIPELINE=path/to/name.py: that pipeline instead, as `make all PIPELINE=` does
# (containers/pipeline.sh), into output/<name>/; no compose needed.
set -euo pipefail
# shellcheck source=containers/engine.sh
source "$(dirname "$0")/engine.sh"
if [[ -n ${PIPELINE:-} ]]; then
    # shellcheck source=containers/pipeline.sh
    source "$PROJECT/containers/pipeline.sh"
    pipeline_usable "$PIPELINE"  # before anything else: a refusal needs no engine
fi
detect_engine
cd "$PROJECT"
if [[ -n ${PIPELINE:-} ]]; then
    containers/build.sh
    status=0
    pipeline_all "$PIPELINE" output "$STATE/logs" || status=$?
    exit "$status"
fi
containers/compose.sh version > /dev/null
containers/build.sh

rewritten=(output/parity-report.json output/parity-report.md)
for name in "${IMAGES[@]}"; do
    for suffix in .parquet .rejects.parquet .manifest.json; do
        rewritten+=("output/${name}_output$suffix")
        while read -r day; do
            rewritten+=("output/backfill/$name/$day$suffix")
        done < <(sample_dates)
    done
done
existing=()
for path in "${rewritten[@]}"; do
    [[ -e $path ]] && existing+=("$path")
done
if ((${#existing[@]})); then
    echo "docker-all: removing ${#existing[@]} earlier outputs in output/ that this run writes again" \
        "(the runs, the $SAMPLE_START..$SAMPLE_END backfills, the parity report); nothing else there is touched"
    rm -f -- "${existing[@]}"
fi

mkdir -p output
# Containers run as you, so the files in output/ are yours.
HOST_UID=$(id -u) HOST_GID=$(id -g)
export HOST_UID HOST_GID
status=0
containers/compose.sh run --rm compare || status=$?
containers/compose.sh down --remove-orphans > /dev/null 2>&1 || true
exit "$status"
