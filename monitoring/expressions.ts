// Every PromQL expression of the alerts and the dashboard, with the component it needs: the tests
// that run them against a real Prometheus expect data from each, or name the missing component.
import type { ClusterConfig } from "../components/spec.ts";
import { alertDefinitions, type AlertOptions } from "./alerts.ts";
import type { MetricSource } from "./metrics.ts";
import { dashboardPanels } from "./panels.ts";

export interface PromqlExpression {
  kind: "alert" | "panel";
  /** The alert's name, or the panel's title and the query's legend. */
  name: string;
  /**
   * For an alert, its signal: the rule without its threshold, which has data on a healthy cluster
   * (the rule itself rightly returns nothing there). For a panel, the query with a fixed rate window.
   */
  expr: string;
  source: MetricSource;
}

export interface ExpressionOptions extends AlertOptions {
  /** Replaces Grafana's $__rate_interval: at least four scrape intervals. */
  rateWindow: string;
}

export function promqlExpressions(config: ClusterConfig, options: ExpressionOptions): PromqlExpression[] {
  const alerts: PromqlExpression[] = alertDefinitions(config, options).map((alert) => ({
    kind: "alert",
    name: alert.name,
    expr: alert.signal,
    source: alert.source,
  }));
  const panels: PromqlExpression[] = dashboardPanels(options).flatMap((panel) =>
    panel.targets.map((target) => ({
      kind: "panel" as const,
      name: `${panel.title} / ${target.legend}`,
      expr: target.expr.replaceAll("$__rate_interval", options.rateWindow),
      source: target.source ?? panel.source,
    })),
  );
  return [...alerts, ...panels];
}
