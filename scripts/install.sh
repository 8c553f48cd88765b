#!/usr/bin/env bash
# Installs, from Debian's own packages, everything the real-service tests and `npm run local` need:
# PostgreSQL of this Debian release, pgvector, Patroni, etcd, PgBouncer, HAProxy, Prometheus (+promtool)
# and the exporters, Patroni 4 (scripts/install-patroni.sh), PgBouncer 1.21+ (scripts/install-pgbouncer.sh) and
# Citus (scripts/install-citus.sh). `npm run local -- up` and `npm test` run it
# first. Idempotent: under a second, touching nothing, when everything is already there.
#
# It checks everything before it installs anything, and refuses with one message (exit 1, nothing
# installed) when it is not root, the machine is not Debian 12 or 13, the package archive is not
# reachable, the archive lacks a package, or Citus has neither a package nor its vendored source.
#
# DPC_OS_RELEASE   the os-release file to read (default /etc/os-release; tests point it elsewhere)
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
log() { printf '[install] %s\n' "$*"; }
refuse() { printf '[install] cannot install: %s\n' "$*" >&2; exit 1; }

# --- What this machine is ---------------------------------------------------------------------
[ "$(id -u)" -eq 0 ] || refuse "must run as root (it installs Debian packages with apt-get); run it again with sudo"

OS_RELEASE=${DPC_OS_RELEASE:-/etc/os-release}
[ -r "$OS_RELEASE" ] || refuse "no $OS_RELEASE: this installer supports Debian 12 (bookworm) and 13 (trixie) only"
os_id=$(. "$OS_RELEASE" && echo "${ID:-unknown}")
codename=$(. "$OS_RELEASE" && echo "${VERSION_CODENAME:-unknown}")
pretty=$(. "$OS_RELEASE" && echo "${PRETTY_NAME:-$os_id $codename}")
[ "$os_id" = debian ] || refuse "this is $pretty; this installer supports Debian 12 (bookworm) and 13 (trixie) only"
case "$codename" in
  bookworm) PG_MAJOR=15 ;;
  trixie) PG_MAJOR=17 ;;
  *) refuse "this is $pretty ('$codename'); this installer supports Debian 12 (bookworm) and 13 (trixie) only" ;;
esac
export DEBIAN_FRONTEND=noninteractive

# --- What it lacks ----------------------------------------------------------------------------
PACKAGES=(
  "postgresql-$PG_MAJOR" "postgresql-client-$PG_MAJOR" patroni etcd-server etcd-client pgbouncer haproxy
  prometheus prometheus-postgres-exporter prometheus-pgbouncer-exporter util-linux iproute2 procps
  tini  # runs each Patroni as a subreaper that reaps its postmaster at once (local/processes.ts)
)
if [ "$PG_MAJOR" = 17 ]; then PACKAGES+=("postgresql-17-pgvector"); fi
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

missing=()
for p in "${PACKAGES[@]}"; do installed "$p" || missing+=("$p"); done

PG_LIBDIR="/usr/lib/postgresql/$PG_MAJOR/lib"
PG_SHAREDIR="/usr/share/postgresql/$PG_MAJOR/extension"
# Debian 12 has no pgvector for PostgreSQL 15: it is built from Debian 13's source package.
build_pgvector=false
if [ ! -f "$PG_LIBDIR/vector.so" ] || [ ! -f "$PG_SHAREDIR/vector.control" ]; then
  [ "$PG_MAJOR" = 15 ] && build_pgvector=true
fi
PGVECTOR_BUILD_DEPS=("postgresql-server-dev-$PG_MAJOR" dpkg-dev build-essential)

citus_plan() { bash "$HERE/install-citus.sh" "$PG_MAJOR" --check; }

# Patroni 4 (quorum commit, the documented timing rules): Debian 12's own package is 3.0.2, so there
# scripts/install-patroni.sh installs Debian 13's (pure Python) package.
patroni_version=$(/usr/bin/python3 /usr/bin/patroni --version 2>/dev/null | awk '{print $2}' || true)
patroni4=false
[ -n "$patroni_version" ] && [ "${patroni_version%%.*}" -ge 4 ] && patroni4=true
# PgBouncer 1.21+ (max_prepared_statements): Debian 12's own is 1.18.
pgbouncer_version=$(/usr/sbin/pgbouncer --version 2>/dev/null | awk 'NR == 1 { print $2 }' || true)
pgbouncer_min=$(sed -n 's/^MIN_VERSION=\([0-9.]*\).*/\1/p' "$HERE/install-pgbouncer.sh")
pgbouncer_ok=false
[ -n "$pgbouncer_version" ] && [ "$(printf '%s\n%s\n' "$pgbouncer_min" "$pgbouncer_version" | sort -V | head -1)" = "$pgbouncer_min" ] && pgbouncer_ok=true
citus=$(citus_plan 2>/dev/null || echo unknown)

report_ready() {
  log "ready: PostgreSQL $PG_MAJOR ($("/usr/lib/postgresql/$PG_MAJOR/bin/postgres" --version | awk '{print $3}')), pgvector $(sed -n "s/^default_version = '\(.*\)'/\1/p" "$PG_SHAREDIR/vector.control"), citus extension $(sed -n "s/^default_version = '\(.*\)'/\1/p" "$PG_SHAREDIR/citus.control"), patroni $(/usr/bin/python3 /usr/bin/patroni --version 2>/dev/null | awk '{print $2}'), etcd $(etcd --version 2>/dev/null | head -1 | awk '{print $3}'), pgbouncer $(pgbouncer --version 2>/dev/null | head -1 | awk '{print $2}'), haproxy $(haproxy -v 2>/dev/null | head -1 | awk '{print $3}')"
}

if [ "${#missing[@]}" -eq 0 ] && ! $build_pgvector && $patroni4 && $pgbouncer_ok && [ "$citus" = installed ]; then
  log "everything is already installed ($pretty)"
  report_ready
  exit 0
fi

# --- Can it be installed? (nothing is installed before every check has passed) ---------------
log "checking the package archive ($pretty)"
apt-get update -qq --error-on=any >/dev/null 2>&1 \
  || refuse "the package archive is not reachable (apt-get update failed; see 'apt-get update'). Nothing was installed"

# Debian 13's source package of pgvector, through a private apt configuration (the system's sources stay untouched).
if $build_pgvector; then
  src=$(mktemp -d /tmp/pgvector-build.XXXXXX)
  trap 'rm -rf "$src"' EXIT
  mkdir -p "$src/apt/lists/partial" "$src/apt/archives/partial" "$src/apt/sources.list.d"
  echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main" > "$src/apt/sources.list"
  APT_SRC_OPTS=(-o "Dir::Etc::SourceList=$src/apt/sources.list" -o "Dir::Etc::SourceParts=$src/apt/sources.list.d"
                -o "Dir::State::Lists=$src/apt/lists" -o "Dir::Cache::Archives=$src/apt/archives"
                -o "Debug::NoLocking=1" -o "APT::Sandbox::User=root")
  apt-get "${APT_SRC_OPTS[@]}" update -qq --error-on=any >/dev/null 2>&1 \
    || refuse "Debian 13's source archive (deb.debian.org, for pgvector's source) is not reachable. Nothing was installed"
fi

# What Citus takes now that the archive's index is fresh: a package, or a build of the vendored source.
citus=$(citus_plan 2>&1) || refuse "${citus#\[install\] }. Nothing was installed"
apt_needs=("${missing[@]}")
if $build_pgvector; then apt_needs+=("${PGVECTOR_BUILD_DEPS[@]}"); fi
case "$citus" in
  package\ *|build\ *) read -r -a citus_apt <<<"${citus#* }"; apt_needs+=("${citus_apt[@]}") ;;
esac

# apt resolves the whole set first: a package the archive lacks stops it here, not half-way.
if [ "${#apt_needs[@]}" -gt 0 ]; then
  check=$(apt-get install -s -qq --no-install-recommends "${apt_needs[@]}" 2>&1 >/dev/null) \
    || refuse "apt cannot install ${apt_needs[*]}: $(grep -m1 '^E:' <<<"$check" || echo "$check" | tail -1). Nothing was installed"
fi

# Build tools (pgvector's, Citus's) and a Citus package go into the same apt-get run as the rest.
tools=()
for p in "${apt_needs[@]}"; do
  case " ${missing[*]} ${tools[*]} " in *" $p "*) ;; *) installed "$p" || tools+=("$p") ;; esac
done
log "will install:"
[ "${#missing[@]}" -gt 0 ] && log "  Debian packages: ${missing[*]}"
[ "${#tools[@]}" -gt 0 ] && log "  also from the archive (build tools, headers): ${tools[*]}"
$build_pgvector && log "  pgvector, built from Debian 13's source package for PostgreSQL $PG_MAJOR (about 30 s)"
[ "$PG_MAJOR" = 15 ] && ! $patroni4 && log "  Patroni 4, Debian 13's package (Debian 12 has ${patroni_version:-3.0.2})"
[ "$PG_MAJOR" = 15 ] && ! $pgbouncer_ok && log "  PgBouncer 1.24, built from Debian 13's source package (Debian 12 has ${pgbouncer_version:-1.18}; about 1.5 minutes)"
case "$citus" in
  package\ *) log "  Citus, from the package ${citus#package }" ;;
  build\ *) log "  Citus 13.0.5, built from ../shared/vendor for PostgreSQL $PG_MAJOR (1 to 6 minutes)" ;;
esac

# --- Install ----------------------------------------------------------------------------------
# apt-get install with a progress line per 10 %: apt writes "dlstatus:..." (downloads) and
# "pmstatus:<package>:<percent>:<action>" (unpack, configure) to APT::Status-Fd.
apt_install() {
  local err
  err=$(mktemp /tmp/dpc-apt.XXXXXX)
  if ! apt-get install -y -qq --no-install-recommends -o APT::Status-Fd=3 "$@" 3>&1 >/dev/null 2>"$err" \
    | awk -F: '
        $1 == "dlstatus" && $3 >= dl { printf "[install]   download %3d%%\n", $3; dl = int($3 / 10) * 10 + 10; fflush() }
        $1 == "pmstatus" && $3 >= pm { printf "[install]   install  %3d%%  %s\n", $3, $4; pm = int($3 / 10) * 10 + 10; fflush() }'; then
    cat "$err" >&2
    rm -f "$err"
    return 1
  fi
  rm -f "$err"
}

if [ "${#missing[@]}" -gt 0 ] || [ "${#tools[@]}" -gt 0 ]; then
  log "installing $(( ${#missing[@]} + ${#tools[@]} )) Debian packages and what they depend on (1 to 3 minutes)"
  # The packages' own services (etcd, pgbouncer, haproxy, prometheus...) must not start: the project
  # runs its own instances on its own ports. policy-rc.d exit 101 tells invoke-rc.d "do not start".
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  apt_install "${missing[@]}" "${tools[@]}" || { rm -f /usr/sbin/policy-rc.d; exit 1; }
  rm -f /usr/sbin/policy-rc.d
  # Under systemd the new services would start at the next boot and take the ports the project's
  # own instances use (6432, 9090...): disable those this run installed, and only those.
  if [ -d /run/systemd/system ]; then
    for p in "${missing[@]}"; do
      case "$p" in
        etcd-server) svc=etcd ;;
        pgbouncer|haproxy|prometheus|prometheus-postgres-exporter|prometheus-pgbouncer-exporter) svc=$p ;;
        *) continue ;;
      esac
      systemctl disable --now "$svc" >/dev/null 2>&1 || true
    done
  fi
  # Stop the distribution's own PostgreSQL cluster, should the package have started one. Only the
  # clusters pg_lsclusters lists (Debian's); never a process by name, which could be a running
  # cluster of this project's.
  if command -v pg_lsclusters >/dev/null; then
    pg_lsclusters -h 2>/dev/null | while read -r ver name _rest; do
      pg_ctlcluster "$ver" "$name" stop >/dev/null 2>&1 || true
    done
  fi
fi

if $build_pgvector; then
  log "building pgvector for PostgreSQL $PG_MAJOR from Debian 13's source package (about 30 s)"
  (cd "$src" && apt-get "${APT_SRC_OPTS[@]}" source --download-only -qq pgvector >/dev/null && dpkg-source -x --no-check ./*.dsc src >/dev/null)
  make -s -C "$src/src" PG_CONFIG="/usr/lib/postgresql/$PG_MAJOR/bin/pg_config" >/dev/null
  make -s -C "$src/src" PG_CONFIG="/usr/lib/postgresql/$PG_MAJOR/bin/pg_config" install >/dev/null
  log "pgvector installed: $(grep default_version "$PG_SHAREDIR/vector.control")"
fi

# Patroni 4 everywhere (Debian 12's own package is 3.0.2): quorum commit and one set of timing rules.
$patroni4 || bash "$HERE/install-patroni.sh"

# PgBouncer that tracks prepared statements (1.21+): Debian 13's package; on Debian 12, built from
# Debian 13's source package into a .deb that replaces 1.18 (scripts/install-pgbouncer.sh).
$pgbouncer_ok || bash "$HERE/install-pgbouncer.sh"

# Citus: a package where the archive has one, otherwise built from the pinned, checksummed source
# (its package or build dependencies are already installed above).
bash "$HERE/install-citus.sh" "$PG_MAJOR"

report_ready
