// Monitoring files, checked by the real tools: promtool validates prometheus.yml and the alert rules and
// runs every alert's unit test; the dashboard model and the exporter queries are checked here.
import test from "ava";
import { execFile } from "node:child_process";
import { mkdtemp, mkdir, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parse as parseSql } from "libpg-query";
import { parse as parseYaml } from "yaml";
import { parseClusterConfig, planTopology, type Topology } from "../../components/spec.ts";
import type { Addressing } from "../../components/render/types.ts";
import {
  ALERT_CATEGORIES,
  DEFAULT_ALERT_OPTIONS,
  EXPORTER_PORTS,
  JOBS,
  MONITORING_FILES,
  PROMETHEUS_DATASOURCE,
  alertDefinitions,
  buildDashboard,
  dashboardPanels,
  exporterQueries,
  promqlExpressions,
  renderMonitoringFiles,
  runbookAnchor,
  type MetricSource,
  type MonitoringOptions,
} from "../../monitoring/index.ts";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

const config = parseClusterConfig({ clusterName: "dpc", coordinatorMembers: 3, workerGroups: 2, workerMembers: 2, etcdMembers: 3 });
const topology = planTopology(config);

/** Loopback addresses, as the local runner gives them: PostgreSQL nodes 127.0.2.x, etcd 127.0.1.x. */
function loopbackAddressing(topology: Topology): Addressing {
  const nodeAddress = new Map(topology.groups.flat().map((node, i) => [node.name, `127.0.2.${i + 1}`]));
  const at = (address: string) => ({ listen: address, connect: address });
  return {
    postgres: (node) => at(nodeAddress.get(node.name)!),
    etcd: (member) => at(`127.0.1.${member.index + 1}`),
    haproxy: at("127.0.0.1"),
    pgbouncer: at("127.0.0.1"),
    clusterNetwork: "127.0.0.0/8",
  };
}
const addressing = loopbackAddressing(topology);

function options(citus: boolean): MonitoringOptions {
  return {
    citus,
    scrapeInterval: "2s",
    benchmarkTarget: "127.0.0.1:9464",
    prometheusUrl: "http://127.0.0.1:9090",
    dashboardsDir: "/var/lib/grafana/dashboards",
  };
}

/** Renders every monitoring file into a fresh directory; returns the directory. */
async function renderInto(citus: boolean): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), `monitoring-${citus ? "citus" : "plain"}-`));
  const files = renderMonitoringFiles(config, topology, addressing, options(citus));
  for (const [key, relative] of Object.entries(MONITORING_FILES)) {
    const file = path.join(dir, relative);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, files[key as keyof typeof MONITORING_FILES]);
  }
  return dir;
}

interface ToolResult {
  code: number;
  output: string;
}

function promtool(args: string[], cwd: string): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    execFile("promtool", args, { cwd }, (error, stdout, stderr) => {
      if (error && (error as NodeJS.ErrnoException).code === "ENOENT") {
        reject(new Error("promtool not found on PATH: it comes with Debian's `prometheus` package; run scripts/install.sh as root"));
        return;
      }
      resolve({ code: error ? Number(error.code ?? 1) : 0, output: `${stdout}${stderr}` });
    });
  });
}

for (const citus of [false, true]) {
  const variant = citus ? "with Citus" : "without Citus";

  test(`prometheus.yml and its rule file pass promtool check config (${variant})`, async (t) => {
    const dir = await renderInto(citus);
    const result = await promtool(["check", "config", MONITORING_FILES.prometheusConfig], dir);
    t.is(result.code, 0, result.output);
    t.regex(result.output, /SUCCESS/);
  });

  test(`alert rules pass promtool check rules (${variant})`, async (t) => {
    const dir = await renderInto(citus);
    const result = await promtool(["check", "rules", MONITORING_FILES.alertRules], dir);
    t.is(result.code, 0, result.output);
    t.regex(result.output, new RegExp(`SUCCESS: ${alertDefinitions(config, { ...DEFAULT_ALERT_OPTIONS, citus }).length} rules found`));
  });

  test(`every alert fires past its threshold and for, and stays silent just below (promtool test rules, ${variant})`, async (t) => {
    const dir = await renderInto(citus);
    const result = await promtool(["test", "rules", MONITORING_FILES.alertRuleTests], dir);
    t.is(result.code, 0, result.output);
    t.regex(result.output, /SUCCESS/);
    // Two test groups per alert: one firing, one silent.
    const tests = parseYaml(await readFile(path.join(dir, MONITORING_FILES.alertRuleTests), "utf8")).tests as Array<{ name: string }>;
    t.is(tests.length, 2 * alertDefinitions(config, { ...DEFAULT_ALERT_OPTIONS, citus }).length);
  });

  test(`dashboard and panel queries are valid PromQL (${variant})`, async (t) => {
    // Recording rules are the cheapest way to have promtool parse arbitrary expressions.
    const rules = dashboardPanels({ citus }).flatMap((panel) => panel.targets.map((target) => target.expr.replaceAll("$__rate_interval", "1m")));
    const document = { groups: [{ name: "panels", rules: rules.map((expr, i) => ({ record: `panel:query_${i}`, expr })) }] };
    const dir = await mkdtemp(path.join(tmpdir(), "panel-queries-"));
    await writeFile(path.join(dir, "panels.yml"), JSON.stringify(document));
    const result = await promtool(["check", "rules", "panels.yml"], dir);
    t.is(result.code, 0, result.output);
  });

  test(`every alert and panel expression is listed with the component it needs (${variant})`, (t) => {
    const sources: MetricSource[] = ["postgres_exporter", "patroni", "pgbouncer_exporter", "etcd", "haproxy", "benchmark", "citus"];
    const expressions = promqlExpressions(config, { ...DEFAULT_ALERT_OPTIONS, citus, rateWindow: "1m" });
    const alerts = alertDefinitions(config, { ...DEFAULT_ALERT_OPTIONS, citus });
    const panelQueries = dashboardPanels({ citus }).flatMap((panel) => panel.targets);
    t.is(expressions.length, alerts.length + panelQueries.length);
    for (const expression of expressions) {
      t.true(sources.includes(expression.source), `${expression.name}: ${expression.source}`);
      t.true(expression.expr.length > 0);
      t.false(expression.expr.includes("$__"), `${expression.name} still has a Grafana variable`);
    }
    t.is(expressions.some((e) => e.source === "citus"), citus);
  });
}

test("prometheus.yml scrapes every component, with citus_group and member labels on every PostgreSQL node", async (t) => {
  const files = renderMonitoringFiles(config, topology, addressing, options(false));
  const prometheus = parseYaml(files.prometheusConfig);
  t.is(prometheus.global.scrape_interval, "2s");
  t.deepEqual(prometheus.rule_files, ["alerts.yml"]);
  const jobs = new Map<string, { metrics_path?: string; static_configs: Array<{ targets: string[]; labels?: Record<string, string> }> }>(
    prometheus.scrape_configs.map((job: { job_name: string }) => [job.job_name, job]),
  );
  t.deepEqual([...jobs.keys()].sort(), Object.values(JOBS).sort());
  const nodes = topology.groups.flat();
  for (const [job, port] of [[JOBS.postgres, EXPORTER_PORTS.postgresExporter], [JOBS.patroni, 8008]] as const) {
    const targets = jobs.get(job)!.static_configs;
    t.is(targets.length, nodes.length);
    for (const node of nodes) {
      const target = targets.find((c) => c.targets[0] === `${addressing.postgres(node).connect}:${port}`);
      t.deepEqual(target?.labels, { citus_group: String(node.group), member: node.name }, `${job} ${node.name}`);
    }
  }
  t.deepEqual(jobs.get(JOBS.etcd)!.static_configs.map((c) => c.targets[0]), ["127.0.1.1:2379", "127.0.1.2:2379", "127.0.1.3:2379"]);
  t.deepEqual(jobs.get(JOBS.haproxy)!.static_configs[0].targets, ["127.0.0.1:7000"]);
  t.is(jobs.get(JOBS.haproxy)!.metrics_path, "/metrics");
  t.deepEqual(jobs.get(JOBS.pgbouncer)!.static_configs[0].targets, ["127.0.0.1:9127"]);
  t.deepEqual(jobs.get(JOBS.benchmark)!.static_configs[0].targets, ["127.0.0.1:9464"]);
});

test("alerts: at least 15 in the 7 categories, each with severity, category, summary, description and runbook_url", async (t) => {
  const dir = await renderInto(true);
  const rules = parseYaml(await readFile(path.join(dir, MONITORING_FILES.alertRules), "utf8")).groups.flatMap(
    (group: { rules: unknown[] }) => group.rules,
  ) as Array<{ alert: string; expr: string; for: string; labels: Record<string, string>; annotations: Record<string, string> }>;
  t.true(rules.length >= 15, `${rules.length} alerts`);
  t.deepEqual([...new Set(rules.map((r) => r.labels.category))].sort(), [...ALERT_CATEGORIES].sort());
  t.is(new Set(rules.map((r) => r.alert)).size, rules.length, "alert names are unique");
  for (const rule of rules) {
    t.true(["critical", "warning", "info"].includes(rule.labels.severity), `${rule.alert} severity`);
    t.truthy(rule.annotations.summary, `${rule.alert} summary`);
    t.truthy(rule.annotations.description, `${rule.alert} description`);
    t.is(rule.annotations.runbook_url, `monitoring/runbook.md#${runbookAnchor(rule.alert)}`);
    t.regex(rule.for, /^\d+[smh]$/, `${rule.alert} has a for`);
  }
});

test("every runbook_url anchor has an entry in monitoring/runbook.md, and every entry an alert", async (t) => {
  const runbook = await readFile(path.join(repoRoot, "monitoring/runbook.md"), "utf8");
  // GitHub's anchors: the heading in lower case, spaces as dashes, other punctuation dropped.
  const anchors = [...runbook.matchAll(/^## (.+)$/gm)].map((m) => m[1].trim().toLowerCase().replace(/[^\w\- ]/g, "").replace(/ /g, "-"));
  const alerts = alertDefinitions(config, { ...DEFAULT_ALERT_OPTIONS, citus: true }).map((a) => runbookAnchor(a.name));
  for (const anchor of alerts) t.true(anchors.includes(anchor), `runbook.md has no "## " heading for #${anchor}`);
  t.deepEqual([...anchors].sort(), [...alerts].sort());
});

test("dashboard: the required panels, each with the provisioned datasource and non-empty queries", (t) => {
  const files = renderMonitoringFiles(config, topology, addressing, options(true));
  const provisioned = parseYaml(files.grafanaDatasource).datasources[0];
  t.is(provisioned.type, "prometheus");
  t.is(provisioned.uid, PROMETHEUS_DATASOURCE.uid);
  t.is(provisioned.jsonData.timeInterval, "2s");
  t.is(parseYaml(files.grafanaDashboardProvider).providers[0].options.path, "/var/lib/grafana/dashboards");

  const dashboard = buildDashboard(config, { citus: true });
  t.deepEqual(JSON.parse(files.dashboard), JSON.parse(JSON.stringify(dashboard)));
  const panels = (dashboard.panels ?? []) as Array<{
    id?: number;
    type: string;
    title?: string;
    datasource?: { type?: string; uid?: string };
    targets?: Array<{ expr?: string; refId?: string; datasource?: { uid?: string } }>;
  }>;
  const required = [
    "Vector search latency p95 / p99", "Vector search QPS", "PostgreSQL connections by state", "Cache hit ratio",
    "Replication lag", "Table sizes", "Row counts", "Vector search error rate", "Index sizes", "Patroni roles per group",
  ];
  const titles = panels.map((p) => p.title);
  for (const title of required) t.true(titles.includes(title), `panel "${title}"`);
  t.true(panels.length >= 10);
  t.is(new Set(panels.map((p) => p.id)).size, panels.length, "panel ids are unique");
  for (const panel of panels) {
    t.deepEqual(panel.datasource, { type: provisioned.type, uid: provisioned.uid }, `${panel.title} datasource`);
    t.true((panel.targets ?? []).length > 0, `${panel.title} has queries`);
    for (const target of panel.targets ?? []) {
      t.true((target.expr ?? "").trim().length > 0, `${panel.title} ${target.refId} has a query`);
      t.is(target.datasource?.uid, provisioned.uid, `${panel.title} ${target.refId} datasource`);
    }
  }
  const latency = panels.find((p) => p.title === "Vector search latency p95 / p99")!;
  t.deepEqual(latency.targets!.map((q) => q.expr!.match(/histogram_quantile\((0\.\d+)/)?.[1]), ["0.95", "0.99"]);
});

test("exporter queries: postgres_exporter's format, SQL that parses, and no Citus table without Citus", async (t) => {
  for (const citus of [false, true]) {
    const files = renderMonitoringFiles(config, topology, addressing, options(citus));
    const document = parseYaml(files.exporterQueries) as Record<string, { query: string; master: boolean; metrics: Array<Record<string, { usage: string; description: string }>> }>;
    t.is(document.citus_placement !== undefined, citus);
    for (const [name, query] of Object.entries(document)) {
      t.true(query.master, `${name} runs on the connection's database only`);
      await t.notThrowsAsync(parseSql(query.query), `${name} is valid SQL`);
      for (const metric of query.metrics) {
        const [column, spec] = Object.entries(metric)[0];
        t.is(Object.keys(metric).length, 1, `${name}.${column}`);
        t.true(["LABEL", "GAUGE", "COUNTER"].includes(spec.usage), `${name}.${column} usage`);
        t.truthy(spec.description);
      }
      if (!citus) t.notRegex(query.query, /pg_dist_|citus_/, `${name} needs no Citus`);
    }
  }
});

test("every custom metric an alert or panel uses is produced by an exporter query", (t) => {
  const produced = new Set(
    Object.entries(exporterQueries({ citus: true })).flatMap(([name, query]) =>
      query.columns.filter(([, usage]) => usage !== "LABEL").map(([column]) => `${name}_${column}`),
    ),
  );
  // postgres_exporter's own metrics (0.11 defaults), and label names that look like metrics.
  const builtIn = new Set(["pg_up", "pg_database_size_bytes", "pg_settings_max_connections"]);
  const labelNames = new Set(["citus_group", "citus_groupid"]);
  const expressions = promqlExpressions(config, { ...DEFAULT_ALERT_OPTIONS, citus: true, rateWindow: "1m" });
  for (const { name, expr } of expressions) {
    for (const [metric] of expr.matchAll(/\b(?:pg|citus)_[a-z_]+\b/g)) {
      if (labelNames.has(metric)) continue;
      t.true(builtIn.has(metric) || produced.has(metric), `${name} uses ${metric}, which no exporter query produces`);
    }
  }
});
