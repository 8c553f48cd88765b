// Names shared by the scrape config, the alerts, the dashboards and the benchmark: one place, so a
// renamed job or metric cannot silently leave an alert or a panel without data.

/** Where each exporter listens (their own defaults), beside PORTS of the cluster's processes. */
export const EXPORTER_PORTS = {
  /** prometheus-postgres-exporter, one beside every PostgreSQL node. */
  postgresExporter: 9187,
  /** prometheus-pgbouncer-exporter, beside PgBouncer. */
  pgbouncerExporter: 9127,
} as const;

/** Scrape job names; alerts select on them (`up{job=...}`). */
export const JOBS = {
  postgres: "postgres_exporter",
  patroni: "patroni",
  pgbouncer: "pgbouncer_exporter",
  haproxy: "haproxy",
  etcd: "etcd",
  benchmark: "benchmark",
} as const;

/** The component a PromQL expression needs data from: a missing one explains an empty result. */
export type MetricSource = "postgres_exporter" | "patroni" | "pgbouncer_exporter" | "etcd" | "haproxy" | "benchmark" | "citus";

/**
 * Metrics the benchmark exposes with prom-client on its own /metrics endpoint (scrape job
 * `benchmark`). `queries` counts every search, failed or not; `errors` counts the failed ones.
 */
export const BENCHMARK_METRICS = {
  /** Histogram, seconds, one observation per vector search (client-side round trip). */
  searchDuration: "vector_search_duration_seconds",
  /** Counter of vector searches sent. */
  searches: "vector_search_queries_total",
  /** Counter of vector searches that failed. */
  searchErrors: "vector_search_errors_total",
  /** Gauge: recall@k of the latest measured run, 0..1. */
  recall: "vector_search_recall",
} as const;

/**
 * Histogram buckets (seconds) the benchmark must use. The alert thresholds (10 ms, 50 ms) are bucket
 * bounds, so "p95 > 10 ms" is exact: it holds iff more than 5 % of searches took longer than 10 ms.
 */
export const SEARCH_DURATION_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 2.5];

/** Access methods of vector indexes: pgvector's hnsw/ivfflat, RuVector's ruhnsw/ruivfflat. */
export const VECTOR_INDEX_METHODS = ["hnsw", "ivfflat", "ruhnsw", "ruivfflat"];

/** HAProxy's read-write listener: its backend must have exactly one server up, the primary. */
export const HAPROXY_PRIMARY_PROXY = "coordinator_primary";

/** PgBouncer pool usage: server connections in use over the pool size, per database (admin console excluded). */
export const PGBOUNCER_POOL_USAGE =
  'max by (database) (sum by (database) (pgbouncer_pools_server_active_connections{database!="pgbouncer"}) / on (database) max by (database) (pgbouncer_databases_pool_size))';
