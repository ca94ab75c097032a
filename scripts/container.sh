#!/usr/bin/env bash
# Build the service's OCI image here, with podman (no Docker daemon, no reachable registry):
#   1. podman, runc and debootstrap from Debian where missing (../shared/CONTAINERS.md's recipe);
#   2. localhost/debian-bookworm, a debootstrap root file system, once;
#   3. localhost/reid-base:bookworm, Debian's Python 3.11 and the libraries the models load
#      (deploy/container/base.Containerfile);
#   4. the Bento (scripts/build_bento.py: the stored models, the lock they need), then
#      `bentoml containerize --backend podman` FROM that base;
#   5. that image without the build tools BentoML adds (deploy/container/slim.Containerfile),
#      squashed into one layer: localhost/reid:<Bento version> (the unsquashed one stays, as
#      podman's layer cache for the next build).
# Prints the image's name last. The models must be in the store first (make models).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
CA=${REID_BUILD_CA:-/etc/ssl/certs/ca-certificates.crt}  # this machine's bundle: pip and uv reach PyPI with it
export CONTAINERS_CONF=${CONTAINERS_CONF:-$PWD/deploy/container/containers.conf}
export BENTOML_DO_NOT_TRACK=true

if ! command -v podman >/dev/null || ! command -v runc >/dev/null || ! command -v debootstrap >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc debootstrap >/dev/null
fi
if ! podman image exists localhost/debian-bookworm:latest; then
  rootfs=$(mktemp -d)
  debootstrap --variant=minbase bookworm "$rootfs" >/dev/null
  tar -C "$rootfs" -c . | podman import - localhost/debian-bookworm:latest >/dev/null
  rm -rf "$rootfs"
fi
podman build -q --network host --secret id=ca,src="$CA" -t localhost/reid-base:bookworm \
  -f deploy/container/base.Containerfile deploy/container >/dev/null
tag=$("$BIN/python" scripts/build_bento.py --base-image localhost/reid-base:bookworm | tail -n 1)
"$BIN/bentoml" containerize "$tag" --backend podman --opt network=host \
  --opt volume="$CA:/etc/ssl/certs/ca-certificates.crt:ro" -t "localhost/$tag-bento" >&2
podman build -q --network host --squash-all --build-arg BENTO_IMAGE="localhost/$tag-bento" \
  -t "localhost/$tag" -f deploy/container/slim.Containerfile deploy/container >/dev/null
echo "localhost/$tag"
