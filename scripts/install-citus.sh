#!/usr/bin/env bash
# Installs Citus for this machine's PostgreSQL major: Debian's package where the archive has one,
# otherwise a build of the pinned source tarball (no reachable registry ships Citus here).
#
#   scripts/install-citus.sh PG_MAJOR           install (when missing)
#   scripts/install-citus.sh PG_MAJOR --check   install nothing; print what installing would take, one
#                                               line: `installed`, `package NAME` or `build DEP...`
#                                               (the build dependencies still missing); fail, as the
#                                               install would, when it cannot (so install.sh refuses first)
#
# DPC_CITUS_TARBALL   the source tarball (default: ../shared/vendor/citus-13.0.5.tar.gz beside the project)
#
# Idempotent: when citus.control exists for PG_MAJOR it only prints the installed version. The
# tarball's sha256 is checked against CITUS_SHA256 below before anything is built.
set -euo pipefail

CITUS_VERSION=13.0.5
CITUS_SHA256=22d855284a6ff7406606fb87d464b830368a3df918644e6b94d7eb3b3dfb7113

log() { printf '[install] %s\n' "$*"; }
fail() { printf '[install] %s\n' "$*" >&2; exit 1; }

PG_MAJOR=${1:?usage: install-citus.sh PG_MAJOR [--check]}
CHECK_ONLY=false
[ "${2:-}" = --check ] && CHECK_ONLY=true
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARBALL=${DPC_CITUS_TARBALL:-$ROOT/../shared/vendor/citus-$CITUS_VERSION.tar.gz}
CONTROL="/usr/share/postgresql/$PG_MAJOR/extension/citus.control"
PG_CONFIG="/usr/lib/postgresql/$PG_MAJOR/bin/pg_config"

installed_version() { sed -n "s/^default_version = '\(.*\)'/\1/p" "$CONTROL"; }

if [ -f "$CONTROL" ] && [ -f "/usr/lib/postgresql/$PG_MAJOR/lib/citus.so" ]; then
  if $CHECK_ONLY; then echo installed; exit 0; fi
  log "Citus already installed for PostgreSQL $PG_MAJOR: $(installed_version)"
  exit 0
fi

# A packaged Citus of the same major.minor, where the machine's archive has one (PGDG names it so).
package="postgresql-$PG_MAJOR-citus-${CITUS_VERSION%.*}"
if apt-cache show "$package" >/dev/null 2>&1; then
  if $CHECK_ONLY; then echo "package $package"; exit 0; fi
  log "installing Citus from the package $package"
  apt-get install -y -qq --no-install-recommends "$package" >/dev/null
  log "Citus installed for PostgreSQL $PG_MAJOR: $(installed_version)"
  exit 0
fi

[ -f "$TARBALL" ] || fail "no Citus package for PostgreSQL $PG_MAJOR in this machine's archive, and no source tarball at $TARBALL (set DPC_CITUS_TARBALL)"
actual=$(sha256sum "$TARBALL" | awk '{print $1}')
[ "$actual" = "$CITUS_SHA256" ] || fail "$TARBALL has sha256 $actual; expected $CITUS_SHA256 (Citus $CITUS_VERSION): refusing to build it"

BUILD_DEPS=("postgresql-server-dev-$PG_MAJOR" build-essential liblz4-dev libzstd-dev libcurl4-openssl-dev
  libkrb5-dev libselinux1-dev libxslt1-dev libpam0g-dev libreadline-dev libicu-dev)
missing=()
for p in "${BUILD_DEPS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if $CHECK_ONLY; then echo "build ${missing[*]}"; exit 0; fi
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing Citus build dependencies: ${missing[*]}"
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

work=$(mktemp -d /tmp/citus-build.XXXXXX)
trap 'rm -rf "$work"' EXIT
tar -xzf "$TARBALL" -C "$work" --strip-components=1
started=$(date +%s)
log "building Citus $CITUS_VERSION for PostgreSQL $PG_MAJOR from $TARBALL (about 6 minutes on 2 cores; log: $work/build.log)"
(cd "$work" && ./configure PG_CONFIG="$PG_CONFIG" --quiet >"$work/build.log" 2>&1) \
  || { tail -20 "$work/build.log" >&2; fail "Citus configure failed"; }
total=$(find "$work/src" -name '*.c' | wc -l)
# make runs in the background; progress is the share of object files built so far.
(cd "$work" && make -j"$(nproc)" >>"$work/build.log" 2>&1) &
make_pid=$!
while kill -0 "$make_pid" 2>/dev/null; do
  sleep 15
  built=$(find "$work/src" -name '*.o' | wc -l)
  log "  Citus build: $built of about $total files compiled, $(( $(date +%s) - started )) s"
done
wait "$make_pid" || { tail -30 "$work/build.log" >&2; fail "Citus build failed (log above)"; }
make -C "$work" install >>"$work/build.log" 2>&1 || { tail -20 "$work/build.log" >&2; fail "Citus install failed"; }
[ -f "$CONTROL" ] || fail "Citus built, but $CONTROL is missing after make install"
log "Citus $CITUS_VERSION (extension version $(installed_version)) installed for PostgreSQL $PG_MAJOR in $(( $(date +%s) - started )) s"
