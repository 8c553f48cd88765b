// postgres_exporter custom queries (--extend.query-path, the queries.yaml format of 0.11). Each query
// becomes metrics named <query>_<column>; LABEL columns become labels.
//
// Citus: a query naming pg_dist_* fails at parse time where Citus is absent, and postgres_exporter
// then logs an error and sets pg_exporter_last_scrape_error on every scrape, which would hide real
// failures. No plain SQL can guard a missing table, so the Citus queries are a separate set.
//
// Citus hides shard tables from pg_class (so from pg_stat_user_tables) in sessions whose
// application_name it was not told about: the exporter connects as EXPORTER_APPLICATION_NAME, which
// the rendered PostgreSQL parameters list in citus.show_shards_for_app_name_prefixes.
import { stringify } from "yaml";
import { VECTOR_INDEX_METHODS } from "./metrics.ts";

export type ColumnUsage = "LABEL" | "GAUGE" | "COUNTER" | "DISCARD";

export interface ExporterQuery {
  query: string;
  /** Columns in result order, each with its usage and a description. */
  columns: Array<[name: string, usage: ColumnUsage, description: string]>;
}

/** application_name of postgres_exporter's sessions: Citus shows it the shard tables. */
export const EXPORTER_APPLICATION_NAME = "postgres_exporter";

/** postgres_exporter's DATA_SOURCE_URI (host:port/database?options) for one PostgreSQL node. */
export function exporterDataSourceUri(host: string, port: number, database: string, caFile?: string): string {
  // With the cluster CA: TLS, the node verified by CA and name (pg_hba admits TCP over TLS only).
  const ssl = caFile ? `sslmode=verify-full&sslrootcert=${encodeURIComponent(caFile)}` : "sslmode=disable";
  return `${host}:${port}/${database}?${ssl}&application_name=${EXPORTER_APPLICATION_NAME}`;
}

const vectorMethods = VECTOR_INDEX_METHODS.map((m) => `'${m}'`).join(", ");

/** Queries valid on every PostgreSQL node, primary or replica, with or without Citus. */
export const POSTGRES_QUERIES: Record<string, ExporterQuery> = {
  // Counters, not a ratio: a ratio since the last stats reset barely moves after days of uptime;
  // PromQL takes the ratio of rates instead, which shows the present.
  pg_cache: {
    query: "SELECT blks_hit AS hit_blocks, blks_read AS read_blocks FROM pg_stat_database WHERE datname = current_database()",
    columns: [
      ["hit_blocks", "COUNTER", "Blocks of the application database found in shared buffers"],
      ["read_blocks", "COUNTER", "Blocks of the application database read from the OS (cache misses)"],
    ],
  },
  // A caught-up replica reports 0 even when the primary is idle (the replay timestamp then ages
  // without any lag); a replica that lost its stream is caught by `streaming`, not by the lag.
  pg_replication: {
    query: `SELECT
  CASE WHEN NOT pg_is_in_recovery() THEN 0
       WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
       ELSE GREATEST(0, EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())) END AS lag_seconds,
  CASE WHEN pg_is_in_recovery() THEN 1 ELSE 0 END AS is_replica,
  CASE WHEN NOT pg_is_in_recovery() THEN 1
       ELSE (SELECT count(*) FROM pg_stat_wal_receiver WHERE status = 'streaming') END AS streaming`,
    columns: [
      ["lag_seconds", "GAUGE", "Seconds the replica's replay is behind the primary (0 on the primary and on caught-up replicas)"],
      ["is_replica", "GAUGE", "1 on a replica (in recovery), 0 on the primary"],
      ["streaming", "GAUGE", "1 on the primary and on a replica whose WAL receiver is streaming, 0 otherwise"],
    ],
  },
  // n_live_tup is the planner's estimate: exact counts would scan every table on every scrape.
  pg_table: {
    query: `SELECT schemaname, relname,
  n_live_tup AS rows, n_dead_tup AS dead_rows,
  pg_table_size(relid) AS data_bytes, pg_indexes_size(relid) AS index_bytes, pg_total_relation_size(relid) AS total_bytes
FROM pg_stat_user_tables`,
    columns: [
      ["schemaname", "LABEL", "Schema"],
      ["relname", "LABEL", "Table"],
      ["rows", "GAUGE", "Estimated live rows"],
      ["dead_rows", "GAUGE", "Estimated dead rows awaiting vacuum"],
      ["data_bytes", "GAUGE", "Table size without indexes (heap, TOAST, free space and visibility maps)"],
      ["index_bytes", "GAUGE", "Size of all indexes of the table"],
      ["total_bytes", "GAUGE", "Table size including indexes"],
    ],
  },
  pg_index: {
    query: `SELECT s.schemaname, s.relname, s.indexrelname, am.amname AS method,
  pg_relation_size(s.indexrelid) AS bytes, s.idx_scan AS scans
FROM pg_stat_user_indexes s JOIN pg_class c ON c.oid = s.indexrelid JOIN pg_am am ON am.oid = c.relam`,
    columns: [
      ["schemaname", "LABEL", "Schema"],
      ["relname", "LABEL", "Table"],
      ["indexrelname", "LABEL", "Index"],
      ["method", "LABEL", "Access method (btree, hnsw, ...)"],
      ["bytes", "GAUGE", "Index size"],
      ["scans", "COUNTER", "Index scans started"],
    ],
  },
  pg_vector_index: {
    query: `SELECT s.schemaname, s.relname, s.indexrelname, am.amname AS method, pg_relation_size(s.indexrelid) AS bytes
FROM pg_stat_user_indexes s JOIN pg_class c ON c.oid = s.indexrelid JOIN pg_am am ON am.oid = c.relam
WHERE am.amname IN (${vectorMethods})`,
    columns: [
      ["schemaname", "LABEL", "Schema"],
      ["relname", "LABEL", "Table"],
      ["indexrelname", "LABEL", "Index"],
      ["method", "LABEL", "Vector access method (hnsw, ivfflat, ruhnsw, ruivfflat)"],
      ["bytes", "GAUGE", "Vector index size"],
    ],
  },
  // Replaces postgres_exporter's own default query of this name (a query file entry of the same
  // name overrides it, keeping the metric names): 0.11's (Debian 12, the local cluster) calls
  // pg_current_wal_lsn() on standbys too, where it fails ("recovery is in progress") whenever
  // Patroni keeps slots there, i.e. on every replica, and so sets pg_exporter_last_scrape_error on
  // every scrape. 0.17 (the image) measures a standby's slots from the received position, as here.
  pg_replication_slots: {
    query: `SELECT slot_name, database, active,
  pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn() ELSE pg_current_wal_lsn() END, restart_lsn) AS pg_wal_lsn_diff
FROM pg_replication_slots`,
    columns: [
      ["slot_name", "LABEL", "Name of the replication slot"],
      ["database", "LABEL", "Database of a logical slot (empty for a physical one)"],
      ["active", "GAUGE", "1 while a consumer is attached to the slot"],
      ["pg_wal_lsn_diff", "GAUGE", "Bytes of WAL the slot holds back: from its restart position to the current (primary) or received (standby) one"],
    ],
  },
  // Client sessions only: background workers and WAL senders would blur the pool picture.
  pg_connections: {
    query: `SELECT COALESCE(state, 'unknown') AS state, count(*) AS count
FROM pg_stat_activity WHERE backend_type = 'client backend' GROUP BY 1`,
    columns: [
      ["state", "LABEL", "Session state (active, idle, idle in transaction, ...)"],
      ["count", "GAUGE", "Client sessions in this state"],
    ],
  },
};

/** Queries that need the Citus metadata tables: rendered only where Citus is installed. */
export const CITUS_QUERIES: Record<string, ExporterQuery> = {
  // Every Citus node holds the metadata, so every node reports the same counts: dashboards take max.
  // Only shards of distributed (hash) tables count: a reference table has a placement on every
  // worker, so counting it would make a worker without any distributed shard look busy.
  citus_placement: {
    query: `SELECT n.nodename AS worker, n.groupid::text AS citus_groupid, count(d.shardid) AS shards
FROM pg_dist_node n
LEFT JOIN (SELECT p.groupid, p.shardid FROM pg_dist_placement p JOIN pg_dist_shard s USING (shardid)
           JOIN pg_dist_partition t ON t.logicalrelid = s.logicalrelid AND t.partmethod = 'h') d ON d.groupid = n.groupid
WHERE n.noderole = 'primary' AND n.isactive AND n.groupid <> 0
GROUP BY n.nodename, n.groupid`,
    columns: [
      ["worker", "LABEL", "Worker node as registered in pg_dist_node"],
      ["citus_groupid", "LABEL", "Citus group id of the worker"],
      ["shards", "GAUGE", "Shard placements of distributed (hash) tables on the worker; reference tables not counted"],
    ],
  },
  // Shards are hidden from pg_stat_user_tables on workers, so distributed table sizes come from the
  // coordinator primary, which asks the workers (only there, to ask once per scrape).
  citus_table: {
    query: `SELECT p.logicalrelid::regclass::text AS table_name, citus_total_relation_size(p.logicalrelid) AS total_bytes
FROM pg_dist_partition p CROSS JOIN pg_dist_local_group g
WHERE g.groupid = 0 AND NOT pg_is_in_recovery()`,
    columns: [
      ["table_name", "LABEL", "Distributed or reference table"],
      ["total_bytes", "GAUGE", "Size of the table across all its shards, with indexes"],
    ],
  },
};

export interface ExporterQueryOptions {
  /** The nodes run Citus: add the Citus queries. */
  citus: boolean;
}

export function exporterQueries(options: ExporterQueryOptions): Record<string, ExporterQuery> {
  return options.citus ? { ...POSTGRES_QUERIES, ...CITUS_QUERIES } : { ...POSTGRES_QUERIES };
}

/** The queries.yaml text for postgres_exporter's --extend.query-path. */
export function renderExporterQueries(options: ExporterQueryOptions): string {
  const document: Record<string, unknown> = {};
  for (const [name, { query, columns }] of Object.entries(exporterQueries(options))) {
    document[name] = {
      query,
      // master: run against the database of the connection string only, never on every database.
      master: true,
      metrics: columns.map(([column, usage, description]) => ({ [column]: { usage, description } })),
    };
  }
  return "# Rendered by distributed-postgres-cluster; do not edit.\n" + stringify(document, { lineWidth: 0 });
}
