#!/usr/bin/env bash
# A stand-in for the official python base image, for machines that reach Debian's package
# mirror but no container registry (this project's CI). Debian bookworm's own Python 3.11,
# as the official python:3.11-slim-bookworm is bookworm with a Python 3.11 of its own build.
#
#   containers/standin-base.sh [TAG]      (root; needs debootstrap and podman)
#   make containers-test PYTHON_IMAGE=TAG
#
# The mirror is the one this machine's apt already uses, read at run time. The machine's
# extra CA certificates are copied in, so that a build inside can reach the package index
# through an intercepting proxy the host trusts. An existing TAG is kept (FORCE=1 rebuilds).
set -euo pipefail
# shellcheck source=containers/engine.sh
source "$(dirname "$0")/engine.sh"

tag=${1:-localhost/parity-harness/python-standin:3.11-bookworm}
[[ $(id -u) == 0 ]] || fail_usage "standin-base: debootstrap needs root"
command -v debootstrap > /dev/null || fail_usage "standin-base: debootstrap is not installed"
detect_engine
if [[ -z ${FORCE:-} ]] && "$CONTAINER_ENGINE" image inspect "$tag" > /dev/null 2>&1; then
    echo "standin-base: $tag exists (FORCE=1 rebuilds it)"
    exit 0
fi

# The first Debian archive apt knows (e.g. http://deb.debian.org/debian), whatever the release.
mirror=$(apt-cache policy | awk '$3 ~ /^[a-z]+\/main$/ && $2 !~ /security/ {print $2; exit}')
[[ -n $mirror ]] || fail_usage "standin-base: no Debian mirror in this machine's apt sources (run apt-get update)"

mkdir -p "$STATE"
rootfs=$(mktemp -d "$STATE/standin-rootfs.XXXXXX")
trap 'rm -rf --one-file-system "$rootfs"' EXIT

echo "standin-base: debootstrap bookworm from $mirror"
debootstrap --variant=minbase bookworm "$rootfs" "$mirror" > "$STATE/standin-debootstrap.log" 2>&1 \
    || { tail -5 "$STATE/standin-debootstrap.log" >&2; echo "standin-base: debootstrap failed (log: $STATE/standin-debootstrap.log)" >&2; exit 1; }
in_root() { chroot "$rootfs" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive "$@"; }
in_root apt-get install -y -qq --no-install-recommends \
    python3 python3-venv python3-pip python-is-python3 ca-certificates > "$STATE/standin-apt.log" 2>&1 \
    || { tail -5 "$STATE/standin-apt.log" >&2; echo "standin-base: apt-get install in the chroot failed" >&2; exit 1; }
# The official image's pip installs system-wide; so may this one's.
rm -f "$rootfs"/usr/lib/python3*/EXTERNALLY-MANAGED
shopt -s nullglob
extra_cas=(/usr/local/share/ca-certificates/*.crt)
if ((${#extra_cas[@]})); then
    cp "${extra_cas[@]}" "$rootfs/usr/local/share/ca-certificates/"
    in_root update-ca-certificates >> "$STATE/standin-apt.log" 2>&1
fi
in_root apt-get clean
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin

# The official image's ENV; SSL_CERT_FILE so that uv (its own CA roots otherwise) trusts
# the same certificates as pip and Python.
tar --numeric-owner -C "$rootfs" -c . | "$CONTAINER_ENGINE" import \
    --change 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
    --change 'CMD ["python3"]' \
    - "$tag" > "$STATE/standin-import.log" 2>&1 \
    || { tail -5 "$STATE/standin-import.log" >&2; echo "standin-base: $CONTAINER_ENGINE import failed" >&2; exit 1; }
echo "standin-base: imported $tag ($("$CONTAINER_ENGINE" image inspect --format '{{.Size}}' "$tag" | awk '{printf "%d MB", $1 / 1e6}'))"
echo "next: make docker-all CONTAINER_ENGINE=$CONTAINER_ENGINE PYTHON_IMAGE=$tag"
