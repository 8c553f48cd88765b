// prometheus.yml: one job per kind of component, static targets from the topology and the platform's
// addresses. Patroni's own metrics carry only `scope` (3.0.2; later versions add `name`), so every
// PostgreSQL node's targets get `citus_group` and `member` labels, the same on its exporter and Patroni.
import { stringify } from "yaml";
import type { ClusterConfig, PostgresNode, Topology } from "../components/spec.ts";
import { PORTS, type Addressing } from "../components/render/types.ts";
import type { TlsFilePaths } from "../components/tls/types.ts";
import { EXPORTER_PORTS, JOBS } from "./metrics.ts";

export interface PrometheusRenderOptions {
  /** Path of the alert rules file, as Prometheus sees it (relative paths: to prometheus.yml). */
  rulesFile: string;
  /** Scrape and rule evaluation period, e.g. "15s" (local tests use "2s"). */
  scrapeInterval: string;
  /** host:port of the benchmark's /metrics endpoint; the job is left out when absent. */
  benchmarkTarget?: string;
  /** host:port of the PgBouncer exporter; defaults to PgBouncer's address on the exporter's port. */
  pgbouncerExporterTarget?: string;
  /**
   * host:port of a node's postgres_exporter, where it runs beside the node rather than on its
   * address (docker: a container of its own); defaults to the node's address on the exporter's port.
   */
  postgresExporterTarget?: (node: PostgresNode) => string;
  /**
   * When Patroni's REST API and etcd speak HTTPS: the CA to verify them by, and the client
   * certificate etcd demands (--client-cert-auth). The exporters (postgres_exporter, PgBouncer's,
   * HAProxy's stats) stay plain HTTP, on the hosts' own addresses.
   */
  tls?: TlsFilePaths;
}

interface StaticConfig {
  targets: string[];
  labels?: Record<string, string>;
}

interface ScrapeJob {
  job_name: string;
  metrics_path?: string;
  scheme?: "https";
  tls_config?: { ca_file: string; cert_file: string; key_file: string };
  static_configs: StaticConfig[];
}

function nodeLabels(node: PostgresNode): Record<string, string> {
  return { citus_group: String(node.group), member: node.name };
}

function perPostgresNode(topology: Topology, target: (node: PostgresNode) => string): StaticConfig[] {
  return topology.groups.flat().map((node) => ({ targets: [target(node)], labels: nodeLabels(node) }));
}

export function scrapeJobs(topology: Topology, addressing: Addressing, options: PrometheusRenderOptions): ScrapeJob[] {
  const tls = options.tls;
  const https = tls ? { scheme: "https" as const, tls_config: { ca_file: tls.caFile, cert_file: tls.certFile, key_file: tls.keyFile } } : {};
  const jobs: ScrapeJob[] = [
    {
      job_name: JOBS.postgres,
      static_configs: perPostgresNode(
        topology,
        options.postgresExporterTarget ?? ((node) => `${addressing.postgres(node).connect}:${EXPORTER_PORTS.postgresExporter}`),
      ),
    },
    {
      job_name: JOBS.patroni,
      metrics_path: "/metrics",
      ...https,
      static_configs: perPostgresNode(topology, (node) => `${addressing.postgres(node).connect}:${PORTS.patroniRest}`),
    },
    {
      job_name: JOBS.etcd,
      metrics_path: "/metrics",
      ...https,
      static_configs: topology.etcd.map((member) => ({
        targets: [`${addressing.etcd(member).connect}:${PORTS.etcdClient}`],
        labels: { member: member.name },
      })),
    },
    // HAProxy's built-in exporter (USE_PROMEX, in Debian's and the official images' builds), served
    // on the stats listener by `http-request use-service prometheus-exporter if { path /metrics }`.
    {
      job_name: JOBS.haproxy,
      metrics_path: "/metrics",
      static_configs: [{ targets: [`${addressing.haproxy.connect}:${PORTS.haproxyStats}`] }],
    },
    {
      job_name: JOBS.pgbouncer,
      static_configs: [
        { targets: [options.pgbouncerExporterTarget ?? `${addressing.pgbouncer.connect}:${EXPORTER_PORTS.pgbouncerExporter}`] },
      ],
    },
  ];
  if (options.benchmarkTarget) {
    jobs.push({ job_name: JOBS.benchmark, static_configs: [{ targets: [options.benchmarkTarget] }] });
  }
  return jobs;
}

export function renderPrometheusConfig(
  config: ClusterConfig,
  topology: Topology,
  addressing: Addressing,
  options: PrometheusRenderOptions,
): string {
  const document = {
    global: {
      scrape_interval: options.scrapeInterval,
      evaluation_interval: options.scrapeInterval,
      // Tells clusters apart when one Prometheus or Alertmanager serves several.
      external_labels: { cluster: config.clusterName },
    },
    rule_files: [options.rulesFile],
    scrape_configs: scrapeJobs(topology, addressing, options),
  };
  return "# Rendered by distributed-postgres-cluster; do not edit.\n" + stringify(document, { lineWidth: 0 });
}
