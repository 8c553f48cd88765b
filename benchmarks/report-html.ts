// report.html: one self-contained page (inline CSS and SVG, no scripts, no external assets) with a
// summary table, each scenario's checks and its latency distribution drawn as a percentile curve.
import type { PercentilePoint } from "./latency.ts";
import type { BenchmarkReport } from "./report.ts";
import type { ScenarioResult } from "./scenario-result.ts";

const escapeHtml = (text: string) =>
  text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

const WIDTH = 640;
const HEIGHT = 240;
const MARGIN = { left: 56, right: 16, top: 14, bottom: 34 };
const NINES_LABELS = ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%"];

/** Distance along a "nines" axis: 0 for p0, 1 for p90, 2 for p99 ... */
export function ninesOf(percentile: number): number {
  return percentile >= 100 ? Infinity : 0 - Math.log10(1 - percentile / 100); // 0 - x: never -0
}

function niceCeiling(value: number): number {
  if (value <= 0) return 1;
  const magnitude = 10 ** Math.floor(Math.log10(value));
  return [1, 2, 2.5, 5, 10].map((step) => step * magnitude).find((candidate) => candidate >= value) ?? 10 * magnitude;
}

/** An SVG line chart of latency (ms) against percentile. */
export function percentileChart(points: PercentilePoint[], latencyLimits: { label: string; ms: number }[] = []): string {
  const curve = points.filter((point) => point.percentile < 100);
  if (curve.length < 2) return `<p class="muted">too few samples for a distribution chart</p>`;
  const maxNines = Math.max(1, Math.ceil(Math.max(...curve.map((point) => ninesOf(point.percentile)))));
  const dataMax = Math.max(...curve.map((point) => point.latencyMs));
  const shownLimits = latencyLimits.filter((limit) => limit.ms <= dataMax * 1.5);
  const yMax = niceCeiling(Math.max(dataMax, ...shownLimits.map((limit) => limit.ms)) * 1.05);
  const plotWidth = WIDTH - MARGIN.left - MARGIN.right;
  const plotHeight = HEIGHT - MARGIN.top - MARGIN.bottom;
  const x = (percentile: number) => MARGIN.left + (ninesOf(percentile) / maxNines) * plotWidth;
  const y = (ms: number) => MARGIN.top + plotHeight - (ms / yMax) * plotHeight;
  const parts: string[] = [];
  for (let step = 0; step <= 4; step++) {
    const ms = (yMax * step) / 4;
    parts.push(`<line x1="${MARGIN.left}" x2="${WIDTH - MARGIN.right}" y1="${y(ms).toFixed(1)}" y2="${y(ms).toFixed(1)}" class="grid"/>`);
    parts.push(`<text x="${MARGIN.left - 6}" y="${(y(ms) + 4).toFixed(1)}" text-anchor="end">${Number(ms.toPrecision(3))}</text>`);
  }
  for (let nines = 0; nines <= maxNines; nines++) {
    const px = MARGIN.left + (nines / maxNines) * plotWidth;
    parts.push(`<line x1="${px.toFixed(1)}" x2="${px.toFixed(1)}" y1="${MARGIN.top}" y2="${MARGIN.top + plotHeight}" class="grid"/>`);
    parts.push(`<text x="${px.toFixed(1)}" y="${HEIGHT - 16}" text-anchor="middle">${NINES_LABELS[nines] ?? ""}</text>`);
  }
  for (const limit of shownLimits) {
    parts.push(`<line x1="${MARGIN.left}" x2="${WIDTH - MARGIN.right}" y1="${y(limit.ms).toFixed(1)}" y2="${y(limit.ms).toFixed(1)}" class="limit"/>`);
    parts.push(`<text x="${WIDTH - MARGIN.right - 4}" y="${(y(limit.ms) - 4).toFixed(1)}" text-anchor="end" class="limit-label">${escapeHtml(limit.label)} ${limit.ms} ms</text>`);
  }
  const path = curve.map((point) => `${x(point.percentile).toFixed(1)},${y(point.latencyMs).toFixed(1)}`).join(" ");
  parts.push(`<polyline points="${path}" class="curve"/>`);
  parts.push(`<text x="${MARGIN.left + plotWidth / 2}" y="${HEIGHT - 2}" text-anchor="middle">percentile</text>`);
  parts.push(`<text x="12" y="${MARGIN.top + plotHeight / 2}" text-anchor="middle" transform="rotate(-90 12 ${MARGIN.top + plotHeight / 2})">latency, ms</text>`);
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${WIDTH} ${HEIGHT}" width="${WIDTH}" height="${HEIGHT}" role="img" aria-label="latency by percentile">${parts.join("")}</svg>`;
}

const verdictBadge = (verdict: string) => `<span class="badge ${verdict}">${verdict}</span>`;

function scenarioSection(scenario: ScenarioResult): string {
  const limits = scenario.checks
    .filter((c) => c.unit === "ms")
    .flatMap((c) => [{ label: `${c.target} goal`, ms: c.goal }, { label: `${c.target} critical`, ms: c.critical }]);
  const checks = scenario.checks
    .map(
      (c) =>
        `<tr><td>${escapeHtml(c.description)}</td><td>${c.value ?? "n/a"} ${escapeHtml(c.unit)}</td><td>${c.direction === "below" ? "&lt;" : "&gt;"} ${c.goal}</td><td>${c.direction === "below" ? "&lt;" : "&gt;"} ${c.critical}</td><td>${verdictBadge(c.verdict)}</td></tr>`,
    )
    .join("");
  const operations = scenario.operations.length
    ? `<table><tr><th>operation</th><th>count</th><th>errors</th><th>p50</th><th>p95</th><th>p99</th><th>max (ms)</th></tr>${scenario.operations
        .map((o) => `<tr><td>${escapeHtml(o.name)}</td><td>${o.count}</td><td>${o.errors}</td><td>${o.latencyMs.p50}</td><td>${o.latencyMs.p95}</td><td>${o.latencyMs.p99}</td><td>${o.latencyMs.max}</td></tr>`)
        .join("")}</table>`
    : "";
  const error = scenario.firstError ? `<p class="error">first error: ${escapeHtml(scenario.firstError)}</p>` : "";
  return `<section>
<h2>${escapeHtml(scenario.title)} ${verdictBadge(scenario.verdict)}</h2>
<p>${escapeHtml(scenario.description)} (${scenario.loop} loop).</p>
${error}
<table><tr><th>check</th><th>measured</th><th>goal</th><th>critical</th><th>verdict</th></tr>${checks}</table>
${operations}
${percentileChart(scenario.distribution, limits)}
</section>`;
}

function summaryTable(report: BenchmarkReport): string {
  const rows = report.scenarios
    .map((s) => {
      const throughput = s.throughput.map((t) => `${t.value} ${t.unit}`).join("<br>");
      const recall = s.recall ? `${s.recall.mean} (n=${s.recall.sampleSize}, min ${s.recall.min})` : "";
      const rows = s.recall ? `${s.recall.shortResults === 0 ? "k" : `${s.recall.shortResults} short`} (min ${s.recall.minRows})` : "";
      const plan = s.plan ? `${s.plan.choice} (${s.plan.namespaceRows} rows) · ${s.plan.shards} / ${s.plan.workers} (HNSW on ${s.plan.hnswShards})` : "";
      return `<tr><td>${escapeHtml(s.title)}</td><td>${s.count}</td><td>${s.errors}</td><td>${s.latencyMs.p50}</td><td>${s.latencyMs.p95}</td><td>${s.latencyMs.p99}</td><td>${s.latencyMs.max}</td><td>${throughput}</td><td>${recall}</td><td>${rows}</td><td>${plan}</td><td>${verdictBadge(s.verdict)}</td></tr>`;
    })
    .join("");
  return `<table><tr><th>scenario</th><th>count</th><th>errors</th><th>p50</th><th>p95</th><th>p99</th><th>max (ms)</th><th>throughput</th><th>recall@${report.scenarios.find((s) => s.recall)?.recall?.k ?? 10}</th><th>rows returned</th><th>plan · shards (tasks) / workers per search</th><th>verdict</th></tr>${rows}</table>`;
}

function baselineTable(report: BenchmarkReport): string {
  const baseline = report.baseline;
  if (!baseline) return `<p class="muted">No single-node baseline in this run (--baseline-url).</p>`;
  const ratio = (value: number | null) => (value === null ? "-" : `×${value}`);
  const plan = (p: { choice: string; tasks: number } | null) => (p ? `${p.choice}, ${p.tasks} task${p.tasks === 1 ? "" : "s"}` : "");
  const num = (value: number | null) => (value === null ? "-" : String(value));
  const rows = baseline.scenarios
    .map(
      (c) =>
        `<tr><td>${escapeHtml(c.title)}</td><td>${c.p50Ms.value} / ${c.p50Ms.baseline}</td><td>${ratio(c.p50Ms.ratio)}</td><td>${c.p95Ms.value} / ${c.p95Ms.baseline}</td><td>${ratio(c.p95Ms.ratio)}</td>` +
        `<td>${c.throughput.value} / ${c.throughput.baseline} ${escapeHtml(c.throughput.unit)}</td><td>${ratio(c.throughput.ratio)}</td><td>${num(c.recall.value)} / ${num(c.recall.baseline)}</td>` +
        `<td>${num(c.shortResults.value)} / ${num(c.shortResults.baseline)}</td><td>${escapeHtml(plan(c.plan.value))} / ${escapeHtml(plan(c.plan.baseline))}</td><td>${verdictBadge(c.verdict)}</td></tr>`,
    )
    .join("");
  const env = baseline.environment;
  return `<h2>Single-node baseline</h2>
<p>The same data and queries on <code>${escapeHtml(baseline.url)}</code> (PostgreSQL ${escapeHtml(env.serverVersion)}, ${escapeHtml(env.vectorExtension.name)} ${escapeHtml(env.vectorExtension.version)}, Citus ${env.citus.present ? "present" : "absent"}), in the same run. Each cell: cluster / single node; ratio: cluster ÷ single node.</p>
<table><tr><th>scenario</th><th>p50 ms</th><th>ratio</th><th>p95 ms</th><th>ratio</th><th>throughput</th><th>ratio</th><th>recall</th><th>searches short of k</th><th>plan, tasks per search</th><th>verdict</th></tr>${rows}</table>`;
}

export function renderHtmlReport(report: BenchmarkReport): string {
  const env = report.environment;
  const data = report.dataset;
  const generator = report.loadGenerator;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Benchmark report (${report.mode}) ${escapeHtml(report.startedAt)}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2rem;color:#222;max-width:1000px}
table{border-collapse:collapse;margin:0.5rem 0 1rem}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
td:first-child,th:first-child{text-align:left}.badge{padding:1px 8px;border-radius:8px;color:#fff;font-size:0.85em}
.pass{background:#2e7d32}.warn{background:#ef8f00}.fail{background:#c62828}.muted{color:#777}.error{color:#c62828}
svg text{font-size:11px;fill:#444}.grid{stroke:#e4e4e4}.curve{fill:none;stroke:#1565c0;stroke-width:2}
.limit{stroke:#c62828;stroke-dasharray:5 4}.limit-label{fill:#c62828}
</style></head><body>
<h1>Benchmark report ${verdictBadge(report.verdict)}</h1>
<p>Mode <b>${report.mode}</b>, ${escapeHtml(report.startedAt)} to ${escapeHtml(report.finishedAt)} (${report.durationSeconds} s) against <code>${escapeHtml(report.url)}</code>:
PostgreSQL ${escapeHtml(env.serverVersion)}, ${escapeHtml(env.vectorExtension.name)} ${escapeHtml(env.vectorExtension.version)},
Citus ${env.citus.present ? `${escapeHtml(env.citus.version ?? "")} with ${env.citus.workers} workers` : "absent"}, access method ${escapeHtml(env.hnswAccessMethod)},
settings ${escapeHtml(Object.entries(env.settings).map(([k, v]) => `${k}=${v ?? "unset"}`).join(", "))}.</p>
<p>Data set: ${data.rows} rows x ${data.dimensions} dimensions in ${data.namespaces} namespaces (${data.clusters} clusters, seed ${data.seed}),
${data.distributed ? `distributed in ${data.shardCount} shards` : "local table (not distributed)"}; loaded in ${data.loadSeconds} s, HNSW (m=${data.hnsw.m}, ef_construction=${data.hnsw.efConstruction}) built in ${data.indexBuildSeconds} s.
Plans: single-shard uses ${escapeHtml(report.plans.singleShard.indexes.join(", ") || "no index")}; cross-shard uses ${escapeHtml(report.plans.crossShard.indexes.join(", ") || "no index")}.</p>
${report.notes.length ? `<ul>${report.notes.map((note) => `<li>${escapeHtml(note)}</li>`).join("")}</ul>` : ""}
${summaryTable(report)}
${baselineTable(report)}
<h2>Load generator</h2>
<p>SELECT 1 with ${generator.clients} clients${generator.threads ? ` on ${generator.threads} thread${generator.threads === 1 ? "" : "s"}` : ""} for ${generator.seconds} s: suite ${generator.suiteQps} queries/s${generator.pgbenchQps !== null ? `, pgbench ${generator.pgbenchQps} queries/s, ratio <b>${generator.ratio}</b>` : ""}. ${escapeHtml(generator.note)}</p>
${report.scenarios.map(scenarioSection).join("\n")}
</body></html>
`;
}
