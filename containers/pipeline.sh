# shellcheck shell=bash
# Sourced by docker-all.sh and test.sh: `make all PIPELINE=p` in containers. A declared pipeline
# of your own (docs/contract.md §10), its folder mounted read-only at /pipeline, output/ at
# /app/output, every image running its adapter on the pipeline's sample and, if it is
# partitioned, its backfill of sample_dates, all at once; then one verdict against the golden
# file <name>.golden.json beside the pipeline. The plan (which runs, the folders they rewrite)
# and the verdict are make all's own (scripts/pipeline_all.py plan|verdict), run in the
# reference image, so a local and a container run of one pipeline are judged alike.
#   pipeline_all PIPELINE OUTPUT LOGS     exit status: the verdict's (0, 1, or 2 when unusable)
# The images must be built; CONTAINER_ENGINE set (engine.sh's detect_engine).

# Each image's adapter of any declared pipeline; each takes the same flags as make's targets.
declare -A ADAPTER=(
    [reference]="python -m parity"
    [prefect]="python prefect/adapter.py"
    [dagster]="python dagster/adapter.py"
    [airflow]="python airflow/adapter.py"
)

# The refusals, before any container starts: one line, exit 2.
pipeline_usable() {
    local pipeline=$1
    [[ $pipeline == *.py && -f $pipeline ]] \
        || fail_usage "docker-all: PIPELINE=$pipeline: no such file; the containers need a pipeline's file (folder/name.py), whose folder they mount (a module name cannot be mounted)"
    local requirements
    requirements=$(dirname "$pipeline")/requirements.txt
    [[ ! -e $requirements ]] \
        || fail_usage "docker-all: $requirements: the images do not install a pipeline's requirements.txt (they hold exactly uv.lock); run it locally: make all PIPELINE=$pipeline"
}

# One container of image $1 as you, pipeline_all's $folder and $output mounted; the rest is the
# command. Rootless podman maps container uids to subordinate ones unless told to keep yours.
pipeline_container() {
    local name=$1
    shift
    local user_args=(--user "$(id -u):$(id -g)")
    [[ $CONTAINER_ENGINE == podman && $(podman info --format '{{.Host.Security.Rootless}}') == true ]] \
        && user_args+=(--userns=keep-id)
    # containers-test labels its containers (to remove them) and bounds each run (RUN_TIMEOUT).
    ${RUN_TIMEOUT:+timeout "$RUN_TIMEOUT"} \
        "$CONTAINER_ENGINE" run --rm ${PIPELINE_LABEL:+--label "$PIPELINE_LABEL"} "${user_args[@]}" \
        -v "$folder:/pipeline:ro" -v "$output:/app/output" "$(image_tag "$name")" "$@"
}

pipeline_all() {
    local pipeline=$1 output=$2 logs=$3
    pipeline_usable "$pipeline"
    local folder file
    folder=$(cd "$(dirname "$pipeline")" && pwd)
    file=/pipeline/$(basename "$pipeline")
    mkdir -p "$output" "$logs"
    output=$(cd "$output" && pwd)
    local expect="${IMAGES[*]}" plan status=0
    plan=$(pipeline_container reference python -m scripts.pipeline_all plan --pipeline "$file" \
        --expect "$expect" --root output) || return $?
    local pids=() labels=() kind wrapper first last label
    local started=$EPOCHREALTIME failed=()
    while read -r kind wrapper first last; do
        label=$wrapper${first:+-backfill}
        local where=(--output-root output --wrapper "$wrapper")
        (
            status=0
            # shellcheck disable=SC2086  # ADAPTER holds a command line
            if [[ $kind == run ]]; then
                pipeline_container "$wrapper" ${ADAPTER[$wrapper]} run "$file" "${where[@]}"
            else
                pipeline_container "$wrapper" ${ADAPTER[$wrapper]} backfill "$file" \
                    --start "$first" --end "$last" "${where[@]}"
            fi > "$logs/pipeline-$label.log" 2>&1 || status=$?
            seconds_since "$started" > "$logs/pipeline-$label.seconds"
            exit "$status"
        ) &
        pids+=($!) labels+=("$label")
    done <<< "$plan"
    for i in "${!pids[@]}"; do
        wait "${pids[$i]}" || failed+=("${labels[$i]}")
    done
    echo "docker-all: ${#pids[@]} runs at once in $(seconds_since "$started") s, each:" \
        "$(for label in "${labels[@]}"; do printf '%s %s, ' "$label" "$(< "$logs/pipeline-$label.seconds")"; done)" \
        "(logs: ${logs#"$PROJECT"/}/pipeline-*.log)"
    for label in "${failed[@]}"; do
        tail -3 "$logs/pipeline-$label.log" >&2
        echo "docker-all: $label of $pipeline failed (log: ${logs#"$PROJECT"/}/pipeline-$label.log)" >&2
    done
    ((${#failed[@]} == 0)) || return 1
    pipeline_container reference python -m scripts.pipeline_all verdict --pipeline "$file" \
        --given "$pipeline" --expect "$expect" --root output || status=$?
    return "$status"
}
