// What the Schema resource runs during `pulumi up`: wait until the coordinator's leader answers
// through the read-write endpoint, apply the migrations, and have PgBouncer replace the server
// sessions it pooled before them. No Pulumi import: the dynamic provider loads this file in its own
// process, and the unit tests call it with fakes.
import { applyMigrations, type ApplyOptions, type ApplyResult } from "../sql/apply.ts";
import type { ClusterConfig } from "./spec.ts";
import { pgbouncerCommand } from "./pgbouncer-admin.ts";
import { verifyFullUrl } from "./pg-client.ts";
import { isMetadataOutOfSync, waitForMetadataSync } from "./citus-metadata.ts";
import { errorChain } from "./error-chain.ts";

export type { ApplyResult } from "../sql/apply.ts";

export interface ApplySchemaOptions {
  /** Give up when no leader has answered for this long. */
  timeoutMs: number;
  /** Pause between attempts (default 3 s). */
  intervalMs?: number;
  /** The application role's password, recorded for Citus (see ApplyOptions.appPassword). */
  appPassword?: string;
  /** The exporters' role's password (ApplyOptions.monitorPassword). */
  monitorPassword?: string;
  /** PgBouncer's lookup role's password (ApplyOptions.poolerLookupPassword). */
  poolerLookupPassword?: string;
  /** Progress lines (never the connection string). */
  log?: (message: string) => void;
  /** The migration runner; injected by the tests. */
  apply?: (url: string, config: ClusterConfig, options: ApplyOptions) => Promise<ApplyResult>;
  /** Sends one command to PgBouncer's admin console; injected by the tests. */
  adminCommand?: (url: string, command: string) => Promise<void>;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
}

// Node socket errors while containers start or while HAProxy has no primary to route to.
const RETRYABLE_SOCKET_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EHOSTUNREACH", "ENOTFOUND", "EAI_AGAIN", "EPIPE"]);
// SQLSTATEs of a cluster that is not ready yet: read_only_sql_transaction (a replica answered, e.g.
// mid-failover), cannot_connect_now (starting up), admin/crash shutdown, too_many_connections, and
// invalid_catalog_name (the database is created at bootstrap, a moment after PostgreSQL accepts logins).
const RETRYABLE_SQLSTATES = new Set(["25006", "57P01", "57P02", "57P03", "53300", "3D000"]);
// The pg client reports a connection dropped by HAProxy or PgBouncer without a code.
const RETRYABLE_MESSAGES = /Connection terminated|connection timeout|server closed the connection|the database system is (starting up|shutting down)/i;

/**
 * Whether an error means "no leader answers yet": connection refused or dropped, a read-only
 * standby, a server starting or stopping, or Citus refusing DDL until it has synced its metadata to
 * a worker group's new primary (isMetadataOutOfSync). Wrong passwords, SQL errors and a migration
 * whose SQL changed are final.
 */
export function isRetryableError(error: unknown): boolean {
  if (isMetadataOutOfSync(error)) return true;
  return errorChain(error).some((e) => {
    const { code, message } = e as { code?: unknown; message?: unknown };
    if (typeof code === "string" && (RETRYABLE_SOCKET_CODES.has(code) || RETRYABLE_SQLSTATES.has(code) || code.startsWith("08"))) return true;
    return typeof message === "string" && RETRYABLE_MESSAGES.test(message);
  });
}

/** host:port of a connection URL: safe to log (no user, no password). */
export function endpointOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return "(unparsable URL)";
  }
}

/** One line about an error: its code (when the message lacks it) and its message's first line. */
export function briefError(error: unknown): string {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  const text = String(message ?? error).split("\n")[0];
  return typeof code === "string" && !text.includes(code) ? `${code} ${text}` : text;
}

/**
 * Applies the migrations through `url` (the coordinator's read-write endpoint, as a superuser),
 * retrying while no leader answers, until `timeoutMs` has passed.
 */
export async function applySchemaWithRetry(url: string, config: ClusterConfig, options: ApplySchemaOptions): Promise<ApplyResult> {
  const apply = options.apply ?? applyMigrations;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const now = options.now ?? Date.now;
  const log = options.log ?? (() => {});
  const interval = options.intervalMs ?? 3000;
  const deadline = now() + options.timeoutMs;
  const endpoint = endpointOf(url);
  for (let attempt = 1; ; attempt++) {
    try {
      const result = await apply(url, config, { appPassword: options.appPassword, monitorPassword: options.monitorPassword, poolerLookupPassword: options.poolerLookupPassword });
      log(`schema: version ${result.version} at ${endpoint} (attempt ${attempt}; applied: ${result.applied.join(", ") || "none"})`);
      return result;
    } catch (error) {
      if (!isRetryableError(error)) throw error;
      if (now() + interval > deadline) {
        throw new Error(
          `schema: no leader answered at ${endpoint} within ${Math.round(options.timeoutMs / 1000)} s (${attempt} attempt${attempt === 1 ? "" : "s"}); last error: ${briefError(error)}`,
          { cause: error },
        );
      }
      log(`schema: waiting for a leader at ${endpoint} (attempt ${attempt}: ${briefError(error)})`);
      await sleep(interval);
    }
  }
}

export const RECONNECT_NOTE = "PgBouncer RECONNECT: server sessions pooled before the migrations are replaced once released, so they pick up the new database settings";


export const NO_POOLER_NOTE = "PgBouncer RECONNECT skipped: nothing listens at its address yet (it starts after the schema step), so no session is pooled";

/**
 * Socket codes that mean no PgBouncer process listens at the address (nothing at the port, or no
 * such name yet): PgBouncer is created after this step (cluster.ts, Router.pgbouncerDependsOn), so
 * on a first deploy none runs and no session is pooled that a RECONNECT would have to replace.
 */
const NOTHING_LISTENS = new Set(["ECONNREFUSED", "ENOTFOUND"]);

/**
 * Applies the migrations (applySchemaWithRetry), then, when any applied, sends RECONNECT to
 * PgBouncer's admin console at `poolerAdminUrl`: database-level settings (hnsw.ef_search, ...) are
 * read at session start, and PgBouncer would otherwise keep serving sessions opened before the
 * change until they expire. Where nothing listens (NOTHING_LISTENS: PgBouncer not created yet) there
 * is nothing to replace; other failures are retried like the migrations, within the same
 * `timeoutMs`, and failing them fails the step (the settings would be stale for pooled clients).
 */
export async function applySchema(url: string, poolerAdminUrl: string, config: ClusterConfig, options: ApplySchemaOptions): Promise<ApplyResult> {
  const now = options.now ?? Date.now;
  const started = now();
  const result = await applySchemaWithRetry(url, config, options);
  if (result.applied.length === 0) return result;
  const command = options.adminCommand ?? pgbouncerCommand;
  const remaining = Math.max(0, options.timeoutMs - (now() - started));
  const sent = await withRetry(`PgBouncer at ${endpointOf(poolerAdminUrl)}`, remaining, options, () =>
    command(poolerAdminUrl, "RECONNECT").then(
      () => true,
      (error: unknown) => {
        if (errorChain(error).some((e) => NOTHING_LISTENS.has(String((e as { code?: unknown }).code)))) return false;
        throw error;
      },
    ),
  );
  if (!sent) {
    options.log?.(`schema: no PgBouncer listens at ${endpointOf(poolerAdminUrl)} yet: no RECONNECT needed`);
    return { ...result, notes: [...result.notes, NO_POOLER_NOTE] };
  }
  options.log?.(`schema: RECONNECT sent to PgBouncer at ${endpointOf(poolerAdminUrl)}`);
  return { ...result, notes: [...result.notes, RECONNECT_NOTE] };
}

/** Runs `attempt` until it succeeds, a non-retryable error, or `timeoutMs`. */
async function withRetry<T>(what: string, timeoutMs: number, options: ApplySchemaOptions, attempt: () => Promise<T>): Promise<T> {
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const now = options.now ?? Date.now;
  const interval = options.intervalMs ?? 3000;
  const deadline = now() + timeoutMs;
  for (let count = 1; ; count++) {
    try {
      return await attempt();
    } catch (error) {
      if (!isRetryableError(error) || now() + interval > deadline) {
        throw new Error(`schema: ${what} did not answer (${count} attempt${count === 1 ? "" : "s"}): ${briefError(error)}`, { cause: error });
      }
      options.log?.(`schema: waiting for ${what} (attempt ${count}: ${briefError(error)})`);
      await sleep(interval);
    }
  }
}

/** The schema step's input, the same wherever it runs (a dynamic resource, or a Job in the cluster). */
export interface SchemaStepInputs {
  /** Superuser URL through HAProxy's read-write listener (secret). */
  connectionString: string;
  /** PgBouncer's admin console (database `pgbouncer`) as ROLES.poolerAdmin: RECONNECT after a change (secret). */
  poolerAdminConnectionString: string;
  /** The application role's password, for Citus' own connections to the workers (secret). */
  appPassword: string;
  /** The exporters' role's password (ROLES.monitor), set as a SCRAM verifier (secret). */
  monitorPassword?: string;
  /** PgBouncer's lookup role's password (ROLES.poolerLookup), set as a SCRAM verifier (secret). */
  poolerLookupPassword?: string;
  /**
   * The cluster CA (PEM): both connections verify the server with it and by name (sslmode=verify-full),
   * as pg_hba and PgBouncer admit TLS only.
   */
  ca?: string;
  config: ClusterConfig;
  /** sha256 over every migration's id and checksum, with and without Citus. */
  migrationsFingerprint: string;
  /** Give up when no leader has answered for this long, seconds. */
  timeoutSeconds: number;
}

/**
 * The schema step: applySchema with the step's input, then a wait until Citus has synced its
 * metadata to every worker (waitForMetadataSync, within the same timeout), so that `pulumi up` ends
 * with a cluster that takes DDL: after a worker group's primary changed (a failover, or a stack
 * declared again after a destroy), Citus refuses DDL until then. Progress lines to `log`.
 * @throws what applySchema throws; Error naming the workers still out of sync after the timeout.
 */
export async function runSchemaStep(inputs: SchemaStepInputs, log: (message: string) => void = () => {}): Promise<ApplyResult> {
  const started = Date.now();
  const url = verifyFullUrl(inputs.connectionString, inputs.ca);
  const result = await applySchema(url, verifyFullUrl(inputs.poolerAdminConnectionString, inputs.ca), inputs.config, {
    appPassword: inputs.appPassword,
    monitorPassword: inputs.monitorPassword,
    poolerLookupPassword: inputs.poolerLookupPassword,
    timeoutMs: inputs.timeoutSeconds * 1000,
    log,
  });
  const remaining = Math.max(5000, inputs.timeoutSeconds * 1000 - (Date.now() - started));
  const waited = await waitForMetadataSync(url, { timeoutMs: remaining, log: (line) => log(`schema: ${line}`) });
  log(`schema: Citus metadata synced to every worker${waited >= 0.5 ? ` (waited ${waited.toFixed(1)} s)` : ""}`);
  return result;
}
