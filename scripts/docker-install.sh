#!/usr/bin/env bash
# The Docker engine for `npm run test:docker`, from Debian's own packages, kept apart from anything
# else on the machine: its own dockerd, with every piece of state under one directory.
#
#   scripts/docker-install.sh start   install docker.io + debootstrap (idempotent); start our dockerd
#                                     unless it already answers; print DOCKER_HOST=... last
#   scripts/docker-install.sh base    build the Debian 13 base image (debootstrap minbase, docker
#                                     import) as local/debian:trixie, unless the tag exists
#   scripts/docker-install.sh stop    stop the dockerd `start` started (by its pid file), nothing else
#
# No registry is reachable here, so nothing is pulled: images are built from Debian's packages.
# Our dockerd does not touch the host's firewall or sysctls (--iptables=false, --ip-forward=false):
# containers reach each other on their bridge, the host reaches them by IP and through published
# ports (docker-proxy); image builds that need the network run with `--network host`.
set -euo pipefail

ROOT=${DPC_DOCKER_ROOT:-/var/lib/dpc-docker}
SOCKET=${DPC_DOCKER_SOCKET:-/run/dpc-docker.sock}
PIDFILE="$ROOT/dockerd.pid"
LOG="$ROOT/dockerd.log"
BASE_TAG=${DPC_BASE_IMAGE_TAG:-local/debian:trixie}
export DOCKER_HOST="unix://$SOCKET"

log() { printf '[docker-install] %s\n' "$*" >&2; }

require_root() {
  if [ "$(id -u)" -ne 0 ]; then log "must run as root (apt-get install, dockerd)"; exit 1; fi
}

install_packages() {
  local missing=()
  for p in docker.io debootstrap; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ "${#missing[@]}" -eq 0 ]; then log "docker.io and debootstrap already installed"; return; fi
  log "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # The package's own docker service must not start: we run our own daemon. exit 101 = "do not start".
  local had_policy=0
  [ -e /usr/sbin/policy-rc.d ] && had_policy=1
  if [ "$had_policy" = 0 ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' RETURN
  fi
  apt-get update -qq -o DPkg::Lock::Timeout=300
  apt-get install -y -qq -o DPkg::Lock::Timeout=300 --no-install-recommends "${missing[@]}" >/dev/null
}

# The docker client on PATH may be a newer static build; the one of the package matches the daemon.
docker_cli() { if [ -x /usr/bin/docker ]; then /usr/bin/docker "$@"; else docker "$@"; fi; }

answers() { docker_cli version --format '{{.Server.Version}}' >/dev/null 2>&1; }

start() {
  require_root
  install_packages
  if answers; then
    log "our dockerd already answers on $SOCKET"
  else
    mkdir -p "$ROOT/data" "$ROOT/exec"
    if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
      log "dockerd $(cat "$PIDFILE") exists but does not answer; see $LOG"; exit 1
    fi
    rm -f "$PIDFILE" "$SOCKET"
    log "starting dockerd (state under $ROOT, socket $SOCKET)"
    # setsid: the daemon outlives this script and the test process; `stop` ends it by its pid file.
    # Its own containerd is started by dockerd (state under --data-root and --exec-root as well).
    setsid /usr/sbin/dockerd \
      --host "unix://$SOCKET" \
      --data-root "$ROOT/data" \
      --exec-root "$ROOT/exec" \
      --pidfile "$PIDFILE" \
      --iptables=false --ip6tables=false --ip-forward=false --ip-masq=false \
      --bridge=none \
      --storage-driver=overlay2 \
      --log-level=warn \
      >"$LOG" 2>&1 < /dev/null &
    for _ in $(seq 1 60); do
      answers && break
      sleep 0.5
    done
    if ! answers; then log "dockerd did not answer within 30 s; its log:"; tail -20 "$LOG" >&2; exit 1; fi
    log "dockerd $(docker_cli version --format '{{.Server.Version}}') ready"
  fi
  echo "DOCKER_HOST=$DOCKER_HOST"
}

base() {
  require_root
  if docker_cli image inspect "$BASE_TAG" >/dev/null 2>&1; then log "$BASE_TAG already built"; return; fi
  # The mirror apt already uses on this machine (only Debian's repositories are reachable).
  local mirror
  mirror=$(grep -rhoE '^(URIs:|deb) +[a-z]+://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
    | awk '{print $2}' | head -1 || true)
  mirror=${mirror:-http://deb.debian.org/debian}
  local rootfs
  rootfs=$(mktemp -d /var/tmp/dpc-trixie.XXXXXX)
  log "debootstrap --variant=minbase trixie from $mirror (about 30 s)"
  if ! debootstrap --variant=minbase trixie "$rootfs" "$mirror" >"$ROOT/debootstrap.log" 2>&1; then
    log "debootstrap failed; see $ROOT/debootstrap.log"; rm -rf "$rootfs"; exit 1
  fi
  rm -rf "$rootfs/var/cache/apt/archives/"*.deb "$rootfs/var/lib/apt/lists/"*
  tar -C "$rootfs" -c . | docker_cli import - "$BASE_TAG" >/dev/null
  rm -rf "$rootfs"
  log "$BASE_TAG imported"
}

stop() {
  if [ ! -f "$PIDFILE" ]; then log "no dockerd of ours is running"; return; fi
  local pid
  pid=$(cat "$PIDFILE")
  if kill -0 "$pid" 2>/dev/null && grep -q dockerd "/proc/$pid/comm" 2>/dev/null; then
    log "stopping dockerd $pid"
    kill -TERM "$pid"
    for _ in $(seq 1 60); do
      # A zombie still passes kill -0: read its state instead.
      grep -qE '^State:\s+[^Z]' "/proc/$pid/status" 2>/dev/null || break
      sleep 0.5
    done
    if grep -qE '^State:\s+[^Z]' "/proc/$pid/status" 2>/dev/null; then log "dockerd $pid did not stop in 30 s"; exit 1; fi
  fi
  rm -f "$PIDFILE" "$SOCKET"
  # dockerd leaves its default network namespace mounted under its exec root: unmount what is ours.
  awk -v root="$ROOT/" 'index($2, root) == 1 {print $2}' /proc/mounts | sort -r | while read -r mount; do
    umount "$mount" 2>/dev/null || log "could not unmount $mount"
  done
  log "dockerd stopped"
}

case "${1:-}" in
  start) start ;;
  base) base ;;
  stop) stop ;;
  *) echo "usage: $0 start|base|stop" >&2; exit 2 ;;
esac
