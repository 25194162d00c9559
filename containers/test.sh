#!/usr/bin/env bash
# make containers-test: the images and the compose file, built and run for real.
#
#  1. builds the four images (containers/build.sh; PYTHON_IMAGE replaces their base);
#  2. runs every image's default command and its backfill of the sample, with data/ and
#     output/ mounted as the README says, once as the image's own user (10001) and once as
#     `--user $(id -u):$(id -g)`; then compare, in the reference image, over each output/;
#  3. runs a pipeline of your own (examples/shop/shop.py, pandas) as `make docker-all
#     PIPELINE=` does (containers/pipeline.sh): every image's run and backfill of its sample,
#     then the verdict against shop.golden.json;
#  4. checks that a failing service fails the compose run (a compose that ignores
#     `depends_on` conditions would pass it), then runs docker-compose.yml as `make
#     docker-all` does: `run --rm compare`, every run as a service;
#  5. checks each output/ from the host (containers/check_outputs.py): the golden sha256 of
#     every file, the verdict, the project's version in every manifest, who owns the files.
#
# Exit 0 when all of it holds, 1 on any failure (the step and its log named on stderr), 2 when
# no engine or compose is there. Removes its containers, compose networks, the podman API
# process and its folders (logs of a failure are kept under .state/containers/); with
# REMOVE_IMAGES=1 also the four images.
set -euo pipefail
# shellcheck source=containers/engine.sh
source "$(dirname "$0")/engine.sh"
detect_engine
cd "$PROJECT"
# shellcheck source=containers/pipeline.sh
source containers/pipeline.sh  # ADAPTER: each image's command, its backfill's too (the README's)

START=$SAMPLE_START
END=$SAMPLE_END
WRAPPERS=$(IFS=,; echo "${IMAGES[*]}")
OWN_PIPELINE=examples/shop/shop.py  # a pipeline of your own: pandas, two inputs, partitioned
RUN_TIMEOUT=${RUN_TIMEOUT:-900}  # seconds for one container run; an Airflow backfill takes ~1 min

test_id=parity-harness-test-$$
label=parity-harness.test=$test_id
mkdir -p "$STATE"
work=$(mktemp -d "$STATE/test.XXXXXX")
logs=$work/logs
mkdir -p "$logs"
started_all=$EPOCHREALTIME
ok=0
compose_up=0  # compose may have containers or a network to take down

cleanup() {
    local containers
    containers=$("$CONTAINER_ENGINE" ps -aq --filter "label=$label" 2> /dev/null || true)
    if [[ -n $containers ]]; then
        # shellcheck disable=SC2086  # one id per word
        "$CONTAINER_ENGINE" rm -f $containers > /dev/null 2>&1 || true
    fi
    if ((compose_up)); then
        compose down --remove-orphans > "$logs/compose-down.log" 2>&1 || true
    fi
    if [[ ${REMOVE_IMAGES:-} == 1 ]]; then
        for name in "${IMAGES[@]}"; do
            "$CONTAINER_ENGINE" rmi "$(image_tag "$name")" > /dev/null 2>&1 || true
        done
    fi
    if ((ok)); then
        rm -rf "$work"
    else
        echo "containers-test: FAILED; logs kept in ${logs#"$PROJECT"/}" >&2
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

compose() { (cd "$work/compose" && "$PROJECT/containers/compose.sh" -p "$test_id" "$@"); }

fail() { echo "containers-test: $*" >&2; exit 1; }

phase() { printf 'containers-test: %s in %s s\n' "$1" "$(seconds_since "$2")"; }

# One container run of an image with the README's mounts; its log under $logs.
run_image() {
    local name=$1 output=$2 log=$3
    shift 3
    local user_args=()
    if [[ $mode == host ]]; then
        user_args=(--user "$(id -u):$(id -g)")
        # Rootless podman maps container uids to subordinate ones unless told to keep yours.
        [[ $CONTAINER_ENGINE == podman && $(podman info --format '{{.Host.Security.Rootless}}') == true ]] \
            && user_args+=(--userns=keep-id)
    fi
    local started=$EPOCHREALTIME status=0
    timeout "$RUN_TIMEOUT" "$CONTAINER_ENGINE" run --rm --label "$label" "${user_args[@]}" \
        -v "$PROJECT/data:/app/data:ro" -v "$output:/app/output" \
        "$(image_tag "$name")" "$@" > "$log" 2>&1 || status=$?
    seconds_since "$started" > "$log.seconds"
    return "$status"
}

# 1. The images.
started=$EPOCHREALTIME
containers/build.sh || exit 1
phase "built the four images" "$started"

# 2. Every image's runs, as the image's user and as you, all eight at once per user.
for mode in image host; do
    started=$EPOCHREALTIME
    output=$work/$mode/output
    mkdir -p "$output"
    # The image's own user is not you: it can write only to a folder anyone may write to.
    [[ $mode == image ]] && chmod 1777 "$output"
    pids=()
    names=()
    for name in "${IMAGES[@]}"; do
        run_image "$name" "$output" "$logs/$mode-$name.log" &
        pids+=($!) names+=("$name")
        # shellcheck disable=SC2086  # ADAPTER holds a command line
        run_image "$name" "$output" "$logs/$mode-$name-backfill.log" ${ADAPTER[$name]} \
            --input-path "$SAMPLE" --start "$START" --end "$END" \
            --output-dir "output/backfill/$name" &
        pids+=($!) names+=("$name-backfill")
    done
    failed=()
    for i in "${!pids[@]}"; do
        wait "${pids[$i]}" || failed+=("${names[$i]}")
    done
    for name in "${failed[@]}"; do
        tail -5 "$logs/$mode-$name.log" >&2
        echo "containers-test: $name as the $mode user failed (log: ${logs#"$PROJECT"/}/$mode-$name.log)" >&2
    done
    ((${#failed[@]} == 0)) || exit 1
    echo "containers-test: as the $mode user, seconds per run (eight at once):" \
        "$(for name in "${names[@]}"; do printf '%s %s, ' "$name" "$(< "$logs/$mode-$name.log.seconds")"; done)"
    run_image reference "$output" "$logs/$mode-compare.log" \
        python -m compare output --golden compare/golden.json \
        || { tail -20 "$logs/$mode-compare.log" >&2; fail "compare over the $mode user's outputs failed (log: $logs/$mode-compare.log)"; }
    owner=()
    [[ $mode == host ]] && owner=(--owner "$(id -u)")
    python3 containers/check_outputs.py "$output" --wrappers "$WRAPPERS" \
        --dates "$START..$END" "${owner[@]}" || fail "the $mode user's outputs are not the golden ones"
    phase "ran every image and backfill as the $mode user, compare: identical, golden" "$started"
done

# 3. A pipeline of your own, in the same images.
started=$EPOCHREALTIME
PIPELINE_LABEL=$label pipeline_all "$OWN_PIPELINE" "$work/pipeline/output" "$logs" \
    || fail "$OWN_PIPELINE through the four images: not identical to its golden file (logs: ${logs#"$PROJECT"/}/pipeline-*.log)"
phase "ran $OWN_PIPELINE in every image, its run and backfill, verdict: identical, golden" "$started"

leftover=$("$CONTAINER_ENGINE" ps -aq --filter "label=$label")
[[ -z $leftover ]] || fail "containers left after the runs: $leftover"

# 4. The compose file, in a folder of its own with the sample and an empty output/.
started=$EPOCHREALTIME
mkdir -p "$work/compose/data" "$work/compose/output"
cp docker-compose.yml "$work/compose/"
cp "$SAMPLE" "$work/compose/data/"
export HOST_UID HOST_GID
HOST_UID=$(id -u)
HOST_GID=$(id -g)
# A compose that does not wait for `service_completed_successfully` would run compare here:
# the first wrapper's run fails, every other service passes.
{
    echo "services:"
    for name in "${IMAGES[@]}"; do
        code=pass
        [[ $name == "${IMAGES[0]}" ]] && code="raise SystemExit(3)"
        echo "  $name: {command: [python, -c, \"$code\"]}"
        echo "  $name-backfill: {command: [python, -c, \"pass\"]}"
    done
    echo "  compare: {command: [python, -c, \"open('output/compare-ran', 'w')\"]}"
} > "$work/compose/failing-service.yml"
compose_up=1
if compose -f docker-compose.yml -f failing-service.yml run --rm compare \
    > "$logs/compose-failing-service.log" 2>&1; then
    fail "compose ran compare although a service it depends on failed (log: $logs/compose-failing-service.log)"
fi
[[ ! -e $work/compose/output/compare-ran ]] \
    || fail "compose started compare before the services it depends on had succeeded"
compose -f docker-compose.yml -f failing-service.yml down --remove-orphans \
    > "$logs/compose-failing-service-down.log" 2>&1
phase "compose refused to run compare after a failed service" "$started"

started=$EPOCHREALTIME
compose run --rm compare > "$logs/compose.log" 2>&1 \
    || { tail -20 "$logs/compose.log" >&2; fail "compose run --rm compare failed (log: $logs/compose.log)"; }
python3 containers/check_outputs.py "$work/compose/output" --wrappers "$WRAPPERS" \
    --dates "$START..$END" --owner "$(id -u)" || fail "compose's outputs are not the golden ones"
compose down --remove-orphans > "$logs/compose-down.log" 2>&1
compose_up=0
leftover=$("$CONTAINER_ENGINE" ps -aq --filter "label=com.docker.compose.project=$test_id")
[[ -z $leftover ]] || fail "compose left containers: $leftover"
phase "compose: every service, then compare: identical, golden" "$started"

ok=1
phase "PASSED ($CONTAINER_ENGINE)" "$started_all"
