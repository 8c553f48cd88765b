// Monitoring as code: every file Prometheus, postgres_exporter and Grafana run on, rendered from the
// same spec and addresses as the cluster. Used by the monitoring component, `npm run render`, the
// local runner and the tests.
import type { ClusterConfig, Topology } from "../components/spec.ts";
import type { Addressing } from "../components/render/types.ts";
import { DEFAULT_ALERT_OPTIONS, renderAlertRules, type AlertOptions } from "./alerts.ts";
import { renderAlertRuleTests } from "./alert-tests.ts";
import { renderExporterQueries } from "./exporter-queries.ts";
import { renderDashboardJson, renderGrafanaDashboardProvider, renderGrafanaDatasource } from "./grafana.ts";
import { renderPrometheusConfig, type PrometheusRenderOptions } from "./prometheus.ts";

export { ALERT_CATEGORIES, DEFAULT_ALERT_OPTIONS, alertDefinitions, alertExpr, renderAlertRules, runbookAnchor } from "./alerts.ts";
export type { AlertCategory, AlertDefinition, AlertOptions, Severity } from "./alerts.ts";
export { alertFixtures, renderAlertRuleTests } from "./alert-tests.ts";
export { CITUS_QUERIES, EXPORTER_APPLICATION_NAME, POSTGRES_QUERIES, exporterDataSourceUri, exporterQueries, renderExporterQueries } from "./exporter-queries.ts";
export { promqlExpressions, type PromqlExpression } from "./expressions.ts";
export { PROMETHEUS_DATASOURCE, buildDashboard, renderDashboardJson, renderGrafanaDashboardProvider, renderGrafanaDatasource } from "./grafana.ts";
export * from "./metrics.ts";
export { dashboardPanels, type PanelSpec } from "./panels.ts";
export { renderPrometheusConfig, scrapeJobs } from "./prometheus.ts";

/** File names of the rendered monitoring files, relative to one output directory. */
export const MONITORING_FILES = {
  prometheusConfig: "prometheus/prometheus.yml",
  alertRules: "prometheus/alerts.yml",
  alertRuleTests: "prometheus/alert-tests.yml",
  exporterQueries: "postgres-exporter/queries.yaml",
  grafanaDatasource: "grafana/provisioning/datasources/prometheus.yml",
  grafanaDashboardProvider: "grafana/provisioning/dashboards/provider.yml",
  dashboard: "grafana/dashboards/overview.json",
} as const;

export interface MonitoringOptions extends Partial<AlertOptions> {
  /** The PostgreSQL nodes run Citus: add the Citus queries, alerts and panels. */
  citus: boolean;
  /** Scrape and evaluation period, e.g. "15s"; local runs use "2s". */
  scrapeInterval: string;
  /** host:port of the benchmark's /metrics endpoint; no benchmark job when absent. */
  benchmarkTarget?: string;
  /** host:port of the PgBouncer exporter, when not on PgBouncer's address. */
  pgbouncerExporterTarget?: string;
  /** host:port of a node's postgres_exporter, when not on the node's address. */
  postgresExporterTarget?: PrometheusRenderOptions["postgresExporterTarget"];
  /** CA and client certificate for scraping Patroni and etcd over HTTPS; absent: plain HTTP. */
  tls?: PrometheusRenderOptions["tls"];
  /** Prometheus as Grafana reaches it. */
  prometheusUrl: string;
  /** Where Grafana finds the dashboard JSON files. */
  dashboardsDir: string;
}

/** Every monitoring file by its MONITORING_FILES key. Paths inside files are relative where possible. */
export function renderMonitoringFiles(
  config: ClusterConfig,
  topology: Topology,
  addressing: Addressing,
  options: MonitoringOptions,
): Record<keyof typeof MONITORING_FILES, string> {
  const alertOptions: AlertOptions = { ...DEFAULT_ALERT_OPTIONS, ...options };
  return {
    // Relative to prometheus.yml: both files live in the same directory.
    prometheusConfig: renderPrometheusConfig(config, topology, addressing, { ...options, rulesFile: "alerts.yml" }),
    alertRules: renderAlertRules(config, alertOptions),
    alertRuleTests: renderAlertRuleTests(config, alertOptions, "alerts.yml"),
    exporterQueries: renderExporterQueries(options),
    grafanaDatasource: renderGrafanaDatasource(options),
    grafanaDashboardProvider: renderGrafanaDashboardProvider(config, options),
    dashboard: renderDashboardJson(config, options),
  };
}
