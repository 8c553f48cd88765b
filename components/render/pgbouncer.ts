// pgbouncer.ini and its auth file: transaction pooling in front of HAProxy's read-write listener, plus
// a small session-mode pool (`<database>_session`) for clients that need session features.
import type { ClusterConfig } from "../spec.ts";
import type { TlsFilePaths } from "../tls/types.ts";
import { PORTS, ROLES, type Addressing, type PoolerCredentials } from "./types.ts";

/**
 * The schema-qualified function PgBouncer's `auth_query` calls (created by sql/migrations.ts, in a
 * schema of its own): a login role's SCRAM verifier, refused for superusers, replication and
 * BYPASSRLS roles.
 */
export const POOLER_LOOKUP_FUNCTION = "pgbouncer_auth.user_lookup";

/**
 * Two columns (name, verifier) as PgBouncer requires (client.c handle_auth_query_response); $1 is the
 * login name. Run as ROLES.poolerLookup, through its own pool, in `auth_dbname`.
 */
export const POOLER_AUTH_QUERY = `SELECT uname, phash FROM ${POOLER_LOOKUP_FUNCTION}($1)`;

export interface PgbouncerPaths {
  authFile: string;
  socketDir: string;
  /** Local runs only; containers log to stderr and keep no pid file. */
  pidFile?: string;
  logFile?: string;
  /** PgBouncer's CA, certificate and key (the router's); absent: plain TCP both ways. */
  tls?: TlsFilePaths;
}

/**
 * TLS both ways. Clients must use TLS (a plain TCP client is refused at once; the unix socket stays
 * for the admin console on the host). To servers: verify-full, the name checked being the host PgBouncer
 * dials, HAProxy's; HAProxy passes the TLS session through in TCP mode to the coordinator primary,
 * whose certificate therefore names the router too (components/tls/plan.ts). verify-ca would do without
 * that name but would accept any node's certificate for any address.
 */
export function pgbouncerTlsLines(tls: TlsFilePaths | undefined): string[] {
  if (!tls) return [];
  return [
    "client_tls_sslmode = require",
    `client_tls_cert_file = ${tls.certFile}`,
    `client_tls_key_file = ${tls.keyFile}`,
    `client_tls_ca_file = ${tls.caFile}`,
    "client_tls_protocols = secure",
    "server_tls_sslmode = verify-full",
    `server_tls_ca_file = ${tls.caFile}`,
    "server_tls_protocols = secure",
  ];
}

/** PgBouncer 1.21 is the first that tracks protocol-level prepared statements (`max_prepared_statements`). */
export const PGBOUNCER_MIN_VERSION = "1.21";

/**
 * Prepared statements PgBouncer keeps prepared on each server connection (an LRU; 0 disables the
 * tracking). 200 is PgBouncer's own default since 1.22: above the statements an application commonly
 * prepares (pgbench: 3-7, ORMs tens; pgjdbc caches 256 per connection but few are hot), and bounded,
 * as each one costs plan memory in the PostgreSQL backend of every pooled server connection.
 */
export const MAX_PREPARED_STATEMENTS = 200;

/**
 * Parameters PgBouncer keeps per client (besides client_encoding, DateStyle, TimeZone,
 * standard_conforming_strings and application_name) and restores on whichever server connection the
 * client gets, so a `SET` of one of them (or `-c NAME=VALUE` in the `options` startup parameter) holds
 * for that client and never reaches another. Only parameters PostgreSQL reports to clients can be
 * tracked; `default_transaction_read_only` is reported since PostgreSQL 14.
 */
export const TRACKED_PARAMETERS = ["IntervalStyle", "default_transaction_read_only"] as const;

/**
 * Startup parameters accepted and dropped. Only `extra_float_digits` (pgjdbc and others send 3 to get
 * exact float output, which PostgreSQL 12+ gives by default). `options` is not here: settings passed at
 * connect time (`-c statement_timeout=...`) are honoured when tracked (above) and otherwise refused
 * with "unsupported startup parameter in options", never silently dropped.
 */
export const IGNORED_STARTUP_PARAMETERS = ["extra_float_digits"] as const;

/**
 * Run on every server connection a client releases, in both pools (server_reset_query_always = 1), so
 * no session state reaches the next client: DISCARD ALL's parts (settings, role, cursors, LISTEN,
 * session advisory locks, temporary tables, sequence state) except the prepared statements PgBouncer
 * itself tracks (PGBOUNCER_n: kept, so prepared statements stay prepared on the server); statements a
 * client prepared under its own name (SQL PREPARE, or any in the session pool, where PgBouncer does not
 * track them) are deallocated. Tracked parameters are restored by PgBouncer before the next query of
 * their client. Cost: one round trip after each transaction, off the client's path.
 */
export const SERVER_RESET_QUERY = [
  "CLOSE ALL",
  "SET SESSION AUTHORIZATION DEFAULT",
  "RESET ROLE",
  "RESET ALL",
  "UNLISTEN *",
  "SELECT pg_advisory_unlock_all()",
  "DISCARD TEMP",
  "DISCARD SEQUENCES",
  "DO $$DECLARE s text; BEGIN FOR s IN SELECT name FROM pg_prepared_statements WHERE name NOT LIKE 'PGBOUNCER\\_%' " +
    "LOOP EXECUTE format('DEALLOCATE %I', s); END LOOP; END$$",
].join("; ");

/** The session-mode pool's PgBouncer database name: the same PostgreSQL database, a server connection per client. */
export function sessionPoolDatabase(config: ClusterConfig): string {
  return `${config.database}_session`;
}

/** Server connections of the session pool at most: a quarter of the transaction pool's size, at least 2. */
export function sessionPoolSize(config: ClusterConfig): number {
  return Math.max(2, Math.ceil(config.poolSize / 4));
}

export function renderPgbouncerIni(config: ClusterConfig, addressing: Addressing, paths: PgbouncerPaths): string {
  const target = `host=${addressing.haproxy.connect} port=${PORTS.haproxyReadWrite}`;
  const lines = [
    "; Rendered by distributed-postgres-cluster; do not edit.",
    "[databases]",
    `${config.database} = ${target} dbname=${config.database}`,
    // Session pooling: SET, session advisory locks, temporary tables, LISTEN, SQL PREPARE, WITH HOLD
    // cursors last as long as the client's connection. Its own, smaller cap on server connections.
    `${sessionPoolDatabase(config)} = ${target} dbname=${config.database} pool_mode=session pool_size=${sessionPoolSize(config)} max_db_connections=${sessionPoolSize(config)}`,
    "",
    "[pgbouncer]",
    `listen_addr = ${addressing.pgbouncer.listen}`,
    `listen_port = ${PORTS.pgbouncer}`,
    `unix_socket_dir = ${paths.socketDir}`,
    "auth_type = scram-sha-256",
    `auth_file = ${paths.authFile}`,
    // A user not in the auth file (every application role) is checked against the SCRAM verifier
    // the database holds now, looked up at each login (PgBouncer 1.24 client.c set_pool: a
    // dynamic_passwd user is queried again every time), so ALTER ROLE is all a rotation needs.
    // PgBouncer then logs in to the server with the client's SCRAM keys (pass-through: the same
    // verifier, streamed to every standby). The lookup runs in the application database on the
    // coordinator primary, through HAProxy like every server connection.
    `auth_user = ${ROLES.poolerLookup}`,
    `auth_query = ${POOLER_AUTH_QUERY}`,
    `auth_dbname = ${config.database}`,
    "pool_mode = transaction",
    `default_pool_size = ${config.poolSize}`,
    `max_client_conn = ${config.maxClientConnections}`,
    `max_db_connections = ${config.poolSize * 2}`,
    // PgBouncer does not follow a failover by itself: HAProxy does. After a failed server login
    // PgBouncer fails every client at once for server_login_retry seconds (default 15; fractions
    // allowed, PgBouncer's times are microsecond values): 0.25 s, HAProxy's read-write check
    // interval, so that writes resume within 0.25 s of the new primary being routed (with 1 s the
    // first write after a coordinator failover could come up to 1 s after HAProxy routed it). A
    // login while nothing is routed is refused by HAProxy at once: 4 cheap attempts a second.
    "server_login_retry = 0.25",
    "server_connect_timeout = 3",
    "query_wait_timeout = 60",
    `max_prepared_statements = ${MAX_PREPARED_STATEMENTS}`,
    `track_extra_parameters = ${TRACKED_PARAMETERS.join(",")}`,
    `ignore_startup_parameters = ${IGNORED_STARTUP_PARAMETERS.join(",")}`,
    `server_reset_query = ${SERVER_RESET_QUERY}`,
    "server_reset_query_always = 1",
    // A credential of PgBouncer's own (auth file only): the superuser's is rotated by config, and
    // the lookup refuses superusers anyway.
    `admin_users = ${ROLES.poolerAdmin}`,
    // The PgBouncer exporter reads SHOW STATS/POOLS/... as the monitoring role; admins can too.
    `stats_users = ${ROLES.monitor}`,
    ...pgbouncerTlsLines(paths.tls),
  ];
  if (paths.pidFile) lines.push(`pidfile = ${paths.pidFile}`);
  if (paths.logFile) lines.push(`logfile = ${paths.logFile}`);
  return lines.join("\n") + "\n";
}

function quote(value: string): string {
  return `"${value.replace(/"/g, '""')}"`;
}

/**
 * The auth file: only generated credentials, none a password rotation changes: the lookup role
 * (PgBouncer logs in with it to run auth_query; plain, as PgBouncer must answer the server's SCRAM
 * challenge), the admin console's user (admin_users) and the monitoring role (stats_users: SHOW
 * answers even while no coordinator does, when an auth_query could not run). Mode 0600.
 */
export function renderPgbouncerUserlist(pooler: PoolerCredentials): string {
  return [
    `${quote(ROLES.poolerLookup)} ${quote(pooler.lookup)}`,
    `${quote(ROLES.poolerAdmin)} ${quote(pooler.admin)}`,
    `${quote(ROLES.monitor)} ${quote(pooler.monitor)}`,
  ].join("\n") + "\n";
}
