#!/usr/bin/env bash
# PostgreSQL with pgvector for the gallery's server engine: Debian's postgresql (15 on bookworm),
# and pgvector 0.8.0 built from Debian's source package against it (about 10 s), the source
# pinned by its sha256. Does nothing where both are already installed. Needs root (apt, make install).
set -euo pipefail
VERSION=0.8.0
SHA256=867a2c328d4928a5a9d6f052cd3bc78c7d60228a9b914ad32aa3db88e9de27b0
URL="http://deb.debian.org/debian/pool/main/p/pgvector/pgvector_${VERSION}.orig.tar.gz"

missing=()
command -v initdb >/dev/null || compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
command -v pg_config >/dev/null || missing+=(postgresql-common)
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
major=$(basename "$(dirname "$(dirname "$(compgen -G "/usr/lib/postgresql/*/bin/initdb" | sort -V | tail -1)")")")
if [ -f "/usr/share/postgresql/${major}/extension/vector--${VERSION}.sql" ]; then
  exit 0
fi
dpkg -s "postgresql-server-dev-${major}" >/dev/null 2>&1 ||
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "postgresql-server-dev-${major}" make gcc >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
curl -fsSL "$URL" -o "$work/pgvector.tar.gz"
echo "${SHA256}  $work/pgvector.tar.gz" | sha256sum --check --quiet
tar -xzf "$work/pgvector.tar.gz" -C "$work"
# OPTFLAGS="": no -march=native, so the build runs on any x86-64 machine it is copied to.
make -s -C "$work/pgvector-${VERSION}" PG_CONFIG="/usr/lib/postgresql/${major}/bin/pg_config" OPTFLAGS="" >/dev/null
make -s -C "$work/pgvector-${VERSION}" PG_CONFIG="/usr/lib/postgresql/${major}/bin/pg_config" install >/dev/null
echo "pgvector ${VERSION} installed for PostgreSQL ${major}"
