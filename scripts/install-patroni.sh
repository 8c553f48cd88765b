#!/usr/bin/env bash
# Ensures Patroni 4 (what the database image runs): Debian 13 packages it; on Debian 12, whose own
# package is 3.0.2, installs Debian 13's package (pure Python, architecture all) and the one
# dependency Debian 12 lacks (python3-ydiff), fetched with apt through a private configuration that
# leaves the system's sources untouched. Patroni 4 brings quorum-based synchronous replication and
# the same timing rules everywhere (ttl >= 20).
#
#   scripts/install-patroni.sh
#
# Idempotent: with Patroni 4 or later installed it only prints the version.
set -euo pipefail

log() { printf '[install] %s\n' "$*"; }
fail() { printf '[install] %s\n' "$*" >&2; exit 1; }

version() { /usr/bin/python3 /usr/bin/patroni --version 2>/dev/null | awk '{print $2}'; }

current=$(version || true)
if [ -n "$current" ] && [ "${current%%.*}" -ge 4 ]; then
  log "Patroni $current already installed"
  exit 0
fi

. /etc/os-release
[ "${VERSION_CODENAME:-}" = bookworm ] || fail "Patroni ${current:-none} on ${VERSION_CODENAME:-unknown}: expected Debian's patroni 4 package there"

work=$(mktemp -d /tmp/patroni-trixie.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/apt/lists/partial" "$work/apt/archives/partial" "$work/apt/sources.list.d" "$work/debs"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main" > "$work/apt/sources.list"
APT_OPTS=(-o "Dir::Etc::SourceList=$work/apt/sources.list" -o "Dir::Etc::SourceParts=$work/apt/sources.list.d"
          -o "Dir::State::Lists=$work/apt/lists" -o "Dir::Cache::Archives=$work/apt/archives"
          -o "Debug::NoLocking=1" -o "APT::Sandbox::User=root")
log "installing Patroni 4 from Debian 13's package (Debian 12 has ${current:-no Patroni})"
apt-get "${APT_OPTS[@]}" update -qq || fail "could not read Debian 13's package lists (no network to the archive?)"
(cd "$work/debs" && apt-get "${APT_OPTS[@]}" download -qq patroni python3-ydiff) || fail "could not download Debian 13's patroni package"
# Its other dependencies come from Debian 12 itself. The package's own service must not start.
had_policy=0
[ -e /usr/sbin/policy-rc.d ] && had_policy=1
[ "$had_policy" = 1 ] || { printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d; }
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$work"/debs/*.deb >/dev/null
[ "$had_policy" = 1 ] || rm -f /usr/sbin/policy-rc.d
installed=$(version)
[ "${installed%%.*}" -ge 4 ] || fail "Patroni is still $installed after installing Debian 13's package"
log "Patroni $installed installed"
