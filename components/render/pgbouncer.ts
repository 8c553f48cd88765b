// pgbouncer.ini and its auth file: transaction pooling in front of HAProxy's read-write listener.
import type { ClusterConfig } from "../spec.ts";
import { PORTS, ROLES, type Addressing, type ClusterSecrets } from "./types.ts";

export interface PgbouncerPaths {
  authFile: string;
  socketDir: string;
  /** Local runs only; containers log to stderr and keep no pid file. */
  pidFile?: string;
  logFile?: string;
}

export function renderPgbouncerIni(config: ClusterConfig, addressing: Addressing, paths: PgbouncerPaths): string {
  const target = `host=${addressing.haproxy.connect} port=${PORTS.haproxyReadWrite}`;
  const lines = [
    "; Rendered by distributed-postgres-cluster; do not edit.",
    "[databases]",
    `${config.database} = ${target} dbname=${config.database}`,
    "",
    "[pgbouncer]",
    `listen_addr = ${addressing.pgbouncer.listen}`,
    `listen_port = ${PORTS.pgbouncer}`,
    `unix_socket_dir = ${paths.socketDir}`,
    "auth_type = scram-sha-256",
    `auth_file = ${paths.authFile}`,
    "pool_mode = transaction",
    `default_pool_size = ${config.poolSize}`,
    `max_client_conn = ${config.maxClientConnections}`,
    `max_db_connections = ${config.poolSize * 2}`,
    // PgBouncer does not follow a failover by itself: HAProxy does. Retry a failed server login
    // after 1 s (default 15 s) so that writes resume as soon as the new primary is routed.
    "server_login_retry = 1",
    "server_connect_timeout = 3",
    "query_wait_timeout = 60",
    "ignore_startup_parameters = extra_float_digits,options",
    `admin_users = ${ROLES.superuser}`,
    `stats_users = ${ROLES.superuser}`,
  ];
  if (paths.pidFile) lines.push(`pidfile = ${paths.pidFile}`);
  if (paths.logFile) lines.push(`logfile = ${paths.logFile}`);
  return lines.join("\n") + "\n";
}

function quote(value: string): string {
  return `"${value.replace(/"/g, '""')}"`;
}

/** userlist.txt: plain passwords, so PgBouncer can both verify clients and log in to the server. Mode 0600. */
export function renderPgbouncerUserlist(secrets: ClusterSecrets): string {
  return [
    `${quote(ROLES.app)} ${quote(secrets.app)}`,
    `${quote(ROLES.superuser)} ${quote(secrets.superuser)}`,
  ].join("\n") + "\n";
}
