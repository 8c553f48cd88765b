// `promtool test rules` cases for every alert: one input where the signal is just past the threshold
// (not firing before `for` has elapsed, firing after), and the same input just on the quiet side of it.
import { stringify } from "yaml";
import type { ClusterConfig } from "../components/spec.ts";
import { alertDefinitions, prometheusRule, type AlertDefinition, type AlertOptions } from "./alerts.ts";
import { BENCHMARK_METRICS, HAPROXY_PRIMARY_PROXY, JOBS, SEARCH_DURATION_BUCKETS } from "./metrics.ts";

type Labels = Record<string, string>;

export interface InputSeries {
  series: string;
  values: string;
}

export interface AlertFixture {
  /** Input where the signal is past the threshold from `activeAfter` on. */
  firing: InputSeries[];
  /** Input just on the quiet side of the threshold. */
  silent: InputSeries[];
  /** Labels of each alert expected to fire (severity and category are added). */
  alerts: Labels[];
  /** Seconds from the start until the condition holds (default 0). */
  activeAfter?: number;
}

const INTERVAL = 15;
/** Samples per series (75 minutes): enough for the longest `for` (30 m). */
const SAMPLES = 300;

function series(metric: string, labels: Labels, values: string): InputSeries {
  const body = Object.entries(labels).map(([k, v]) => `${k}="${v}"`).join(", ");
  return { series: `${metric}{${body}}`, values };
}
/** A gauge holding `value`. */
const flat = (value: number) => `${value}+0x${SAMPLES}`;
/** A counter growing by `step` each sample. */
const ramp = (step: number) => `0+${step}x${SAMPLES}`;

// Label sets of made-up nodes: a coordinator replica, two worker-group members, an etcd member.
const coordinatorReplica = { citus_group: "0", member: "dpc-coordinator-1" };
const worker1 = [
  { citus_group: "1", member: "dpc-worker1-0" },
  { citus_group: "1", member: "dpc-worker1-1" },
];
const exporterOf = (node: Labels, address = "127.0.2.2") => ({ job: JOBS.postgres, instance: `${address}:9187`, ...node });
const etcdOf = (index: number) => ({ job: JOBS.etcd, instance: `127.0.1.${index + 1}:2379`, member: `dpc-etcd-${index}` });

/** Histogram counters where every search falls in the bucket bounded by `bound`. */
function searchHistogram(bound: number): InputSeries[] {
  const bounds = [...SEARCH_DURATION_BUCKETS.map(String), "+Inf"];
  return bounds.map((le) => series(`${BENCHMARK_METRICS.searchDuration}_bucket`, { job: JOBS.benchmark, le }, ramp(le === "+Inf" || Number(le) >= bound ? 1500 : 0)));
}

function searchErrors(errorsPerThousand: number): InputSeries[] {
  return [
    series(BENCHMARK_METRICS.searches, { job: JOBS.benchmark }, ramp(1000)),
    series(BENCHMARK_METRICS.searchErrors, { job: JOBS.benchmark }, ramp(errorsPerThousand)),
  ];
}

function pgbouncerPool(activeOf100: number): InputSeries[] {
  const exporter = { job: JOBS.pgbouncer, instance: "127.0.0.1:9127" };
  return [
    series("pgbouncer_databases_pool_size", { ...exporter, name: "vectors", database: "vectors" }, flat(100)),
    // Two users' pools of one database add up.
    series("pgbouncer_pools_server_active_connections", { ...exporter, database: "vectors", user: "app" }, flat(activeOf100 - 1)),
    series("pgbouncer_pools_server_active_connections", { ...exporter, database: "vectors", user: "postgres" }, flat(1)),
    // The admin console's pool is always full; it must not count.
    series("pgbouncer_databases_pool_size", { ...exporter, name: "pgbouncer", database: "pgbouncer" }, flat(2)),
    series("pgbouncer_pools_server_active_connections", { ...exporter, database: "pgbouncer", user: "pgbouncer" }, flat(2)),
  ];
}

function cacheBlocks(hitPercent: number): InputSeries[] {
  const node = exporterOf(coordinatorReplica);
  return [series("pg_cache_hit_blocks", node, ramp(hitPercent * 15)), series("pg_cache_read_blocks", node, ramp((100 - hitPercent) * 15))];
}

function databaseSize(config: ClusterConfig, options: AlertOptions, fraction: number): InputSeries[] {
  const node = exporterOf(coordinatorReplica);
  return [
    series("pg_database_size_bytes", { ...node, datname: config.database }, flat(Math.round(options.storageBudgetBytes * fraction))),
    // Other databases do not count against the application's budget.
    series("pg_database_size_bytes", { ...node, datname: "postgres" }, flat(options.storageBudgetBytes)),
  ];
}

/** Patroni targets of worker group 1: `role` gauge per member; a member whose `up` is 0 reports nothing. */
function patroniRoles(role: "primary" | "replica", values: [number, number], upValues: [number, number] = [1, 1]): InputSeries[] {
  return worker1.flatMap((member, i) => {
    const target = { job: JOBS.patroni, instance: `127.0.2.${4 + i}:8008`, ...member };
    const reported = upValues[i] === 1 ? [series(`patroni_${role}`, { ...target, scope: "dpc" }, flat(values[i]))] : [];
    return [series("up", target, flat(upValues[i])), ...reported];
  });
}

function upOf(labels: Labels, value: number): InputSeries[] {
  return [series("up", labels, flat(value))];
}

/** Fixtures by alert name. */
export function alertFixtures(config: ClusterConfig, options: AlertOptions): Record<string, AlertFixture> {
  const node = exporterOf(coordinatorReplica);
  const maxClients = config.maxClientConnections;
  const quorum = Math.floor(config.etcdMembers / 2) + 1;
  const etcdUp = (upCount: number) =>
    Array.from({ length: config.etcdMembers }, (_, i) => series("up", etcdOf(i), flat(i < upCount ? 1 : 0)));
  const quotaBytes = 2 * 1024 ** 3;
  const etcdDb = (fraction: number) => [
    series("etcd_server_quota_backend_bytes", etcdOf(0), flat(quotaBytes)),
    series("etcd_mvcc_db_total_size_in_bytes", etcdOf(0), flat(Math.round(quotaBytes * fraction))),
  ];
  const table = { ...node, schemaname: "public", relname: "memory_entries" };
  const haproxy = { job: JOBS.haproxy, instance: "127.0.0.1:7000" };
  const haproxyServers = (primaryUp: number) => [
    series("haproxy_backend_active_servers", { ...haproxy, proxy: HAPROXY_PRIMARY_PROXY }, flat(primaryUp)),
    series("haproxy_backend_active_servers", { ...haproxy, proxy: "coordinator_replicas" }, flat(2)),
  ];
  const placements = (worker2Shards: number) => [
    series("citus_placement_shards", { ...node, worker: "dpc-worker1-0", citus_groupid: "1" }, flat(6)),
    series("citus_placement_shards", { ...node, worker: "dpc-worker2-0", citus_groupid: "2" }, flat(worker2Shards)),
  ];
  // Twenty samples (five minutes) of the first timeline, then the later one.
  const timeline = (firstFiveMinutes: string, after: number) => [
    series("patroni_postgres_timeline", { job: JOBS.patroni, instance: "127.0.2.1:8008", citus_group: "0", member: "dpc-coordinator-0", scope: "dpc" }, `${firstFiveMinutes} ${after}+0x${SAMPLES}`),
  ];
  const nodeLabels = { citus_group: coordinatorReplica.citus_group, member: coordinatorReplica.member };

  return {
    VectorSearchLatencyP95High: { firing: searchHistogram(0.015), silent: searchHistogram(0.01), alerts: [{}] },
    VectorSearchLatencyP95Critical: { firing: searchHistogram(0.075), silent: searchHistogram(0.05), alerts: [{}] },
    PostgreSQLReplicationLagHigh: {
      firing: [series("pg_replication_lag_seconds", node, flat(6))],
      silent: [series("pg_replication_lag_seconds", node, flat(4.9))],
      alerts: [nodeLabels],
    },
    PostgreSQLReplicationLagCritical: {
      firing: [series("pg_replication_lag_seconds", node, flat(11))],
      silent: [series("pg_replication_lag_seconds", node, flat(9.9))],
      alerts: [nodeLabels],
    },
    PostgreSQLReplicaNotStreaming: {
      firing: [series("pg_replication_streaming", node, flat(0))],
      silent: [series("pg_replication_streaming", node, flat(1))],
      alerts: [nodeLabels],
    },
    // Worker group 1 (two members): its replica is down in the firing case.
    PatroniGroupDegraded: {
      firing: patroniRoles("replica", [0, 0], [1, 0]),
      silent: patroniRoles("replica", [0, 1]),
      alerts: [{ citus_group: "1" }],
    },
    PgBouncerPoolUsageHigh: { firing: pgbouncerPool(81), silent: pgbouncerPool(79), alerts: [{ database: "vectors" }] },
    PgBouncerPoolUsageCritical: { firing: pgbouncerPool(96), silent: pgbouncerPool(94), alerts: [{ database: "vectors" }] },
    PgBouncerClientsWaiting: {
      firing: [series("pgbouncer_pools_client_waiting_connections", { job: JOBS.pgbouncer, instance: "127.0.0.1:9127", database: "vectors", user: "app" }, flat(3))],
      silent: [series("pgbouncer_pools_client_waiting_connections", { job: JOBS.pgbouncer, instance: "127.0.0.1:9127", database: "vectors", user: "app" }, flat(0))],
      alerts: [{ database: "vectors" }],
    },
    PgBouncerClientConnectionsHigh: {
      firing: [series("pgbouncer_used_clients", { job: JOBS.pgbouncer, instance: "127.0.0.1:9127" }, flat(Math.floor(maxClients * 0.8) + 1))],
      silent: [series("pgbouncer_used_clients", { job: JOBS.pgbouncer, instance: "127.0.0.1:9127" }, flat(Math.floor(maxClients * 0.8) - 1))],
      alerts: [{}],
    },
    PostgreSQLConnectionsNearMax: {
      firing: [
        series("pg_settings_max_connections", node, flat(100)),
        series("pg_connections_count", { ...node, state: "active" }, flat(50)),
        series("pg_connections_count", { ...node, state: "idle" }, flat(31)),
      ],
      silent: [
        series("pg_settings_max_connections", node, flat(100)),
        series("pg_connections_count", { ...node, state: "active" }, flat(50)),
        series("pg_connections_count", { ...node, state: "idle" }, flat(29)),
      ],
      alerts: [nodeLabels],
    },
    PostgreSQLCacheHitRatioLow: { firing: cacheBlocks(89), silent: cacheBlocks(91), alerts: [nodeLabels] },
    PostgreSQLCacheHitRatioCritical: { firing: cacheBlocks(74), silent: cacheBlocks(76), alerts: [nodeLabels] },
    PostgreSQLStorageUsageHigh: { firing: databaseSize(config, options, 0.81), silent: databaseSize(config, options, 0.79), alerts: [nodeLabels] },
    PostgreSQLStorageUsageCritical: { firing: databaseSize(config, options, 0.96), silent: databaseSize(config, options, 0.94), alerts: [nodeLabels] },
    PostgreSQLDeadRowsHigh: {
      // 30,000 dead of 130,000 rows is 23 %; 24,000 of 124,000 is 19 %.
      firing: [series("pg_table_rows", table, flat(100000)), series("pg_table_dead_rows", table, flat(30000))],
      silent: [series("pg_table_rows", table, flat(100000)), series("pg_table_dead_rows", table, flat(24000))],
      alerts: [{ ...nodeLabels, schemaname: "public", relname: "memory_entries" }],
    },
    EtcdDatabaseQuotaHigh: { firing: etcdDb(0.81), silent: etcdDb(0.79), alerts: [{ member: "dpc-etcd-0" }] },
    // Both ways a node goes dark: PostgreSQL down under a live exporter, and the exporter itself down.
    PostgreSQLDown: {
      firing: [
        series("up", exporterOf(coordinatorReplica), flat(1)),
        series("pg_up", exporterOf(coordinatorReplica), flat(0)),
        series("up", exporterOf(worker1[0], "127.0.2.4"), flat(0)),
      ],
      silent: [
        series("up", exporterOf(coordinatorReplica), flat(1)),
        series("pg_up", exporterOf(coordinatorReplica), flat(1)),
        series("up", exporterOf(worker1[0], "127.0.2.4"), flat(1)),
        series("pg_up", exporterOf(worker1[0], "127.0.2.4"), flat(1)),
      ],
      alerts: [nodeLabels, worker1[0]],
    },
    PatroniDown: {
      firing: upOf({ job: JOBS.patroni, instance: "127.0.2.5:8008", ...worker1[1] }, 0),
      silent: upOf({ job: JOBS.patroni, instance: "127.0.2.5:8008", ...worker1[1] }, 1),
      alerts: [{ job: JOBS.patroni, instance: "127.0.2.5:8008", ...worker1[1] }],
    },
    PatroniNoLeader: { firing: patroniRoles("primary", [0, 0]), silent: patroniRoles("primary", [1, 0]), alerts: [{ citus_group: "1" }] },
    PatroniMultiplePrimaries: { firing: patroniRoles("primary", [1, 1]), silent: patroniRoles("primary", [1, 0]), alerts: [{ citus_group: "1" }] },
    // Timeline 1, then 4 (three promotions) or 3 (two). The silent case also restarts PostgreSQL
    // (Patroni reports timeline 0 meanwhile), which must not count as promotions.
    PatroniFrequentFailovers: {
      firing: timeline("1+0x19", 4),
      silent: timeline("1+0x9 0+0x2 1+0x6", 3),
      alerts: [{ citus_group: "0" }],
      activeAfter: 300,
    },
    EtcdMemberDown: { firing: upOf(etcdOf(1), 0), silent: upOf(etcdOf(1), 1), alerts: [etcdOf(1)] },
    EtcdNoLeader: {
      firing: [series("etcd_server_has_leader", etcdOf(0), flat(0))],
      silent: [series("etcd_server_has_leader", etcdOf(0), flat(1))],
      alerts: [etcdOf(0)],
    },
    EtcdQuorumLost: { firing: etcdUp(quorum - 1), silent: etcdUp(quorum), alerts: [{}] },
    HAProxyDown: { firing: upOf(haproxy, 0), silent: upOf(haproxy, 1), alerts: [haproxy] },
    HAProxyNoPrimary: { firing: haproxyServers(0), silent: haproxyServers(1), alerts: [{}] },
    PgBouncerDown: {
      // The exporter answers but cannot reach PgBouncer: pgbouncer_up 0 while up is 1.
      firing: [...upOf({ job: JOBS.pgbouncer, instance: "127.0.0.1:9127" }, 1), series("pgbouncer_up", { job: JOBS.pgbouncer, instance: "127.0.0.1:9127" }, flat(0))],
      silent: [...upOf({ job: JOBS.pgbouncer, instance: "127.0.0.1:9127" }, 1), series("pgbouncer_up", { job: JOBS.pgbouncer, instance: "127.0.0.1:9127" }, flat(1))],
      alerts: [{}],
    },
    VectorSearchErrorRateHigh: { firing: searchErrors(11), silent: searchErrors(9), alerts: [{}] },
    VectorSearchErrorRateCritical: { firing: searchErrors(51), silent: searchErrors(49), alerts: [{}] },
    VectorSearchRecallLow: {
      firing: [series(BENCHMARK_METRICS.recall, { job: JOBS.benchmark }, flat(0.89))],
      silent: [series(BENCHMARK_METRICS.recall, { job: JOBS.benchmark }, flat(0.91))],
      alerts: [{}],
    },
    VectorIndexMissing: {
      firing: [series("pg_table_total_bytes", table, flat(8192))],
      silent: [
        series("pg_table_total_bytes", table, flat(8192)),
        series("pg_vector_index_bytes", { ...node, schemaname: "public", relname: "memory_entries", indexrelname: "memory_entries_embedding_idx", method: "hnsw" }, flat(8192)),
      ],
      alerts: [{}],
    },
    CitusWorkerWithoutShards: { firing: placements(0), silent: placements(1), alerts: [{ worker: "dpc-worker2-0" }] },
  };
}

/** Annotations as Prometheus expands them: the templates use only {{ $labels.NAME }}. */
function expandAnnotations(annotations: Record<string, string>, labels: Labels): Record<string, string> {
  const expanded: Record<string, string> = {};
  for (const [key, template] of Object.entries(annotations)) {
    expanded[key] = template.replace(/\{\{ \$labels\.(\w+) \}\}/g, (_, name: string) => labels[name] ?? "");
  }
  return expanded;
}

const duration = (seconds: number) => `${seconds}s`;

function parseDuration(text: string): number {
  const match = /^(\d+)(s|m|h)$/.exec(text);
  if (!match) throw new Error(`unsupported duration "${text}" (use a whole number of s, m or h)`);
  return Number(match[1]) * { s: 1, m: 60, h: 3600 }[match[2] as "s" | "m" | "h"];
}

function testGroups(alert: AlertDefinition, fixture: AlertFixture, options: AlertOptions): unknown[] {
  const rule = prometheusRule(alert, options);
  const activeAt = fixture.activeAfter ?? 0;
  const forSeconds = parseDuration(alert.for);
  const firedAt = activeAt + forSeconds + 60;
  const expected = fixture.alerts.map((labels) => {
    const all = { ...labels, ...rule.labels };
    return { exp_labels: all, exp_annotations: expandAnnotations(rule.annotations, all) };
  });
  return [
    {
      name: `${alert.name} fires past its threshold after ${alert.for}`,
      interval: duration(INTERVAL),
      input_series: fixture.firing,
      alert_rule_test: [
        // Past the threshold but not yet for `for`: pending, so not listed.
        { eval_time: duration(activeAt + forSeconds - INTERVAL), alertname: alert.name, exp_alerts: [] },
        { eval_time: duration(firedAt), alertname: alert.name, exp_alerts: expected },
      ],
    },
    {
      name: `${alert.name} stays silent just short of its threshold`,
      interval: duration(INTERVAL),
      input_series: fixture.silent,
      alert_rule_test: [{ eval_time: duration(firedAt), alertname: alert.name, exp_alerts: [] }],
    },
  ];
}

/** The promtool unit-test file for the rules file at `rulesFile` (relative to the test file). */
export function renderAlertRuleTests(config: ClusterConfig, options: AlertOptions, rulesFile: string): string {
  const fixtures = alertFixtures(config, options);
  const tests = alertDefinitions(config, options).flatMap((alert) => {
    const fixture = fixtures[alert.name];
    if (!fixture) throw new Error(`alert ${alert.name} has no test fixture in monitoring/alert-tests.ts`);
    return testGroups(alert, fixture, options);
  });
  const document = { rule_files: [rulesFile], evaluation_interval: duration(INTERVAL), tests };
  return "# Rendered by distributed-postgres-cluster; do not edit.\n" + stringify(document, { lineWidth: 0 });
}
