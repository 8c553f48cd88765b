// Grafana provisioning: the Prometheus datasource (fixed uid, so the dashboards can name it), the
// dashboard provider, and the dashboard model built with the foundation SDK from panels.ts.
import { BigValueColorMode, BigValueGraphMode, BigValueTextMode, ReduceDataOptionsBuilder } from "@grafana/grafana-foundation-sdk/common";
import { DashboardBuilder, MappingType, type DataSourceRef, type Dashboard, type ValueMapping } from "@grafana/grafana-foundation-sdk/dashboard";
import { DataqueryBuilder } from "@grafana/grafana-foundation-sdk/prometheus";
import * as stat from "@grafana/grafana-foundation-sdk/stat";
import * as timeseries from "@grafana/grafana-foundation-sdk/timeseries";
import { stringify } from "yaml";
import type { ClusterConfig } from "../components/spec.ts";
import { dashboardPanels, type PanelOptions, type PanelSpec } from "./panels.ts";

/** The provisioned datasource every panel and query names. */
export const PROMETHEUS_DATASOURCE: Required<DataSourceRef> = { type: "prometheus", uid: "cluster-prometheus" };

export interface GrafanaRenderOptions extends PanelOptions {
  /** Prometheus as Grafana's server reaches it, e.g. http://prometheus:9090. */
  prometheusUrl: string;
  /** Prometheus's scrape interval: the lower bound of $__rate_interval's step. */
  scrapeInterval: string;
  /** Directory Grafana loads dashboard JSON files from. */
  dashboardsDir: string;
}

export function renderGrafanaDatasource(options: GrafanaRenderOptions): string {
  const document = {
    apiVersion: 1,
    datasources: [{
      name: "Prometheus",
      uid: PROMETHEUS_DATASOURCE.uid,
      type: PROMETHEUS_DATASOURCE.type,
      access: "proxy",
      url: options.prometheusUrl,
      isDefault: true,
      editable: false,
      jsonData: { timeInterval: options.scrapeInterval },
    }],
  };
  return "# Rendered by distributed-postgres-cluster; do not edit.\n" + stringify(document);
}

export function renderGrafanaDashboardProvider(config: ClusterConfig, options: GrafanaRenderOptions): string {
  const document = {
    apiVersion: 1,
    providers: [{
      name: config.clusterName,
      folder: "PostgreSQL cluster",
      type: "file",
      // The files are the source of truth: edits in the UI would be lost at the next render.
      disableDeletion: true,
      allowUiUpdates: false,
      options: { path: options.dashboardsDir },
    }],
  };
  return "# Rendered by distributed-postgres-cluster; do not edit.\n" + stringify(document);
}

function valueMappings(spec: PanelSpec): ValueMapping[] {
  if (!spec.valueText) return [];
  const options = Object.fromEntries(
    Object.entries(spec.valueText).map(([value, { text, color }], index) => [value, { text, color, index }]),
  );
  return [{ type: MappingType.ValueToText, options }];
}

function panelBuilder(spec: PanelSpec, id: number) {
  const width = spec.kind === "stat" ? 8 : 12;
  const builder = spec.kind === "stat"
    ? new stat.PanelBuilder()
        .colorMode(BigValueColorMode.Background)
        .graphMode(BigValueGraphMode.None)
        .textMode(BigValueTextMode.ValueAndName)
        .reduceOptions(new ReduceDataOptionsBuilder().calcs(["lastNotNull"]))
        .mappings(valueMappings(spec))
    : new timeseries.PanelBuilder();
  builder.id(id).title(spec.title).description(spec.description).unit(spec.unit).datasource(PROMETHEUS_DATASOURCE);
  spec.targets.forEach((target, index) => {
    builder.withTarget(
      new DataqueryBuilder()
        .refId(String.fromCharCode(65 + index))
        .datasource(PROMETHEUS_DATASOURCE)
        .expr(target.expr)
        .legendFormat(target.legend),
    );
  });
  return { builder, width };
}

/** The dashboard model (Grafana JSON), panels laid out two time series or three stats per row. */
export function buildDashboard(config: ClusterConfig, options: PanelOptions): Dashboard {
  const dashboard = new DashboardBuilder(`${config.clusterName}: distributed PostgreSQL for vector search`)
    .uid(`${config.clusterName}-overview`)
    .tags(["postgresql", "citus", "patroni", "vector-search", "generated"])
    .refresh("30s")
    .time({ from: "now-1h", to: "now" })
    .timezone("browser");
  let x = 0;
  let y = 0;
  dashboardPanels(options).forEach((spec, index) => {
    const { builder, width } = panelBuilder(spec, index + 1);
    if (x + width > 24) {
      x = 0;
      y += 8;
    }
    dashboard.withPanel(builder.gridPos({ x, y, w: width, h: 8 }));
    x += width;
  });
  return dashboard.build();
}

export function renderDashboardJson(config: ClusterConfig, options: PanelOptions): string {
  return JSON.stringify(buildDashboard(config, options), null, 2) + "\n";
}
