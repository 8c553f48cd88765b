#!/bin/sh
# Entrypoint of the database image. Started as root: the platform delivers the rendered files
# (patroni.yml and app-password hold passwords) owned by root; hand them and the data volume to
# postgres, readable by it alone, then run Patroni as postgres (PostgreSQL refuses root).
set -eu

CONFIG_DIR=/etc/dpc
VOLUME_DIR=/var/lib/postgresql/patroni

if [ "$(id -u)" = 0 ]; then
  chown -R postgres:postgres "$CONFIG_DIR" "$VOLUME_DIR"
  chmod 0700 "$VOLUME_DIR"
  # Every plain file there is a config holding a password: 0600. Scripts keep their exec bit (0700).
  find "$CONFIG_DIR" -type f ! -perm -u+x -exec chmod 0600 {} +
  find "$CONFIG_DIR" -type f -perm -u+x -exec chmod 0700 {} +
  # setpriv keeps this PID (no extra process), so Patroni gets the container's stop signal. It keeps
  # the environment too: HOME must be postgres's, or libpq (Citus connecting to the workers with
  # sslmode=require) fails on /root/.postgresql/postgresql.crt, "Permission denied".
  HOME=$(getent passwd postgres | cut -d: -f6)
  export HOME
  exec setpriv --reuid=postgres --regid=postgres --init-groups patroni "$CONFIG_DIR/patroni.yml"
fi
# Already unprivileged (e.g. a pod with runAsUser): the platform set owner and mode.
exec patroni "$CONFIG_DIR/patroni.yml"
