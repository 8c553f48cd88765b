// The dashboard's panels as data: titles, units and PromQL. grafana.ts turns them into a Grafana model
// with the foundation SDK; expressions.ts lists their queries for the live-metrics tests.
import { BENCHMARK_METRICS, HAPROXY_PRIMARY_PROXY, JOBS, PGBOUNCER_POOL_USAGE, type MetricSource } from "./metrics.ts";

export interface PanelTarget {
  /** PromQL; may use Grafana's $__rate_interval. */
  expr: string;
  legend: string;
  /** When this query needs another component than the panel's. */
  source?: MetricSource;
}

export interface PanelSpec {
  title: string;
  description: string;
  kind: "timeseries" | "stat";
  /** Grafana unit id. */
  unit: string;
  source: MetricSource;
  targets: PanelTarget[];
  /** Stat panels: text for values (e.g. Patroni roles). */
  valueText?: Record<number, { text: string; color: string }>;
}

export interface PanelOptions {
  /** The nodes run Citus: add the Citus queries and panels. */
  citus: boolean;
}

const rate = (metric: string) => `rate(${metric}[$__rate_interval])`;
const searchQuantile = (q: number) => `histogram_quantile(${q}, sum by (le) (${rate(`${BENCHMARK_METRICS.searchDuration}_bucket`)}))`;
const byNode = "citus_group, member";

export function dashboardPanels(options: PanelOptions): PanelSpec[] {
  const tableSizeTargets: PanelTarget[] = [
    { expr: "max by (citus_group, schemaname, relname) (pg_table_total_bytes)", legend: "group {{citus_group}} {{schemaname}}.{{relname}}" },
  ];
  // Under Citus, workers hide shards from pg_stat_user_tables; the coordinator sums them per table.
  if (options.citus) tableSizeTargets.push({ expr: "max by (table_name) (citus_table_total_bytes)", legend: "{{table_name}} (all shards)", source: "citus" });

  const panels: PanelSpec[] = [
    {
      title: "Vector search latency p95 / p99", kind: "timeseries", unit: "s", source: "benchmark",
      description: "Client-side latency of one vector search, from the benchmark's histogram. Target: p95 under 10 ms.",
      targets: [
        { expr: searchQuantile(0.95), legend: "p95" },
        { expr: searchQuantile(0.99), legend: "p99" },
      ],
    },
    {
      title: "Vector search QPS", kind: "timeseries", unit: "reqps", source: "benchmark",
      description: "Vector searches sent per second by the benchmark.",
      targets: [{ expr: `sum(${rate(BENCHMARK_METRICS.searches)})`, legend: "searches/s" }],
    },
    {
      title: "Vector search error rate", kind: "timeseries", unit: "percentunit", source: "benchmark",
      description: "Share of vector searches that failed.",
      targets: [{ expr: `sum(${rate(BENCHMARK_METRICS.searchErrors)}) / sum(${rate(BENCHMARK_METRICS.searches)})`, legend: "errors" }],
    },
    {
      title: "PostgreSQL connections by state", kind: "timeseries", unit: "short", source: "postgres_exporter",
      description: "Client sessions on each PostgreSQL node, by state.",
      targets: [{ expr: "sum by (member, state) (pg_connections_count)", legend: "{{member}} {{state}}" }],
    },
    {
      title: "PgBouncer pool usage", kind: "timeseries", unit: "percentunit", source: "pgbouncer_exporter",
      description: "Server connections in use over the pool size, per database. Alerts at 80 % and 95 %.",
      targets: [{
        expr: PGBOUNCER_POOL_USAGE,
        legend: "{{database}}",
      }],
    },
    {
      title: "Cache hit ratio", kind: "timeseries", unit: "percentunit", source: "postgres_exporter",
      description: "Block reads of the application database served from shared buffers. Alerts below 90 % and 75 %.",
      targets: [{
        expr: `sum by (${byNode}) (${rate("pg_cache_hit_blocks")}) / (sum by (${byNode}) (${rate("pg_cache_hit_blocks")}) + sum by (${byNode}) (${rate("pg_cache_read_blocks")}))`,
        legend: "{{member}}",
      }],
    },
    {
      title: "Replication lag", kind: "timeseries", unit: "s", source: "postgres_exporter",
      description: "Seconds each replica's replay is behind its primary (0 on primaries). Alerts above 5 s and 10 s.",
      targets: [{ expr: `max by (${byNode}) (pg_replication_lag_seconds)`, legend: "{{member}}" }],
    },
    {
      title: "Table sizes", kind: "timeseries", unit: "bytes", source: "postgres_exporter",
      description: "Size of each table with its indexes, per Citus group.",
      targets: tableSizeTargets,
    },
    {
      title: "Row counts", kind: "timeseries", unit: "short", source: "postgres_exporter",
      description: "Estimated live rows of each table (planner statistics), per Citus group.",
      targets: [{ expr: "max by (citus_group, schemaname, relname) (pg_table_rows)", legend: "group {{citus_group}} {{schemaname}}.{{relname}}" }],
    },
    {
      title: "Index sizes", kind: "timeseries", unit: "bytes", source: "postgres_exporter",
      description: "Size of each index, per Citus group.",
      targets: [{ expr: "max by (citus_group, indexrelname, method) (pg_index_bytes)", legend: "group {{citus_group}} {{indexrelname}} ({{method}})" }],
    },
    {
      title: "Vector index sizes", kind: "timeseries", unit: "bytes", source: "postgres_exporter",
      description: "Size of each HNSW / IVF index, per Citus group.",
      targets: [{ expr: "max by (citus_group, indexrelname, method) (pg_vector_index_bytes)", legend: "group {{citus_group}} {{indexrelname}} ({{method}})" }],
    },
    {
      title: "Patroni roles per group", kind: "stat", unit: "none", source: "patroni",
      description: "The role Patroni reports for each member of each Citus group.",
      targets: [{ expr: `max by (${byNode}) (patroni_primary * 2 + patroni_replica)`, legend: "group {{citus_group}} {{member}}" }],
      valueText: { 2: { text: "primary", color: "green" }, 1: { text: "replica", color: "blue" }, 0: { text: "not running", color: "red" } },
    },
    {
      title: "etcd leader seen", kind: "stat", unit: "none", source: "etcd",
      description: "Whether each etcd member sees a leader (Patroni needs a DCS with a leader).",
      targets: [{ expr: "max by (member) (etcd_server_has_leader)", legend: "{{member}}" }],
      valueText: { 1: { text: "leader", color: "green" }, 0: { text: "no leader", color: "red" } },
    },
    {
      title: "HAProxy servers up per backend", kind: "stat", unit: "none", source: "haproxy",
      description: `Servers passing Patroni's health check: exactly 1 in ${HAPROXY_PRIMARY_PROXY}, the replicas in the other.`,
      targets: [{ expr: `max by (proxy) (haproxy_backend_active_servers{job="${JOBS.haproxy}", proxy=~"coordinator_.*"})`, legend: "{{proxy}}" }],
    },
  ];
  if (options.citus) {
    panels.push({
      title: "Citus shard placements per worker", kind: "stat", unit: "none", source: "citus",
      description: "Shard placements each worker holds, from the Citus metadata.",
      targets: [{ expr: "max by (worker) (citus_placement_shards)", legend: "{{worker}}" }],
    });
  }
  return panels;
}
