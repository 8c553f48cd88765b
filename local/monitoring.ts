// Prometheus and the exporters of the local cluster, from the same monitoring renderers the
// Monitoring component ships. (Grafana is not packaged for these machines: its files are rendered
// and checked by the unit tests only.)
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { PORTS, ROLES } from "../components/render/types.ts";
import { EXPORTER_PORTS, MONITORING_FILES, exporterDataSourceUri, renderMonitoringFiles } from "../monitoring/index.ts";
import type { PostgresNode } from "../components/spec.ts";
import type { LocalCluster } from "./cluster.ts";
import { OPERATOR_CERTIFICATE, type TlsFilePaths } from "../components/tls/index.ts";
import { routerAddress } from "./layout.ts";

export const LOCAL_PROMETHEUS = { host: routerAddress(), port: 9090 };
export const LOCAL_SCRAPE_INTERVAL = "2s";
/** Where `npm run bench -- --metrics-listen` serves its search metrics for the local Prometheus. */
export const LOCAL_BENCHMARK_METRICS = `${routerAddress()}:9464`;

export function prometheusUrl(): string {
  return `http://${LOCAL_PROMETHEUS.host}:${LOCAL_PROMETHEUS.port}`;
}

function monitoringDir(cluster: LocalCluster): string {
  return cluster.paths.nodeDir("monitoring");
}

function monitoringTls(cluster: LocalCluster): TlsFilePaths {
  const dir = monitoringDir(cluster);
  return { caFile: join(dir, "ca.crt"), certFile: join(dir, "client.crt"), keyFile: join(dir, "client.key") };
}

/** Listeners the monitoring processes need, for the port check before `up` starts anything. */
export function monitoringListeners(cluster: LocalCluster): { what: string; host: string; port: number }[] {
  return [
    { what: "Prometheus", host: LOCAL_PROMETHEUS.host, port: LOCAL_PROMETHEUS.port },
    { what: "PgBouncer exporter", host: cluster.addressing.pgbouncer.listen, port: EXPORTER_PORTS.pgbouncerExporter },
    ...cluster.nodes.map((node) => ({
      what: `postgres_exporter ${node.name}`,
      host: cluster.addressing.postgres(node).listen,
      port: EXPORTER_PORTS.postgresExporter,
    })),
  ];
}

export function writeMonitoringFiles(cluster: LocalCluster): void {
  const dir = monitoringDir(cluster);
  const files = renderMonitoringFiles(cluster.config, cluster.topology, cluster.addressing, {
    citus: true,
    scrapeInterval: LOCAL_SCRAPE_INTERVAL,
    benchmarkTarget: LOCAL_BENCHMARK_METRICS,
    prometheusUrl: prometheusUrl(),
    dashboardsDir: join(dir, "grafana/dashboards"),
    tls: monitoringTls(cluster),
  });
  for (const [key, relative] of Object.entries(MONITORING_FILES)) {
    cluster.writeFile({ path: join(dir, relative), content: files[key as keyof typeof files], secret: false });
  }
  // Prometheus' copies of the CA and the operator's client certificate (etcd demands one).
  const certificates = cluster.certificates();
  const tls = monitoringTls(cluster);
  cluster.writeFile({ path: tls.caFile, content: certificates.ca, secret: false });
  cluster.writeFile({ path: tls.certFile, content: certificates.certificates[OPERATOR_CERTIFICATE].cert, secret: false });
  cluster.writeFile({ path: tls.keyFile, content: certificates.certificates[OPERATOR_CERTIFICATE].key, secret: true });
  // postgres_exporter logs in as the monitoring role (pg_monitor only); the password file is its alone (0600).
  cluster.writeFile({ path: join(dir, "exporter-password"), content: cluster.monitorPassword(), secret: true });
  // The exporter runs as postgres: it verifies PgBouncer against its own copy of the CA (tls/ is root's).
  // ... and logs in as the monitoring role, one of PgBouncer's stats_users (SHOW only, no admin).
  const exporterUrl = new URL(cluster.pgbouncerUrl("admin", "pgbouncer"));
  exporterUrl.username = ROLES.monitor;
  exporterUrl.password = encodeURIComponent(cluster.monitorPassword());
  exporterUrl.searchParams.set("sslrootcert", tls.caFile);
  cluster.writeFile({ path: join(dir, "pgbouncer-exporter-url"), content: exporterUrl.toString(), secret: true });
}

/** Starts postgres_exporter for one node (also used when a worker group is added: local/scale.ts). */
export function startPostgresExporter(cluster: LocalCluster, node: PostgresNode): void {
  const dir = monitoringDir(cluster);
  const address = cluster.addressing.postgres(node).connect;
  cluster.start(
    postgresExporterName(node),
    [
      "/usr/bin/prometheus-postgres-exporter",
      `--web.listen-address=${address}:${EXPORTER_PORTS.postgresExporter}`,
      `--extend.query-path=${join(dir, MONITORING_FILES.exporterQueries)}`,
    ],
    {
      DATA_SOURCE_URI: exporterDataSourceUri(address, PORTS.postgres, cluster.config.database, monitoringTls(cluster).caFile),
      DATA_SOURCE_USER: ROLES.monitor,
      DATA_SOURCE_PASS_FILE: join(dir, "exporter-password"),
    },
  );
}

export function postgresExporterName(node: PostgresNode): string {
  return `postgres-exporter-${node.name}`;
}

export function startMonitoring(cluster: LocalCluster): void {
  startExporters(cluster);
  const dir = monitoringDir(cluster);
  cluster.start(
    "prometheus",
    [
      "/usr/bin/prometheus",
      `--config.file=${join(dir, MONITORING_FILES.prometheusConfig)}`,
      `--storage.tsdb.path=${join(dir, "prometheus-data")}`,
      `--web.listen-address=${LOCAL_PROMETHEUS.host}:${LOCAL_PROMETHEUS.port}`,
      "--storage.tsdb.retention.time=1d",
    ],
  );
}

/** postgres_exporter on every node and the PgBouncer exporter; they read their password files at start. */
export function startExporters(cluster: LocalCluster): void {
  const dir = monitoringDir(cluster);
  for (const node of cluster.nodes) startPostgresExporter(cluster, node);
  // Our own small exporter (see monitoring/pgbouncer-exporter.ts for why not Debian's).
  cluster.start(
    "pgbouncer-exporter",
    [
      process.execPath,
      `--import=${import.meta.resolve("tsx")}`,
      fileURLToPath(new URL("../monitoring/pgbouncer-exporter.ts", import.meta.url)),
      `--web.listen-address=${cluster.addressing.pgbouncer.listen}:${EXPORTER_PORTS.pgbouncerExporter}`,
      `--connection-file=${join(dir, "pgbouncer-exporter-url")}`,
    ],
  );
}
