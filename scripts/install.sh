#!/usr/bin/env bash
# Installs, from Debian's own packages, everything the real-service tests and `npm run local` need:
# PostgreSQL of this Debian release, pgvector, Patroni, etcd, PgBouncer, HAProxy, Prometheus (+promtool)
# and the exporters, PgBouncer 1.21+ (scripts/install-pgbouncer.sh) and Citus (scripts/install-citus.sh). Idempotent: quick when everything is already there. Must run as root.
set -euo pipefail

log() { printf '[install] %s\n' "$*"; }

if [ "$(id -u)" -ne 0 ]; then
  echo "[install] must run as root (apt-get install)" >&2
  exit 1
fi

. /etc/os-release
case "${VERSION_CODENAME:-}" in
  bookworm) PG_MAJOR=15 ;;
  trixie) PG_MAJOR=17 ;;
  *) echo "[install] unsupported Debian release '${VERSION_CODENAME:-unknown}' (supported: bookworm = 12, trixie = 13)" >&2; exit 1 ;;
esac
export DEBIAN_FRONTEND=noninteractive

PACKAGES=(
  "postgresql-$PG_MAJOR" "postgresql-client-$PG_MAJOR" patroni etcd-server etcd-client pgbouncer haproxy
  prometheus prometheus-postgres-exporter prometheus-pgbouncer-exporter util-linux iproute2 procps
)
if [ "$PG_MAJOR" = 17 ]; then PACKAGES+=("postgresql-17-pgvector"); fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if [ "${#missing[@]}" -gt 0 ]; then
  log "apt-get update"
  apt-get update -qq
  log "installing: ${missing[*]}"
  # The packages' own services (etcd, pgbouncer, haproxy, prometheus...) must not start: the project
  # runs its own instances on its own ports. policy-rc.d exit 101 tells invoke-rc.d "do not start".
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  log "Debian packages already installed"
fi

# Package post-install scripts may have started services anyway (no systemd here, but be sure):
# stop the distribution's own instances so their default ports are free.
for svc in etcd pgbouncer haproxy prometheus prometheus-postgres-exporter prometheus-pgbouncer-exporter; do
  pkill -x "$svc" 2>/dev/null || true
done
if command -v pg_lsclusters >/dev/null; then
  pg_lsclusters -h 2>/dev/null | while read -r ver name _rest; do
    pg_ctlcluster "$ver" "$name" stop 2>/dev/null || true
  done
fi

# pgvector on Debian 12: not packaged for PostgreSQL 15 there; build it from Debian 13's own source
# package (apt-get source through a private apt configuration, so the system's sources stay untouched).
PG_LIBDIR="/usr/lib/postgresql/$PG_MAJOR/lib"
PG_SHAREDIR="/usr/share/postgresql/$PG_MAJOR/extension"
if [ ! -f "$PG_LIBDIR/vector.so" ] || [ ! -f "$PG_SHAREDIR/vector.control" ]; then
  log "building pgvector for PostgreSQL $PG_MAJOR from Debian's source package"
  apt-get install -y -qq --no-install-recommends "postgresql-server-dev-$PG_MAJOR" dpkg-dev build-essential >/dev/null
  work=$(mktemp -d /tmp/pgvector-build.XXXXXX)
  mkdir -p "$work/apt/lists/partial" "$work/apt/archives/partial" "$work/apt/sources.list.d"
  cat > "$work/apt/sources.list" <<SRC
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main
SRC
  APT_OPTS=(-o "Dir::Etc::SourceList=$work/apt/sources.list" -o "Dir::Etc::SourceParts=$work/apt/sources.list.d"
            -o "Dir::State::Lists=$work/apt/lists" -o "Dir::Cache::Archives=$work/apt/archives"
            -o "Debug::NoLocking=1" -o "APT::Sandbox::User=root")
  apt-get "${APT_OPTS[@]}" update -qq
  (cd "$work" && apt-get "${APT_OPTS[@]}" source --download-only -qq pgvector >/dev/null && dpkg-source -x --no-check ./*.dsc src >/dev/null)
  make -s -C "$work/src" PG_CONFIG="/usr/lib/postgresql/$PG_MAJOR/bin/pg_config" >/dev/null
  make -s -C "$work/src" PG_CONFIG="/usr/lib/postgresql/$PG_MAJOR/bin/pg_config" install >/dev/null
  rm -rf "$work"
  log "pgvector installed: $(grep default_version "$PG_SHAREDIR/vector.control")"
else
  log "pgvector already installed"
fi

# PgBouncer that tracks prepared statements (1.21+): Debian 13's package; on Debian 12, built from
# Debian 13's source package into a .deb that replaces 1.18 (scripts/install-pgbouncer.sh).
bash "$(dirname "$0")/install-pgbouncer.sh"

# Citus: a package where the archive has one, otherwise built from the pinned, checksummed source.
bash "$(dirname "$0")/install-citus.sh" "$PG_MAJOR"

log "ready: PostgreSQL $PG_MAJOR ($(/usr/lib/postgresql/$PG_MAJOR/bin/postgres --version | awk '{print $3}')), patroni $(/usr/bin/python3 /usr/bin/patroni --version 2>/dev/null | awk '{print $2}'), etcd $(etcd --version 2>/dev/null | head -1 | awk '{print $3}'), pgbouncer $(pgbouncer --version 2>/dev/null | head -1 | awk '{print $2}'), haproxy $(haproxy -v 2>/dev/null | head -1 | awk '{print $3}')"
