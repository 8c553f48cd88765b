// Applies the rendered migrations to a database and records each one (id + checksum) in a table, so a
// second run applies nothing. Each migration runs in its own transaction with its record.
import pg from "pg";
import type { ClusterConfig } from "../components/spec.ts";
import { latestVersion, quoteIdent, quoteLiteral, REGISTERED_WORKER_GROUPS_SQL, renderMigrations, type Migration, type MigrationContext } from "./migrations.ts";
import { scramSha256Verifier } from "../components/rotation/scram.ts";
import { vectorDialect } from "./vector-dialect.ts";
import { ROLES } from "../components/render/types.ts";
import { quietClient } from "../components/pg-client.ts";

export const MIGRATIONS_TABLE = "public.schema_migrations";
export const CITUS_ABSENT_NOTE = "citus extension absent: tables are local, not distributed";
// One runner at a time per database (an arbitrary, fixed advisory lock key).
const ADVISORY_LOCK_KEY = 740_214_001;

export interface ApplyResult {
  /** Id of the last migration now recorded. */
  version: string;
  /** Ids applied (or re-applied) by this run, in order. */
  applied: string[];
  /** Whether the citus extension exists in the database. */
  citus: boolean;
  notes: string[];
}

export class MigrationDriftError extends Error {
  constructor(id: string, recorded: string, rendered: string) {
    super(
      `migration ${id} was applied with checksum ${recorded.slice(0, 12)} but now renders as ${rendered.slice(0, 12)}: ` +
        "a non-repeatable migration changed (dimension, m, ef_construction or extension?); add a new migration instead",
    );
    this.name = "MigrationDriftError";
  }
}

async function hasExtension(client: pg.ClientBase, name: string): Promise<boolean> {
  const result = await client.query("SELECT 1 FROM pg_extension WHERE extname = $1", [name]);
  return result.rowCount === 1;
}

/** Reads what the renderer needs from the catalog. */
export async function readMigrationContext(client: pg.ClientBase, config: ClusterConfig): Promise<MigrationContext> {
  const dialect = vectorDialect(config.vectorExtension);
  const citus = await hasExtension(client, "citus");
  const found = await client.query<{ amname: string }>(
    "SELECT amname FROM pg_am WHERE amtype = 'i' AND amname = ANY($1::text[])",
    [dialect.accessMethodCandidates],
  );
  const names = found.rows.map((row) => row.amname);
  const hnswAccessMethod = dialect.accessMethodCandidates.find((candidate) => names.includes(candidate));
  if (hnswAccessMethod) return { citus, hnswAccessMethod };
  if (await hasExtension(client, dialect.extensionName)) {
    throw new Error(`extension ${dialect.extensionName} is installed but pg_am has no HNSW access method (looked for ${dialect.accessMethodCandidates.join(", ")})`);
  }
  // Before 001 installs the extension: only 001 is applied with this context, and it names no access method.
  return { citus, hnswAccessMethod: dialect.accessMethodCandidates[0] };
}

async function ensureMigrationsTable(client: pg.ClientBase): Promise<void> {
  const exists = await client.query("SELECT to_regclass($1) IS NOT NULL AS present", [MIGRATIONS_TABLE]);
  if (exists.rows[0].present) return;
  await client.query(`CREATE TABLE IF NOT EXISTS ${MIGRATIONS_TABLE} (
    id text PRIMARY KEY,
    checksum text NOT NULL,
    repeatable boolean NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
  )`);
}

async function recordedChecksums(client: pg.ClientBase): Promise<Map<string, string>> {
  const result = await client.query<{ id: string; checksum: string }>(`SELECT id, checksum FROM ${MIGRATIONS_TABLE}`);
  return new Map(result.rows.map((row) => [row.id, row.checksum]));
}

async function runInTransaction(client: pg.ClientBase, migration: Migration): Promise<void> {
  await client.query("BEGIN");
  try {
    for (const statement of migration.statements) await client.query(statement);
    await client.query(
      `INSERT INTO ${MIGRATIONS_TABLE} (id, checksum, repeatable) VALUES ($1, $2, $3)
       ON CONFLICT (id) DO UPDATE SET checksum = EXCLUDED.checksum, applied_at = now()`,
      [migration.id, migration.checksum, migration.repeatable],
    );
    await client.query("COMMIT");
  } catch (error) {
    await client.query("ROLLBACK");
    throw new Error(`migration ${migration.id} failed: ${(error as Error).message}`, { cause: error });
  }
}

export interface ApplyOptions {
  /** How long to wait for every worker group to be registered in pg_dist_node (ms; default 120 s). */
  workerWaitMs?: number;
  /**
   * The application role's password. Under Citus the coordinator opens its own connections to the
   * workers as the client's role; with scram-sha-256 in pg_hba those need the password, which Citus
   * takes from pg_dist_authinfo (as Patroni does for the superuser at bootstrap). Recorded there when given.
   */
  appPassword?: string;
  /**
   * The exporters' role's password (ROLES.monitor): set as a SCRAM verifier when the role does not
   * have it yet, and recorded for Citus like the application's (its size queries reach the workers).
   */
  monitorPassword?: string;
  /**
   * PgBouncer's lookup role's password (ROLES.poolerLookup, generated): set as a SCRAM verifier when
   * the role does not have it yet, on the coordinator only (migration 011 keeps the role there).
   */
  poolerLookupPassword?: string;
}

/**
 * Sets `role`'s password unless it already verifies: ALTER ROLE with a SCRAM verifier (components/rotation/scram.ts),
 * so the password is in no statement text. Citus propagates the ALTER ROLE to the workers.
 * Returns whether it changed anything.
 */
export async function ensureRolePassword(client: pg.ClientBase, role: string, password: string, options: { citusLocal?: boolean } = {}): Promise<boolean> {
  const current = await client.query<{ rolpassword: string | null }>("SELECT rolpassword FROM pg_authid WHERE rolname = $1", [role]);
  if (current.rows.length === 0) throw new Error(`role ${role} does not exist: the migrations create it`);
  const stored = current.rows[0].rolpassword;
  const match = stored ? /^SCRAM-SHA-256\$(\d+):([^$]+)\$/.exec(stored) : null;
  if (stored && match && scramSha256Verifier(password, Buffer.from(match[2], "base64"), Number(match[1])) === stored) return false;
  const alter = `ALTER ROLE ${quoteIdent(role)} PASSWORD ${quoteLiteral(scramSha256Verifier(password))}`;
  if (!options.citusLocal) {
    await client.query(alter);
    return true;
  }
  // A role of this node alone (Citus would otherwise try to alter it on every worker).
  await client.query("BEGIN");
  try {
    await client.query("SET LOCAL citus.enable_alter_role_propagation TO off");
    await client.query(alter);
    await client.query("COMMIT");
  } catch (error) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw error;
  }
  return true;
}

/** A libpq conninfo value, quoted: single quotes and backslashes escaped (libpq's connection string rules). */
export function conninfoValue(value: string): string {
  return `'${value.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;
}

/**
 * Records (or updates) the password Citus uses for `role` on connections to every node (nodeid 0).
 * The password travels as a bind parameter: it is in no statement text and no log.
 */
export async function recordCitusAuthinfo(client: pg.ClientBase, role: string, password: string): Promise<void> {
  await client.query(
    `INSERT INTO pg_catalog.pg_dist_authinfo (nodeid, rolename, authinfo) VALUES (0, $1, $2)
     ON CONFLICT (nodeid, rolename) DO UPDATE SET authinfo = EXCLUDED.authinfo WHERE pg_dist_authinfo.authinfo IS DISTINCT FROM EXCLUDED.authinfo`,
    [role, `password=${conninfoValue(password)}`],
  );
}

/**
 * Waits until pg_dist_node lists an active primary for each of the `expected` worker groups (1..N):
 * Patroni registers a group once it has a leader, and shards are placed only on workers registered
 * when a table is distributed. Throws, naming the missing groups, after `timeoutMs`.
 */
export async function waitForWorkerGroups(client: pg.ClientBase, expected: number, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const result = await client.query<{ groupid: number }>(REGISTERED_WORKER_GROUPS_SQL);
    const registered = new Set(result.rows.map((row) => Number(row.groupid)));
    const missing = Array.from({ length: expected }, (_, i) => i + 1).filter((group) => !registered.has(group));
    if (missing.length === 0) return;
    if (Date.now() >= deadline) {
      throw new Error(
        `pg_dist_node has no active primary for worker group(s) ${missing.join(", ")} of ${expected} after ${Math.round(timeoutMs / 1000)} s: ` +
          "not distributing tables (shards would land on a subset of the workers); check that those groups have a Patroni leader",
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

async function applyWithClient(client: pg.ClientBase, config: ClusterConfig, options: ApplyOptions): Promise<ApplyResult> {
  const current = await client.query<{ name: string }>("SELECT current_database() AS name");
  if (current.rows[0].name !== config.database) {
    throw new Error(`connected to database ${current.rows[0].name}, but the configuration's database is ${config.database}`);
  }
  await client.query("SELECT pg_advisory_lock($1)", [ADVISORY_LOCK_KEY]);
  try {
    await ensureMigrationsTable(client);
    const recorded = await recordedChecksums(client);
    const applied: string[] = [];
    const notes: string[] = [];
    let context = await readMigrationContext(client, config);
    const count = renderMigrations(config, context).length;
    for (let index = 0; index < count; index++) {
      // Rendered again at each step: 001 installs the extension whose access method 005 names.
      const migration = renderMigrations(config, context)[index];
      const previous = recorded.get(migration.id);
      if (previous === migration.checksum) continue;
      if (previous !== undefined && !migration.repeatable) throw new MigrationDriftError(migration.id, previous, migration.checksum);
      if (migration.id === "004_distribution" && context.citus) await waitForWorkerGroups(client, config.workerGroups, options.workerWaitMs);
      await runInTransaction(client, migration);
      applied.push(migration.id);
      if (previous !== undefined) notes.push(`re-applied repeatable migration ${migration.id}: its SQL changed`);
      context = await readMigrationContext(client, config);
    }
    if (context.citus && options.appPassword !== undefined) await recordCitusAuthinfo(client, ROLES.app, options.appPassword);
    if (options.monitorPassword !== undefined) {
      if (await ensureRolePassword(client, ROLES.monitor, options.monitorPassword)) notes.push(`set the password of ${ROLES.monitor}`);
      if (context.citus) await recordCitusAuthinfo(client, ROLES.monitor, options.monitorPassword);
    }
    if (options.poolerLookupPassword !== undefined) {
      if (await ensureRolePassword(client, ROLES.poolerLookup, options.poolerLookupPassword, { citusLocal: context.citus })) notes.push(`set the password of ${ROLES.poolerLookup}`);
    }
    if (!context.citus) notes.push(CITUS_ABSENT_NOTE);
    if (applied.length === 0) notes.push("nothing to apply: every migration is recorded with its current checksum");
    return { version: latestVersion(renderMigrations(config, context)), applied, citus: context.citus, notes };
  } finally {
    await client.query("SELECT pg_advisory_unlock($1)", [ADVISORY_LOCK_KEY]);
  }
}

/**
 * Applies every pending migration. `target` is a connected client, or a connection URL (a client is
 * opened and closed here). The connection must be a superuser's (CREATE EXTENSION, ALTER DATABASE).
 */
export async function applyMigrations(target: pg.ClientBase | string, config: ClusterConfig, options: ApplyOptions = {}): Promise<ApplyResult> {
  if (typeof target !== "string") return applyWithClient(target, config, options);
  const client = quietClient({ connectionString: target });
  await client.connect();
  try {
    return await applyWithClient(client, config, options);
  } finally {
    await client.end();
  }
}
