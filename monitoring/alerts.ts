// Alert rules as data. Each alert is a measured quantity (`signal`) and the condition that makes it
// alert: the rules file joins them, the live-metrics tests query the bare signal (which must return
// data on a healthy cluster), and the runbook explains each alert under a heading of its name.
import { stringify } from "yaml";
import type { ClusterConfig } from "../components/spec.ts";
import { BENCHMARK_METRICS, HAPROXY_PRIMARY_PROXY, JOBS, PGBOUNCER_POOL_USAGE, type MetricSource } from "./metrics.ts";

export type AlertCategory = "latency" | "replication" | "connection_pool" | "cache" | "storage" | "availability" | "business_logic";
export type Severity = "critical" | "warning" | "info";

export const ALERT_CATEGORIES: AlertCategory[] = ["latency", "replication", "connection_pool", "cache", "storage", "availability", "business_logic"];

export interface AlertDefinition {
  name: string;
  category: AlertCategory;
  severity: Severity;
  /** The component whose metrics the signal needs. */
  source: MetricSource;
  /** PromQL of the measured quantity, without the threshold. */
  signal: string;
  /** What makes the signal alert, e.g. "> 5". */
  condition: string;
  /** A further PromQL condition joined with `and` (same labels as the signal), e.g. a minimum traffic. */
  guard?: string;
  /** How long the condition must hold, a Prometheus duration. */
  for: string;
  /** One line; may use {{ $labels.NAME }} of the signal's labels. */
  summary: string;
  description: string;
}

export interface AlertOptions {
  /** The nodes run Citus: add the Citus alerts. */
  citus: boolean;
  /** Disk space one PostgreSQL node's database may use (its volume size), bytes. */
  storageBudgetBytes: number;
  /** Where runbook.md is published; each alert links to `${runbookBaseUrl}#<alert name in lower case>`. */
  runbookBaseUrl: string;
}

export const DEFAULT_ALERT_OPTIONS: AlertOptions = {
  citus: true,
  storageBudgetBytes: 50 * 1024 ** 3,
  runbookBaseUrl: "monitoring/runbook.md",
};

/** The PromQL expression of the rule. Comparison operators bind tighter than `and`. */
export function alertExpr(alert: AlertDefinition): string {
  return `(${alert.signal}) ${alert.condition}` + (alert.guard ? ` and ${alert.guard}` : "");
}

/** GitHub's heading anchor of the alert's runbook entry (`## Name`). */
export function runbookAnchor(alertName: string): string {
  return alertName.toLowerCase();
}

const byNode = "citus_group, member";

// Signals shared by a warning and a critical alert.
const searchP95 = `histogram_quantile(0.95, sum by (le) (rate(${BENCHMARK_METRICS.searchDuration}_bucket[5m])))`;
const searchErrorRatio = `sum(rate(${BENCHMARK_METRICS.searchErrors}[5m])) / sum(rate(${BENCHMARK_METRICS.searches}[5m]))`;
const replicationLag = `max by (${byNode}) (pg_replication_lag_seconds)`;
// PgBouncer metrics by the names of prometheus-community/pgbouncer_exporter (the shipped image, and
// what monitoring/pgbouncer-exporter.ts emits locally). Server connections in use over the pool size.
const poolUsage = PGBOUNCER_POOL_USAGE;
const cacheHitRatio =
  `sum by (${byNode}) (rate(pg_cache_hit_blocks[5m])) / ` +
  `(sum by (${byNode}) (rate(pg_cache_hit_blocks[5m])) + sum by (${byNode}) (rate(pg_cache_read_blocks[5m])))`;
// A member whose Patroni is down counts as 0 instead of vanishing from the sum.
const primariesPerGroup = `sum by (citus_group) (patroni_primary or up{job="${JOBS.patroni}"} * 0)`;

export function alertDefinitions(config: ClusterConfig, options: AlertOptions): AlertDefinition[] {
  const storageUsage = `max by (${byNode}) (pg_database_size_bytes{datname="${config.database}"}) / ${options.storageBudgetBytes}`;
  const budgetGiB = (options.storageBudgetBytes / 1024 ** 3).toFixed(1);
  const etcdQuorum = Math.floor(config.etcdMembers / 2) + 1;
  // A failover takes about ttl + loop_wait: only a leaderless group that outlasts it is an incident.
  const noLeaderFor = `${Math.max(30, 2 * config.patroniTtl)}s`;

  const alerts: AlertDefinition[] = [
    // --- latency: the design target is p95 under 10 ms for one vector search.
    {
      name: "VectorSearchLatencyP95High", category: "latency", severity: "warning", source: "benchmark",
      signal: searchP95, condition: "> 0.01", for: "5m",
      summary: "Vector search p95 latency above 10 ms",
      description: "The 95th percentile of vector search latency measured by the benchmark client has been above the 10 ms target for 5 minutes.",
    },
    {
      name: "VectorSearchLatencyP95Critical", category: "latency", severity: "critical", source: "benchmark",
      signal: searchP95, condition: "> 0.05", for: "5m",
      summary: "Vector search p95 latency above 50 ms",
      description: "The 95th percentile of vector search latency has been above 50 ms, five times the target, for 5 minutes.",
    },
    // --- replication
    {
      name: "PostgreSQLReplicationLagHigh", category: "replication", severity: "warning", source: "postgres_exporter",
      signal: replicationLag, condition: "> 5", for: "1m",
      summary: "Replica {{ $labels.member }} is more than 5 s behind",
      description: "Replica {{ $labels.member }} of Citus group {{ $labels.citus_group }} has replayed WAL more than 5 seconds behind its primary for 1 minute.",
    },
    {
      name: "PostgreSQLReplicationLagCritical", category: "replication", severity: "critical", source: "postgres_exporter",
      signal: replicationLag, condition: "> 10", for: "1m",
      summary: "Replica {{ $labels.member }} is more than 10 s behind",
      description: "Replica {{ $labels.member }} of Citus group {{ $labels.citus_group }} has been more than 10 seconds behind its primary for 1 minute; Patroni will not promote a replica that lags beyond maximum_lag_on_failover.",
    },
    {
      name: "PostgreSQLReplicaNotStreaming", category: "replication", severity: "warning", source: "postgres_exporter",
      signal: `min by (${byNode}) (pg_replication_streaming)`, condition: "== 0", for: "1m",
      summary: "Replica {{ $labels.member }} is not streaming WAL",
      description: "The WAL receiver of replica {{ $labels.member }} (Citus group {{ $labels.citus_group }}) has not been streaming for 1 minute: it falls behind and cannot be a synchronous standby.",
    },
    {
      name: "PatroniGroupDegraded", category: "replication", severity: "warning", source: "patroni",
      // Expected replicas: every configured member but the leader (each has a Patroni target).
      signal: `(count by (citus_group) (up{job="${JOBS.patroni}"}) - 1) - sum by (citus_group) (patroni_replica or up{job="${JOBS.patroni}"} * 0)`,
      condition: "> 0", for: "2m",
      summary: "Citus group {{ $labels.citus_group }} is missing replicas",
      description: "Fewer members of Citus group {{ $labels.citus_group }} run as Patroni replicas than configured for 2 minutes: the group tolerates fewer failures.",
    },
    // --- connection pool
    {
      name: "PgBouncerPoolUsageHigh", category: "connection_pool", severity: "warning", source: "pgbouncer_exporter",
      signal: poolUsage, condition: "> 0.8", for: "2m",
      summary: "PgBouncer pool of {{ $labels.database }} over 80 % in use",
      description: "More than 80 % of the server connections of PgBouncer's pool for database {{ $labels.database }} have been in use for 2 minutes.",
    },
    {
      name: "PgBouncerPoolUsageCritical", category: "connection_pool", severity: "critical", source: "pgbouncer_exporter",
      signal: poolUsage, condition: "> 0.95", for: "1m",
      summary: "PgBouncer pool of {{ $labels.database }} over 95 % in use",
      description: "More than 95 % of the server connections of PgBouncer's pool for database {{ $labels.database }} have been in use for 1 minute: new transactions queue.",
    },
    {
      name: "PgBouncerClientsWaiting", category: "connection_pool", severity: "warning", source: "pgbouncer_exporter",
      signal: 'sum by (database) (pgbouncer_pools_client_waiting_connections{database!="pgbouncer"})', condition: "> 0", for: "2m",
      summary: "Clients waiting for a server connection to {{ $labels.database }}",
      description: "PgBouncer clients of database {{ $labels.database }} have been waiting for a server connection for 2 minutes: the pool is exhausted.",
    },
    {
      name: "PgBouncerClientConnectionsHigh", category: "connection_pool", severity: "warning", source: "pgbouncer_exporter",
      signal: `sum(pgbouncer_used_clients) / ${config.maxClientConnections}`, condition: "> 0.8", for: "5m",
      summary: "PgBouncer client connections over 80 % of max_client_conn",
      description: `PgBouncer has held more than 80 % of its ${config.maxClientConnections} allowed client connections for 5 minutes; beyond the limit it refuses clients.`,
    },
    {
      name: "PostgreSQLConnectionsNearMax", category: "connection_pool", severity: "warning", source: "postgres_exporter",
      signal: `sum by (${byNode}) (pg_connections_count) / max by (${byNode}) (pg_settings_max_connections)`, condition: "> 0.8", for: "5m",
      summary: "{{ $labels.member }} uses over 80 % of max_connections",
      description: "Client sessions on {{ $labels.member }} (Citus group {{ $labels.citus_group }}) have used more than 80 % of max_connections for 5 minutes.",
    },
    // --- cache
    {
      name: "PostgreSQLCacheHitRatioLow", category: "cache", severity: "warning", source: "postgres_exporter",
      signal: cacheHitRatio, condition: "< 0.9", for: "10m",
      guard: `sum by (${byNode}) (rate(pg_cache_hit_blocks[5m]) + rate(pg_cache_read_blocks[5m])) > 1`,
      summary: "Cache hit ratio of {{ $labels.member }} below 90 %",
      description: "Fewer than 90 % of the block reads of the application database on {{ $labels.member }} have been served from shared buffers for 10 minutes.",
    },
    {
      name: "PostgreSQLCacheHitRatioCritical", category: "cache", severity: "critical", source: "postgres_exporter",
      signal: cacheHitRatio, condition: "< 0.75", for: "10m",
      guard: `sum by (${byNode}) (rate(pg_cache_hit_blocks[5m]) + rate(pg_cache_read_blocks[5m])) > 1`,
      summary: "Cache hit ratio of {{ $labels.member }} below 75 %",
      description: "Fewer than 75 % of the block reads of the application database on {{ $labels.member }} have been served from shared buffers for 10 minutes: the working set (HNSW graphs first) does not fit in memory.",
    },
    // --- storage
    {
      name: "PostgreSQLStorageUsageHigh", category: "storage", severity: "warning", source: "postgres_exporter",
      signal: storageUsage, condition: "> 0.8", for: "10m",
      summary: "Database on {{ $labels.member }} over 80 % of its storage budget",
      description: `The application database on {{ $labels.member }} has used more than 80 % of the ${budgetGiB} GiB storage budget for 10 minutes.`,
    },
    {
      name: "PostgreSQLStorageUsageCritical", category: "storage", severity: "critical", source: "postgres_exporter",
      signal: storageUsage, condition: "> 0.95", for: "5m",
      summary: "Database on {{ $labels.member }} over 95 % of its storage budget",
      description: `The application database on {{ $labels.member }} has used more than 95 % of the ${budgetGiB} GiB storage budget for 5 minutes; a full volume stops PostgreSQL.`,
    },
    {
      name: "PostgreSQLDeadRowsHigh", category: "storage", severity: "warning", source: "postgres_exporter",
      signal:
        `sum by (${byNode}, schemaname, relname) (pg_table_dead_rows) / ` +
        `(sum by (${byNode}, schemaname, relname) (pg_table_rows) + sum by (${byNode}, schemaname, relname) (pg_table_dead_rows))`,
      condition: "> 0.2", guard: `sum by (${byNode}, schemaname, relname) (pg_table_dead_rows) > 10000`, for: "30m",
      summary: "Table {{ $labels.schemaname }}.{{ $labels.relname }} on {{ $labels.member }} is over 20 % dead rows",
      description: "More than 20 % (and over 10,000) of the rows of {{ $labels.schemaname }}.{{ $labels.relname }} on {{ $labels.member }} have been dead for 30 minutes: autovacuum is not keeping up, the table and its indexes bloat.",
    },
    {
      name: "EtcdDatabaseQuotaHigh", category: "storage", severity: "warning", source: "etcd",
      signal: "max by (member) (etcd_mvcc_db_total_size_in_bytes / etcd_server_quota_backend_bytes)", condition: "> 0.8", for: "10m",
      summary: "etcd member {{ $labels.member }} database over 80 % of its quota",
      description: "The backend database of etcd member {{ $labels.member }} has been above 80 % of its quota for 10 minutes; at the quota etcd accepts no writes and Patroni cannot renew its leader key.",
    },
    // --- availability
    {
      name: "PostgreSQLDown", category: "availability", severity: "critical", source: "postgres_exporter",
      // pg_up vanishes when the exporter itself is down: then up stands in for it.
      signal: `min by (${byNode}) (pg_up{job="${JOBS.postgres}"} or up{job="${JOBS.postgres}"})`, condition: "== 0", for: "30s",
      summary: "PostgreSQL node {{ $labels.member }} is down",
      description: "PostgreSQL on {{ $labels.member }} (Citus group {{ $labels.citus_group }}) has not answered its exporter for 30 seconds.",
    },
    {
      name: "PatroniDown", category: "availability", severity: "critical", source: "patroni",
      signal: `up{job="${JOBS.patroni}"}`, condition: "== 0", for: "30s",
      summary: "Patroni on {{ $labels.member }} is down",
      description: "The Patroni REST API of {{ $labels.member }} (Citus group {{ $labels.citus_group }}) has not answered for 30 seconds: the node is not managed for failover.",
    },
    {
      name: "PatroniNoLeader", category: "availability", severity: "critical", source: "patroni",
      signal: primariesPerGroup, condition: "< 1", for: noLeaderFor,
      summary: "Citus group {{ $labels.citus_group }} has no primary",
      description: `No member of Citus group {{ $labels.citus_group }} has been primary for ${noLeaderFor}, longer than a failover takes: writes to this group fail.`,
    },
    {
      name: "PatroniMultiplePrimaries", category: "availability", severity: "critical", source: "patroni",
      signal: primariesPerGroup, condition: "> 1", for: "30s",
      summary: "Citus group {{ $labels.citus_group }} has more than one primary",
      description: "More than one member of Citus group {{ $labels.citus_group }} has reported itself primary for 30 seconds: a split brain risks diverging data.",
    },
    {
      name: "PatroniFrequentFailovers", category: "availability", severity: "warning", source: "patroni",
      // The timeline grows by one per promotion. Patroni reports 0 while PostgreSQL is stopped: skip
      // those samples, or a mere restart would look like many promotions.
      signal: "max by (citus_group) (patroni_postgres_timeline) - min by (citus_group) (min_over_time((patroni_postgres_timeline > 0)[1h:]))",
      condition: "> 2", for: "1m",
      summary: "Citus group {{ $labels.citus_group }} failed over more than twice in an hour",
      description: "The PostgreSQL timeline of Citus group {{ $labels.citus_group }} advanced by more than 2 within the last hour: the leader is flapping.",
    },
    {
      name: "EtcdMemberDown", category: "availability", severity: "warning", source: "etcd",
      signal: `up{job="${JOBS.etcd}"}`, condition: "== 0", for: "1m",
      summary: "etcd member {{ $labels.member }} is down",
      description: "etcd member {{ $labels.member }} has not answered for 1 minute: the DCS tolerates one failure fewer.",
    },
    {
      name: "EtcdNoLeader", category: "availability", severity: "critical", source: "etcd",
      signal: "etcd_server_has_leader", condition: "== 0", for: "30s",
      summary: "etcd member {{ $labels.member }} has no leader",
      description: "etcd member {{ $labels.member }} has seen no leader for 30 seconds: Patroni cannot renew leader keys through it.",
    },
    {
      name: "EtcdQuorumLost", category: "availability", severity: "critical", source: "etcd",
      signal: `sum(up{job="${JOBS.etcd}"})`, condition: `< ${etcdQuorum}`, for: "30s",
      summary: "etcd has lost its quorum",
      description: `Fewer than ${etcdQuorum} of ${config.etcdMembers} etcd members have answered for 30 seconds: Patroni leaders cannot renew their keys, and primaries demote themselves.`,
    },
    {
      name: "HAProxyDown", category: "availability", severity: "critical", source: "haproxy",
      signal: `up{job="${JOBS.haproxy}"}`, condition: "== 0", for: "30s",
      summary: "HAProxy is down",
      description: "HAProxy's stats endpoint has not answered for 30 seconds: PgBouncer cannot reach the coordinator primary.",
    },
    {
      name: "HAProxyNoPrimary", category: "availability", severity: "critical", source: "haproxy",
      signal: `max(haproxy_backend_active_servers{proxy="${HAPROXY_PRIMARY_PROXY}"})`, condition: "< 1", for: "30s",
      summary: "HAProxy routes to no coordinator primary",
      description: `No server of HAProxy's ${HAPROXY_PRIMARY_PROXY} backend has passed the Patroni /primary check for 30 seconds: writes fail.`,
    },
    {
      name: "PgBouncerDown", category: "availability", severity: "critical", source: "pgbouncer_exporter",
      // pgbouncer_up is 0 when the exporter cannot reach PgBouncer; `up` stands in when the exporter is down.
      signal: `min(pgbouncer_up or up{job="${JOBS.pgbouncer}"})`, condition: "== 0", for: "30s",
      summary: "PgBouncer (or its exporter) is down",
      description: "The PgBouncer exporter has not answered for 30 seconds; it fails when it cannot reach PgBouncer's admin console.",
    },
    // --- business logic: what the application sees.
    {
      name: "VectorSearchErrorRateHigh", category: "business_logic", severity: "warning", source: "benchmark",
      signal: searchErrorRatio, condition: "> 0.01", for: "5m",
      summary: "Over 1 % of vector searches fail",
      description: "More than 1 % of the vector searches sent by the benchmark client have failed for 5 minutes.",
    },
    {
      name: "VectorSearchErrorRateCritical", category: "business_logic", severity: "critical", source: "benchmark",
      signal: searchErrorRatio, condition: "> 0.05", for: "5m",
      summary: "Over 5 % of vector searches fail",
      description: "More than 5 % of the vector searches sent by the benchmark client have failed for 5 minutes.",
    },
    {
      name: "VectorSearchRecallLow", category: "business_logic", severity: "warning", source: "benchmark",
      signal: `min(${BENCHMARK_METRICS.recall})`, condition: "< 0.9", for: "1m",
      summary: "Vector search recall below 0.9",
      description: `The measured recall@${config.searchK} of vector search is below 0.9: check the HNSW index and hnsw.ef_search (configured ${config.hnswEfSearch}).`,
    },
    {
      name: "VectorIndexMissing", category: "business_logic", severity: "warning", source: "postgres_exporter",
      signal: "count(pg_vector_index_bytes) or vector(0)", condition: "== 0", guard: "count(pg_table_total_bytes) > 0", for: "15m",
      summary: "No vector index exists",
      description: "Application tables exist but no node has reported an HNSW or IVF index for 15 minutes: vector searches scan every row.",
    },
  ];
  if (options.citus) {
    alerts.push({
      name: "CitusWorkerWithoutShards", category: "business_logic", severity: "warning", source: "citus",
      signal: "max by (worker) (citus_placement_shards)", condition: "== 0", for: "15m",
      summary: "Citus worker {{ $labels.worker }} holds no shards",
      description: "Citus worker {{ $labels.worker }} has held no shard placement for 15 minutes: it takes no share of the data or the searches until the shards are rebalanced.",
    });
  }
  return alerts;
}

interface PrometheusRule {
  alert: string;
  expr: string;
  for: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

export function prometheusRule(alert: AlertDefinition, options: AlertOptions): PrometheusRule {
  return {
    alert: alert.name,
    expr: alertExpr(alert),
    for: alert.for,
    labels: { severity: alert.severity, category: alert.category },
    annotations: {
      summary: alert.summary,
      description: alert.description,
      runbook_url: `${options.runbookBaseUrl}#${runbookAnchor(alert.name)}`,
    },
  };
}

/** The Prometheus rule file: one group per category. */
export function renderAlertRules(config: ClusterConfig, options: AlertOptions): string {
  const alerts = alertDefinitions(config, options);
  const groups = ALERT_CATEGORIES.map((category) => ({
    name: `${config.clusterName}-${category}`,
    rules: alerts.filter((a) => a.category === category).map((a) => prometheusRule(a, options)),
  })).filter((group) => group.rules.length > 0);
  return "# Rendered by distributed-postgres-cluster; do not edit.\n" + stringify({ groups }, { lineWidth: 0 });
}
