// What the benchmark runs against, read from the server: versions, vector extension, Citus and the
// search settings in effect for this role and database (the ones ALTER DATABASE put there).
import type pg from "pg";
import type { VectorExtension } from "../components/spec.ts";
import { variantOfExtension, vectorDialect, type VectorDialect } from "../sql/vector-dialect.ts";

export interface Environment {
  serverVersion: string;
  database: string;
  user: string;
  vectorExtension: { variant: VectorExtension; name: string; version: string };
  citus: { present: boolean; version: string | null; workers: number };
  hnswAccessMethod: string;
  /** Search settings as a new session sees them. */
  settings: Record<string, string | null>;
}

async function showSetting(client: pg.ClientBase, name: string): Promise<string | null> {
  const result = await client.query<{ value: string | null }>("SELECT current_setting($1, true) AS value", [name]);
  return result.rows[0].value;
}

export async function readEnvironment(client: pg.ClientBase): Promise<Environment> {
  const basics = await client.query<{ version: string; database: string; user: string }>(
    "SELECT current_setting('server_version') AS version, current_database() AS database, current_user AS user",
  );
  const extensions = await client.query<{ extname: string; extversion: string }>("SELECT extname, extversion FROM pg_extension");
  const vector = extensions.rows.find((row) => variantOfExtension(row.extname) !== undefined);
  if (!vector) {
    throw new Error("no vector extension (vector or ruvector) in this database: apply the migrations (sql/apply.ts) first");
  }
  const variant = variantOfExtension(vector.extname)!;
  const dialect = vectorDialect(variant);
  const am = await client.query<{ amname: string }>("SELECT amname FROM pg_am WHERE amtype = 'i' AND amname = ANY($1::text[])", [
    dialect.accessMethodCandidates,
  ]);
  const hnswAccessMethod = dialect.accessMethodCandidates.find((name) => am.rows.some((row) => row.amname === name));
  if (!hnswAccessMethod) throw new Error(`no HNSW access method in pg_am (looked for ${dialect.accessMethodCandidates.join(", ")})`);
  const citus = extensions.rows.find((row) => row.extname === "citus");
  let workers = 0;
  if (citus) {
    const nodes = await client.query<{ count: string }>("SELECT count(*) AS count FROM pg_dist_node WHERE groupid > 0 AND noderole = 'primary'");
    workers = Number(nodes.rows[0].count);
  }
  const settings: Record<string, string | null> = {};
  for (const name of [dialect.efSearchSetting, ...Object.keys(dialect.extraSettings)]) settings[name] = await showSetting(client, name);
  return {
    serverVersion: basics.rows[0].version,
    database: basics.rows[0].database,
    user: basics.rows[0].user,
    vectorExtension: { variant, name: vector.extname, version: vector.extversion },
    citus: { present: citus !== undefined, version: citus?.extversion ?? null, workers },
    hnswAccessMethod,
    settings,
  };
}

export function dialectOf(environment: Environment): VectorDialect {
  return vectorDialect(environment.vectorExtension.variant);
}
