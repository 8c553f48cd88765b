#!/usr/bin/env bash
# PgBouncer that tracks protocol-level prepared statements (`max_prepared_statements`, PgBouncer 1.21+).
#
# Debian 13 packages 1.24: install.sh already installed it, and this script only checks the version.
# Debian 12 packages 1.18, which cannot track prepared statements: this script builds Debian 13's own
# source package into a .deb on this machine (apt-get source through a private apt configuration, so
# the system's sources stay untouched; build dependencies from Debian 12) and installs that .deb in
# place of 1.18, so /usr/sbin/pgbouncer is the new one and dpkg knows it. No binary is downloaded.
# Idempotent: when the installed PgBouncer is new enough it prints its version and does nothing.
# Must run as root.
set -euo pipefail

log() { printf '[install] %s\n' "$*"; }

MIN_VERSION=1.21            # first PgBouncer with max_prepared_statements
PGBOUNCER=/usr/sbin/pgbouncer # where Debian's package puts it, and what `npm run local` runs

installed_version() {
  [ -x "$PGBOUNCER" ] || return 0
  "$PGBOUNCER" --version 2>/dev/null | awk 'NR == 1 { print $2 }'
}

new_enough() { # version >= MIN_VERSION
  [ -n "$1" ] && [ "$(printf '%s\n%s\n' "$MIN_VERSION" "$1" | sort -V | head -1)" = "$MIN_VERSION" ]
}

if [ "$(id -u)" -ne 0 ]; then
  echo "[install] must run as root (apt-get, dpkg)" >&2
  exit 1
fi

version=$(installed_version)
if new_enough "$version"; then
  log "pgbouncer $version already tracks prepared statements (>= $MIN_VERSION)"
  exit 0
fi

. /etc/os-release
if [ "${VERSION_CODENAME:-}" != bookworm ]; then
  echo "[install] pgbouncer ${version:-missing} at $PGBOUNCER is older than $MIN_VERSION, and this script builds" \
    "the newer one only on Debian 12 (bookworm); on Debian 13 install the packaged one: apt-get install pgbouncer" >&2
  exit 1
fi
if [ "$(dpkg-architecture -qDEB_HOST_ARCH_BITS 2>/dev/null || getconf LONG_BIT)" != 64 ]; then
  echo "[install] Debian's pgbouncer source package builds on 64-bit architectures only" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive DEBCONF_NOWARNINGS=yes
started=$SECONDS
log "pgbouncer ${version:-missing} cannot track prepared statements: building Debian 13's pgbouncer source package"
apt-get install -y -qq --no-install-recommends dpkg-dev build-essential >/dev/null

work=$(mktemp -d /tmp/pgbouncer-build.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/apt/lists/partial" "$work/apt/archives/partial" "$work/apt/sources.list.d"
cat > "$work/apt/sources.list" <<SRC
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main
SRC
APT_OPTS=(-o "Dir::Etc::SourceList=$work/apt/sources.list" -o "Dir::Etc::SourceParts=$work/apt/sources.list.d"
          -o "Dir::State::Lists=$work/apt/lists" -o "Dir::Cache::Archives=$work/apt/archives"
          -o "Debug::NoLocking=1" -o "APT::Sandbox::User=root")
apt-get "${APT_OPTS[@]}" update -qq
(cd "$work" && apt-get "${APT_OPTS[@]}" source --download-only -qq pgbouncer >/dev/null && dpkg-source -x --no-check ./*.dsc src >/dev/null)
source_version=$(dpkg-parsechangelog -l "$work/src/debian/changelog" -S Version)
log "pgbouncer source $source_version from Debian 13"

# Build dependencies, read from the source package itself, installed from Debian 12. The test suite is
# skipped (build profile nocheck: it needs Python test modules Debian 12 lacks); `architecture-is-64-bit`
# is a Debian 13 marker package, checked above instead.
unmet=$(cd "$work/src" && dpkg-checkbuilddeps -B -P nocheck 2>&1 || true)
deps=$(printf '%s\n' "$unmet" | sed -n 's/.*Unmet build dependencies: //p' \
  | sed -E 's/\([^)]*\)//g; s/\[[^]]*\]//g; s/<[^>]*>//g; s/ *\| *[^ ]+//g' \
  | tr ' ' '\n' | { grep -v -e '^$' -e '^architecture-is-64-bit$' || true; } | sort -u | tr '\n' ' ')
if [ -n "${deps// /}" ]; then
  log "installing build dependencies from Debian 12: $deps"
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $deps >/dev/null
fi

# The long step (about a minute on 2 cores): configure, compile, man pages, .deb. Progress every 10 s.
log "building the .deb (dpkg-buildpackage; log: $work/build.log)"
(cd "$work/src" && DEB_BUILD_OPTIONS="nocheck parallel=$(nproc)" DEB_BUILD_PROFILES=nocheck \
  dpkg-buildpackage -b -d -us -uc >"$work/build.log" 2>&1) &
build=$!
while kill -0 "$build" 2>/dev/null; do
  sleep 1
  elapsed=$((SECONDS - started))
  if [ $((elapsed % 10)) -eq 0 ]; then
    log "  building... ${elapsed} s ($(grep -c -E '^(gcc|cc) ' "$work/build.log" 2>/dev/null || true) files compiled)"
  fi
done
if ! wait "$build"; then
  tail -30 "$work/build.log" >&2
  echo "[install] building pgbouncer $source_version failed (last lines above)" >&2
  exit 1
fi

deb=$(ls "$work"/pgbouncer_*.deb)
# The package's own service must not start (the project runs its own PgBouncer on its own ports):
# policy-rc.d exit 101 tells invoke-rc.d "do not start". Keep one that already exists.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  trap 'rm -rf "$work" /usr/sbin/policy-rc.d' EXIT
fi
apt-get install -y -qq --no-install-recommends "$deb" >/dev/null

version=$(installed_version)
if ! new_enough "$version"; then
  echo "[install] after installing $deb, $PGBOUNCER reports '${version:-nothing}' (wanted >= $MIN_VERSION)" >&2
  exit 1
fi
log "pgbouncer $version installed from Debian 13's source package $source_version in $((SECONDS - started)) s"
