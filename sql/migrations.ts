// The schema as ordered, idempotent migrations, rendered from the cluster configuration. Pure: the
// same config and context always give the same SQL and checksums. The runner (apply.ts) supplies the
// context it reads from the catalog: whether Citus is installed and the HNSW access method's name.
import { createHash } from "node:crypto";
import type { ClusterConfig } from "../components/spec.ts";
import { ROLES } from "../components/render/types.ts";
import { POOLER_LOOKUP_FUNCTION } from "../components/render/pgbouncer.ts";
import { searchFunctionStatements } from "./search-plan.ts";
import { vectorDialect } from "./vector-dialect.ts";

/** What the renderer needs from the target database. */
export interface MigrationContext {
  /** The citus extension exists in the database: distribute tables. */
  citus: boolean;
  /** HNSW access method name found in pg_am (pgvector: hnsw; RuVector: ruhnsw or hnsw). */
  hnswAccessMethod: string;
}

export interface Migration {
  /** Ordered id, also the file name stem: 001_extensions. */
  id: string;
  /** Repeatable migrations (settings, grants, distribution) run again when their SQL changes. */
  repeatable: boolean;
  /**
   * The statements, each sent to the server as a query of its own: Citus propagates the source text
   * of some DDL (CREATE INDEX on a distributed table) to the workers as it was received, so a
   * statement must never share its query string with another (Citus 13 commands/index.c).
   */
  statements: string[];
  /** A header comment and the statements: what is checksummed and what `npm run render` writes. */
  sql: string;
  /** sha256 of the SQL, recorded when applied. */
  checksum: string;
}

/** Schema of the application tables. */
export const APP_SCHEMA = "claude_flow";
/** Scratch schema where the benchmark suite creates its own tables. */
export const BENCHMARK_SCHEMA = "benchmark";
/** Tables distributed on namespace; the first is the colocation anchor. */
export const DISTRIBUTED_TABLES = ["memory_entries", "patterns", "trajectories", "graph_nodes", "graph_edges"];
/** Small tables copied to every worker. */
export const REFERENCE_TABLES = ["metadata", "vector_indexes", "sessions"];
/** Tables with an embedding column and an HNSW index on it. */
export const EMBEDDING_TABLES = ["memory_entries", "patterns", "trajectories", "graph_nodes"];

export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

export function quoteLiteral(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

function checksumOf(sql: string): string {
  return createHash("sha256").update(sql).digest("hex");
}

/** A migration's body: a comment for people, then statements run one query each. */
interface Body {
  comment: string;
  statements: string[];
}

function extensions(config: ClusterConfig): Body {
  const dialect = vectorDialect(config.vectorExtension);
  return {
    comment: `The vector extension (${config.vectorExtension}). pgvector and RuVector both create an HNSW access method and must never share a database.`,
    statements: [
      `DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = ${quoteLiteral(dialect.conflictingExtensionName)}) THEN
    RAISE EXCEPTION 'extension % is installed; it cannot share a database with %', ${quoteLiteral(dialect.conflictingExtensionName)}, ${quoteLiteral(dialect.extensionName)};
  END IF;
END
$$;`,
      `CREATE EXTENSION IF NOT EXISTS ${quoteIdent(dialect.extensionName)};`,
    ],
  };
}

function schemas(): Body {
  const app = quoteIdent(ROLES.app);
  return {
    comment: "Schemas: public (exists) and the application schema; a scratch schema for the benchmark suite.",
    statements: [
      `CREATE SCHEMA IF NOT EXISTS ${APP_SCHEMA};`,
      `CREATE SCHEMA IF NOT EXISTS ${BENCHMARK_SCHEMA};`,
      `GRANT USAGE, CREATE ON SCHEMA ${BENCHMARK_SCHEMA} TO ${app};`,
    ],
  };
}

function tables(config: ClusterConfig): Body {
  const embedding = vectorDialect(config.vectorExtension).columnType(config.embeddingDimensions);
  const s = APP_SCHEMA;
  // Every primary key starts with namespace: under Citus a unique key must hold the distribution column.
  return {
    comment:
      "Tables distributed on namespace (memory_entries, patterns, trajectories, graph_nodes, graph_edges) and reference tables (metadata, vector_indexes, sessions).",
    statements: [
      `CREATE TABLE IF NOT EXISTS ${s}.memory_entries (
  namespace text NOT NULL,
  key text NOT NULL,
  content text NOT NULL,
  embedding ${embedding},
  metadata jsonb NOT NULL DEFAULT '{}',
  access_count integer NOT NULL DEFAULT 0,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (namespace, key)
);`,
      `CREATE TABLE IF NOT EXISTS ${s}.patterns (
  namespace text NOT NULL,
  id uuid NOT NULL DEFAULT gen_random_uuid(),
  pattern_type text NOT NULL,
  description text NOT NULL DEFAULT '',
  embedding ${embedding},
  confidence real NOT NULL DEFAULT 0,
  usage_count integer NOT NULL DEFAULT 0,
  metadata jsonb NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (namespace, id)
);`,
      `CREATE TABLE IF NOT EXISTS ${s}.trajectories (
  namespace text NOT NULL,
  id uuid NOT NULL DEFAULT gen_random_uuid(),
  session_id text,
  steps jsonb NOT NULL DEFAULT '[]',
  outcome text,
  reward real,
  embedding ${embedding},
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (namespace, id)
);`,
      `CREATE TABLE IF NOT EXISTS ${s}.graph_nodes (
  namespace text NOT NULL,
  id uuid NOT NULL DEFAULT gen_random_uuid(),
  label text NOT NULL,
  properties jsonb NOT NULL DEFAULT '{}',
  embedding ${embedding},
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (namespace, id)
);`,
      `CREATE TABLE IF NOT EXISTS ${s}.graph_edges (
  namespace text NOT NULL,
  id uuid NOT NULL DEFAULT gen_random_uuid(),
  source_id uuid NOT NULL,
  target_id uuid NOT NULL,
  relation text NOT NULL,
  weight real NOT NULL DEFAULT 1,
  properties jsonb NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (namespace, id),
  FOREIGN KEY (namespace, source_id) REFERENCES ${s}.graph_nodes (namespace, id) ON DELETE CASCADE,
  FOREIGN KEY (namespace, target_id) REFERENCES ${s}.graph_nodes (namespace, id) ON DELETE CASCADE
);`,
      `CREATE TABLE IF NOT EXISTS ${s}.metadata (
  key text PRIMARY KEY,
  value jsonb NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);`,
      `CREATE TABLE IF NOT EXISTS ${s}.vector_indexes (
  name text PRIMARY KEY,
  table_name text NOT NULL,
  column_name text NOT NULL,
  dimensions integer NOT NULL,
  metric text NOT NULL,
  access_method text NOT NULL,
  m integer NOT NULL,
  ef_construction integer NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);`,
      `CREATE TABLE IF NOT EXISTS ${s}.sessions (
  id text PRIMARY KEY,
  namespace text,
  state jsonb NOT NULL DEFAULT '{}',
  started_at timestamptz NOT NULL DEFAULT now(),
  ended_at timestamptz,
  updated_at timestamptz NOT NULL DEFAULT now()
);`,
    ],
  };
}

/** Active primaries of worker groups in pg_dist_node (group 0 is the coordinator). */
export const REGISTERED_WORKER_GROUPS_SQL =
  "SELECT DISTINCT groupid FROM pg_dist_node WHERE groupid > 0 AND noderole = 'primary' AND isactive ORDER BY groupid";

function distribution(config: ClusterConfig, context: MigrationContext): Body {
  if (!context.citus) {
    return {
      comment: "citus extension absent: tables are local, not distributed. Repeatable: once Citus is installed the next apply distributes the tables.",
      statements: ["SELECT 'citus extension absent: tables are local, not distributed' AS note;"],
    };
  }
  const [anchor, ...colocated] = DISTRIBUTED_TABLES;
  const notYetDistributed = (table: string) =>
    `WHERE NOT EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = ${quoteLiteral(`${APP_SCHEMA}.${table}`)}::regclass)`;
  // Shards go to the workers registered at the time of the call: with a group missing, they would
  // land on a subset for good. The runner waits for every group; this guard makes the SQL safe alone.
  const guard = `DO $$
BEGIN
  IF (SELECT count(*) FROM (${REGISTERED_WORKER_GROUPS_SQL}) AS registered) < ${config.workerGroups} THEN
    RAISE EXCEPTION 'pg_dist_node lists fewer worker groups than the ${config.workerGroups} configured: not distributing';
  END IF;
END
$$;`;
  return {
    comment: `Citus: ${DISTRIBUTED_TABLES.length} tables distributed on namespace in ${config.shardCount} shards, colocated with ${anchor}; reference tables on every worker. The WHERE clauses make each call happen once.`,
    statements: [
      guard,
      // shard_count requires colocate_with => 'none': the anchor gets the count, the rest follow it.
      `SELECT create_distributed_table(${quoteLiteral(`${APP_SCHEMA}.${anchor}`)}, 'namespace', shard_count => ${config.shardCount}, colocate_with => 'none')\n  ${notYetDistributed(anchor)};`,
      ...colocated.map(
        (table) =>
          `SELECT create_distributed_table(${quoteLiteral(`${APP_SCHEMA}.${table}`)}, 'namespace', colocate_with => ${quoteLiteral(`${APP_SCHEMA}.${anchor}`)})\n  ${notYetDistributed(table)};`,
      ),
      ...REFERENCE_TABLES.map((table) => `SELECT create_reference_table(${quoteLiteral(`${APP_SCHEMA}.${table}`)})\n  ${notYetDistributed(table)};`),
    ],
  };
}

/** Index name for a table's embedding index, shared with the benchmark's plan check. */
export function hnswIndexName(table: string): string {
  return `${table}_embedding_hnsw_idx`;
}

function indexes(config: ClusterConfig, context: MigrationContext): Body {
  const dialect = vectorDialect(config.vectorExtension);
  const method = quoteIdent(context.hnswAccessMethod);
  const record = EMBEDDING_TABLES.map(
    (table) =>
      `(${quoteLiteral(hnswIndexName(table))}, ${quoteLiteral(`${APP_SCHEMA}.${table}`)}, 'embedding', ${config.embeddingDimensions}, 'cosine', ${quoteLiteral(context.hnswAccessMethod)}, ${config.hnswM}, ${config.hnswEfConstruction})`,
  );
  return {
    comment: `HNSW indexes (cosine) with m = ${config.hnswM}, ef_construction = ${config.hnswEfConstruction}; on a distributed table Citus builds the index on every shard.`,
    statements: [
      ...EMBEDDING_TABLES.map(
        (table) =>
          `CREATE INDEX IF NOT EXISTS ${hnswIndexName(table)} ON ${APP_SCHEMA}.${table}\n  USING ${method} (embedding ${dialect.cosineOpclass}) WITH (m = ${config.hnswM}, ef_construction = ${config.hnswEfConstruction});`,
      ),
      `INSERT INTO ${APP_SCHEMA}.vector_indexes (name, table_name, column_name, dimensions, metric, access_method, m, ef_construction)
VALUES
  ${record.join(",\n  ")}
ON CONFLICT (name) DO NOTHING;`,
    ],
  };
}

/** Database-level search settings (name -> value) the configuration renders. */
export function searchSettingValues(config: ClusterConfig, context: MigrationContext): Record<string, string> {
  const dialect = vectorDialect(config.vectorExtension);
  return {
    [dialect.efSearchSetting]: String(config.hnswEfSearch),
    ...dialect.extraSettings,
    // SET LOCAL in a transaction block reaches the shards' sessions too (Citus docs: citus.propagate_set_commands).
    ...(context.citus ? { "citus.propagate_set_commands": "local" } : {}),
  };
}

function searchSettings(config: ClusterConfig, context: MigrationContext): Body {
  const statements = Object.entries(searchSettingValues(config, context)).map(
    ([name, value]) => `ALTER DATABASE ${quoteIdent(config.database)} SET ${name} = ${quoteLiteral(value)};`,
  );
  if (!context.citus) {
    return { comment: "Search settings at database level, for every new session.", statements };
  }
  // Citus 13.0 does not propagate ALTER DATABASE for a database it did not create: run it on each
  // worker too. It is written to the catalog, so a worker's standbys (its future primaries) have it.
  const onWorkers = statements
    .filter((statement) => !statement.includes("citus."))
    .map(
      (statement) => `  IF EXISTS (SELECT 1 FROM run_command_on_workers(${quoteLiteral(statement)}) WHERE NOT success) THEN
    RAISE EXCEPTION 'a worker refused: %', ${quoteLiteral(statement)};
  END IF;`,
    );
  return {
    comment: "Search settings at database level on the coordinator and every worker: a session SET would not reach the shards.",
    statements: [...statements, `DO $$\nBEGIN\n${onWorkers.join("\n")}\nEND\n$$;`],
  };
}

function grants(): Body {
  const app = quoteIdent(ROLES.app);
  return {
    comment: "The application role (created by Patroni's post-bootstrap script): use and change data, not the schema.",
    statements: [
      `GRANT USAGE ON SCHEMA public, ${APP_SCHEMA} TO ${app};`,
      `GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ${APP_SCHEMA} TO ${app};`,
      `GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA ${APP_SCHEMA} TO ${app};`,
      `ALTER DEFAULT PRIVILEGES IN SCHEMA ${APP_SCHEMA} GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO ${app};`,
      `ALTER DEFAULT PRIVILEGES IN SCHEMA ${APP_SCHEMA} GRANT USAGE, SELECT ON SEQUENCES TO ${app};`,
    ],
  };
}

function monitoringRole(): Body {
  const role = quoteIdent(ROLES.monitor);
  return {
    comment: "The exporters' role: statistics through pg_monitor, no application data (its password is set by the apply step, never in this text).",
    statements: [
      `DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = ${quoteLiteral(ROLES.monitor)}) THEN CREATE ROLE ${role} LOGIN; END IF; END$$;`,
      `GRANT pg_monitor TO ${role};`,
      // Citus' table sizes resolve each shard's name on the workers: the schema, not its tables.
      `GRANT USAGE ON SCHEMA ${APP_SCHEMA} TO ${role};`,
    ],
  };
}

/**
 * PgBouncer's credential lookup (components/render/pgbouncer.ts POOLER_AUTH_QUERY): a SECURITY DEFINER
 * function in a schema of its own, EXECUTE granted to the lookup role alone, returning a login role's
 * SCRAM verifier (NULL once VALID UNTIL passed, as PgBouncer 1.24.1's own example does since
 * CVE-2025-2291) and no row for superusers, replication and BYPASSRLS roles or the lookup role itself:
 * those never log in through PgBouncer. No row makes PgBouncer answer "no such user" (client.c
 * handle_auth_query_response), where a row of NULLs would cost it the lookup's server connection.
 * Under Citus only the coordinator gets these objects (propagation off in this transaction): every
 * PgBouncer server connection, the lookup's included, lands on the coordinator primary through
 * HAProxy, and its standbys get them by streaming.
 */
function poolerLookup(context: MigrationContext): Body {
  const role = quoteIdent(ROLES.poolerLookup);
  const [schema, name] = POOLER_LOOKUP_FUNCTION.split(".");
  const fn = `${quoteIdent(schema)}.${quoteIdent(name)}(text)`;
  return {
    comment: "PgBouncer's auth_query: a login role's SCRAM verifier for the lookup role alone (its password is set by the apply step, never in this text).",
    statements: [
      ...(context.citus ? ["SET LOCAL citus.enable_ddl_propagation TO off;", "SET LOCAL citus.enable_create_role_propagation TO off;"] : []),
      `DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = ${quoteLiteral(ROLES.poolerLookup)}) THEN CREATE ROLE ${role} LOGIN; END IF; END$$;`,
      `ALTER ROLE ${role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS NOINHERIT;`,
      `CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)};`,
      `REVOKE ALL ON SCHEMA ${quoteIdent(schema)} FROM PUBLIC;`,
      `GRANT USAGE ON SCHEMA ${quoteIdent(schema)} TO ${role};`,
      `CREATE OR REPLACE FUNCTION ${quoteIdent(schema)}.${quoteIdent(name)}(i_username text) RETURNS TABLE (uname text, phash text)
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
    SELECT a.rolname::text, CASE WHEN a.rolvaliduntil < now() THEN NULL ELSE a.rolpassword END
    FROM pg_catalog.pg_authid a
    WHERE a.rolname = i_username AND a.rolcanlogin AND NOT a.rolsuper AND NOT a.rolreplication AND NOT a.rolbypassrls
      AND a.rolname <> ${quoteLiteral(ROLES.poolerLookup)}
  $fn$;`,
      `REVOKE ALL ON FUNCTION ${fn} FROM PUBLIC;`,
      `GRANT EXECUTE ON FUNCTION ${fn} TO ${role};`,
    ],
  };
}

/** Name of the check that refuses an embedding the HNSW index cannot place. */
export function embeddingCheckName(table: string): string {
  return `${table}_embedding_searchable`;
}

function embeddingChecks(config: ClusterConfig): Body {
  const dialect = vectorDialect(config.vectorExtension);
  // A NULL embedding is not in the index, and a zero vector has no cosine distance to anything: both
  // would be rows that search can never return. Refused at write time instead.
  return {
    comment: "Every row is findable by search: embeddings that are NULL or all zeros (no cosine distance) are refused.",
    statements: EMBEDDING_TABLES.map(
      (table) =>
        `ALTER TABLE ${APP_SCHEMA}.${table} ADD CONSTRAINT ${embeddingCheckName(table)}\n  CHECK (embedding IS NOT NULL AND ${dialect.nonZero("embedding")});`,
    ),
  };
}

/** The function applications call for top-k search in a namespace (see sql/search-plan.ts). */
export const SEARCH_FUNCTION = `${APP_SCHEMA}.search_memory`;

function searchFunction(config: ClusterConfig, context: MigrationContext): Body {
  return {
    comment:
      `${SEARCH_FUNCTION}(namespace | namespaces[], query, k): exact search when the namespaces hold at most ${config.searchExactMaxRows} rows, ` +
      "else HNSW with a relaxed iterative scan and a re-sort; always k rows when they exist." +
      (context.citus ? " The single-namespace form is distributed on its namespace: the call runs on the worker holding it." : ""),
    statements: searchFunctionStatements({
      name: SEARCH_FUNCTION,
      table: `${APP_SCHEMA}.memory_entries`,
      columns: [["key", "text"], ["content", "text"], ["metadata", "jsonb"]],
      dialect: vectorDialect(config.vectorExtension),
      dimensions: config.embeddingDimensions,
      efSearch: config.hnswEfSearch,
      exactMaxRows: config.searchExactMaxRows,
      citus: context.citus,
    }),
  };
}

function migration(id: string, repeatable: boolean, body: Body): Migration {
  const sql = [`-- ${body.comment}`, ...body.statements].join("\n") + "\n";
  return { id, repeatable, statements: body.statements, sql, checksum: checksumOf(sql) };
}

/** Every migration, in the order they apply. */
export function renderMigrations(config: ClusterConfig, context: MigrationContext): Migration[] {
  return [
    migration("001_extensions", false, extensions(config)),
    migration("002_schemas", false, schemas()),
    migration("003_tables", false, tables(config)),
    migration("004_distribution", true, distribution(config, context)),
    migration("005_indexes", false, indexes(config, context)),
    migration("006_search_settings", true, searchSettings(config, context)),
    migration("007_grants", true, grants()),
    migration("008_embedding_checks", false, embeddingChecks(config)),
    // Repeatable: CREATE OR REPLACE, and create_distributed_function is a no-op the second time.
    migration("009_search_function", true, searchFunction(config, context)),
    // Repeatable: CREATE only when absent, GRANTs idempotent.
    migration("010_monitoring_role", true, monitoringRole()),
    // Repeatable: CREATE only when absent, CREATE OR REPLACE, GRANTs idempotent.
    migration("011_pooler_lookup", true, poolerLookup(context)),
  ];
}

/** The version a database is at once every migration has applied: the last id. */
export function latestVersion(migrations: Migration[]): string {
  return migrations[migrations.length - 1].id;
}
