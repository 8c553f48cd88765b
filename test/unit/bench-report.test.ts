// report.json against its schema, report.html's charts, and the compact summary, on a report built
// from synthetic measurements (no database).
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import { LatencyRecorder } from "../../benchmarks/latency.ts";
import type { LoopResult } from "../../benchmarks/load-loops.ts";
import { renderHtmlReport, ninesOf, percentileChart } from "../../benchmarks/report-html.ts";
import { redactUrl, reportSchemaErrors, writeReport, type BenchmarkReport } from "../../benchmarks/report.ts";
import { buildScenarioResult, operationP95, perSecond } from "../../benchmarks/scenario-result.ts";
import { formatSummary, summarizeReport } from "../../benchmarks/summary.ts";
import { judge, TARGETS } from "../../benchmarks/targets.ts";
import { BASELINE_THROUGHPUT_RATIO, baselineSection, ratio } from "../../benchmarks/baseline.ts";

function loop(values: number[], errors = 0, operations: Record<string, number[]> = {}): LoopResult {
  const overall = new LatencyRecorder();
  values.forEach((value) => overall.recordMs(value));
  for (let i = 0; i < errors; i++) overall.recordError(new Error("connection reset"));
  const byOperation = new Map<string, LatencyRecorder>();
  for (const [name, samples] of Object.entries(operations)) {
    const recorder = new LatencyRecorder();
    samples.forEach((value) => recorder.recordMs(value));
    byOperation.set(name, recorder);
  }
  return { overall, byOperation, seconds: 2 };
}

const range = (count: number, scale: number) => Array.from({ length: count }, (_, i) => (i + 1) * scale);

function sampleReport(): BenchmarkReport {
  const search = buildScenarioResult(
    {
      id: "single-shard-search", title: "Single-shard vector search", description: "one namespace", loop: "closed", clients: 1,
      plan: { choice: "hnsw", namespaceRows: 4000, exactMaxRows: 2000, indexes: ["vector_items_embedding_hnsw_idx_102008"], usesHnswIndex: true, shards: 1, workers: 1, hnswShards: 1 },
    },
    loop(range(1000, 0.005)),
    [perSecond(1000, 2, "queries/s")],
    { k: 10, mean: 0.97, min: 0.8, sampleSize: 50, shortResults: 0, minRows: 10 },
    [{ target: TARGETS.searchP95, value: ({ latency }) => latency.p95 }],
  );
  const mixed = buildScenarioResult(
    { id: "mixed-open-loop", title: "Mixed <open> loop", description: "mixed", loop: "open", clients: 8, offeredRate: 500 },
    { ...loop(range(900, 0.02), 2, { "single-shard": range(800, 0.02), "cross-shard": range(100, 0.05) }), dispatchLag: loop(range(10, 0.1)).overall },
    [perSecond(900, 2, "operations/s")],
    null,
    [
      { target: TARGETS.searchP95, value: ({ operations }) => operationP95(operations, "single-shard") },
      { target: TARGETS.crossShardP95, value: ({ operations }) => operationP95(operations, "insert") }, // never ran: NaN
    ],
  );
  return {
    schemaVersion: 1,
    tool: "dpc-bench",
    mode: "quick",
    startedAt: "2025-01-01T00:00:00.000Z",
    finishedAt: "2025-01-01T00:01:00.000Z",
    durationSeconds: 60,
    url: redactUrl("postgresql://app:secret@127.0.0.1:6432/vectors"),
    environment: {
      serverVersion: "15.20",
      database: "vectors",
      user: "app",
      vectorExtension: { variant: "pgvector", name: "vector", version: "0.8.0" },
      citus: { present: false, version: null, workers: 0 },
      hnswAccessMethod: "hnsw",
      settings: { "hnsw.ef_search": "40", "hnsw.iterative_scan": "strict_order" },
    },
    dataset: {
      rows: 5000, dimensions: 384, namespaces: 12, clusters: 32, seed: 42, distributed: false, shardCount: null,
      hnsw: { accessMethod: "hnsw", m: 16, efConstruction: 64, efSearch: "40" }, loadSeconds: 0.6, indexBuildSeconds: 0.9,
    },
    plans: {
      singleShard: { choice: "hnsw", namespaceRows: 4000, exactMaxRows: 2000, indexes: ["vector_items_embedding_hnsw_idx"], usesHnswIndex: true, shards: 1, workers: 1, hnswShards: 1 },
      crossShard: { choice: "exact", namespaceRows: 1600, exactMaxRows: 2000, indexes: [], usesHnswIndex: false, shards: 12, workers: 2, hnswShards: 0 },
    },
    scenarios: [search, mixed],
    loadGenerator: { clients: 8, threads: 1, seconds: 3, suiteQps: 24000, pgbenchQps: 50000, ratio: 0.48, pgbenchCommand: "pgbench -n -f select1.sql -c 8 -j 1 -T 3 <url>", note: "" },
    notes: ["citus extension absent: tables are local, not distributed"],
    verdict: "fail",
  };
}

const onDisk = (report: BenchmarkReport) => JSON.parse(JSON.stringify(report));

test("a report built from measurements matches report.schema.json", (t) => {
  t.deepEqual(reportSchemaErrors(onDisk(sampleReport())), []);
});

test("the schema rejects missing fields, unknown verdicts and clear-text passwords", (t) => {
  const report = onDisk(sampleReport());
  delete report.scenarios[0].latencyMs.p95;
  report.verdict = "maybe";
  report.url = "postgresql://app:secret@host/db";
  const errors = reportSchemaErrors(report).join("\n");
  t.regex(errors, /scenarios\/0\/latencyMs must have required property 'p95'/);
  t.regex(errors, /\/verdict must be equal to one of the allowed values/);
  t.regex(errors, /\/url must NOT be valid/);
});

test("the load generator's thread count: optional (older reports lack it), a positive integer when present", (t) => {
  const report = onDisk(sampleReport());
  delete report.loadGenerator.threads;
  t.deepEqual(reportSchemaErrors(report), []);
  report.loadGenerator.threads = 0;
  t.regex(reportSchemaErrors(report).join("\n"), /loadGenerator\/threads must be >= 1/);
});

test("report.html names the load generator's threads", (t) => {
  t.true(renderHtmlReport(onDisk(sampleReport())).includes("SELECT 1 with 8 clients on 1 thread for 3 s"));
});

test("the url is stored without its password", (t) => {
  t.is(sampleReport().url, "postgresql://app:***@127.0.0.1:6432/vectors");
});

test("checks: a latency judged per operation, a never-measured value fails, success rate always judged", (t) => {
  const mixed = sampleReport().scenarios[1];
  t.deepEqual(mixed.checks.map((c) => [c.target, c.verdict]), [["search-p95", "warn"], ["cross-shard-p95", "fail"], ["success-rate", "pass"]]);
  t.is(mixed.verdict, "fail");
  t.is(mixed.successRate, 0.9978);
  t.is(mixed.firstError, "connection reset");
  t.is(mixed.operations.length, 2);
});

test("recall is judged: at least 0.95 passes, anything below fails the scenario", (t) => {
  const search = sampleReport().scenarios[0];
  t.deepEqual(search.checks.find((c) => c.target === "recall-at-k"), {
    target: "recall-at-k", description: "recall@k against exact search", value: 0.97, goal: 0.95, critical: 0.95, unit: "ratio", direction: "above", verdict: "pass",
  });
  t.is(judge(TARGETS.recall, 0.95), "pass");
  t.is(judge(TARGETS.recall, 0.949), "fail");
});

test("k rows are judged: a scenario whose sampled searches lost rows fails", (t) => {
  const search = sampleReport().scenarios[0];
  t.is(search.checks.find((c) => c.target === "k-rows")?.verdict, "pass");
  t.is(judge(TARGETS.kRows, 0), "pass");
  t.is(judge(TARGETS.kRows, 1), "fail");
  t.regex(renderHtmlReport(sampleReport()), /<td>k \(min 10\)<\/td>/);
});

test("each search scenario states the shards and workers one query touches; report.html shows them", (t) => {
  const report = sampleReport();
  t.deepEqual(report.scenarios[0].plan, { choice: "hnsw", namespaceRows: 4000, exactMaxRows: 2000, indexes: ["vector_items_embedding_hnsw_idx_102008"], usesHnswIndex: true, shards: 1, workers: 1, hnswShards: 1 });
  t.is(report.scenarios[1].plan, null);
  t.regex(renderHtmlReport(report), /<td>hnsw \(4000 rows\) · 1 \/ 1 \(HNSW on 1\)<\/td>/);
});

test("report.html is self-contained: inline SVG charts, no scripts, no external references", (t) => {
  const html = renderHtmlReport(onDisk(sampleReport()));
  t.is((html.match(/<svg /g) ?? []).length, 2);
  t.notRegex(html, /<script|<link|src=|href=|@import|url\(/i);
  t.true(html.includes("Mixed &lt;open&gt; loop"));
});

test("the chart's percentile axis is in nines", (t) => {
  t.is(ninesOf(0), 0);
  t.is(Number(ninesOf(90).toFixed(6)), 1);
  t.is(Number(ninesOf(99.9).toFixed(6)), 3);
  t.regex(percentileChart([{ percentile: 50, latencyMs: 1 }]), /too few samples/);
});

test("writeReport validates, then writes report.json and report.html", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "dpc-report-test-"));
  try {
    const files = writeReport(sampleReport(), dir);
    const written = JSON.parse(readFileSync(files.json, "utf8"));
    t.is(written.scenarios[1].checks[1].value, null); // NaN is stored as null
    t.regex(readFileSync(files.html, "utf8"), /^<!doctype html>/);
    const broken = { ...sampleReport(), verdict: "maybe" } as unknown as BenchmarkReport;
    t.throws(() => writeReport(broken, join(dir, "broken")), { message: /does not match report.schema.json/ });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the summary for stack outputs: per scenario p95, throughput, recall and verdict", (t) => {
  const summary = summarizeReport(sampleReport());
  t.is(summary.verdict, "fail");
  t.deepEqual(summary.failed, ["mixed-open-loop: cross-shard-p95"]);
  t.deepEqual(summary.scenarios[0], { id: "single-shard-search", p95Ms: 4.751, throughput: 500, throughputUnit: "queries/s", recall: 0.97, verdict: "pass", shortResults: 0, plan: "hnsw/1" });
  t.is(summary.loadGeneratorRatio, 0.48);
  t.regex(formatSummary(summary), /single-shard-search +4\.75 +500 queries\/s +0\.970 +pass/);
});

// The single-node baseline (issue 16): the same scenarios on a plain node, figure by figure.
function withBaseline(): BenchmarkReport {
  const report = sampleReport();
  const node = sampleReport();
  // The node: twice the throughput, half the latency of the cluster's search scenario.
  const nodeSearch = buildScenarioResult(
    { id: "single-shard-search", title: "Single-shard vector search", description: "one namespace", loop: "closed", clients: 1,
      plan: { choice: "exact", namespaceRows: 4000, exactMaxRows: 2000, indexes: [], usesHnswIndex: false, shards: 1, workers: 1, hnswShards: 0 } },
    loop(range(1000, 0.0025)),
    [perSecond(4000, 2, "queries/s")],
    { k: 10, mean: 1, min: 1, sampleSize: 50, shortResults: 0, minRows: 10 },
    [],
  );
  report.baseline = baselineSection(redactUrl("postgresql://app:pw@127.0.8.4/vectors"), node.environment, report.scenarios, [nodeSearch, node.scenarios[1]]);
  return report;
}

test("baseline: each figure beside the node's with the ratio; a search scenario under a third of the node's throughput warns", (t) => {
  const [search, mixed] = withBaseline().baseline!.scenarios;
  t.deepEqual(search.throughput, { value: 500, baseline: 2000, ratio: 0.25, unit: "queries/s" });
  t.is(search.p95Ms.ratio, ratio(search.p95Ms.value, search.p95Ms.baseline));
  t.true(search.p95Ms.ratio! > 1.9 && search.p95Ms.ratio! < 2.1);
  t.deepEqual(search.recall, { value: 0.97, baseline: 1 });
  t.deepEqual(search.shortResults, { value: 0, baseline: 0 });
  t.deepEqual(search.plan, { value: { choice: "hnsw", tasks: 1 }, baseline: { choice: "exact", tasks: 1 } });
  t.is(search.checks[0].target, "baseline-throughput-ratio");
  t.is(search.verdict, "warn");
  t.deepEqual(mixed.checks, [], "no throughput-ratio check without searches");
  t.is(ratio(1, 0), null);
  t.is(judge(BASELINE_THROUGHPUT_RATIO, 0.34), "pass");
});

test("baseline: the report validates, report.html and the terminal table show it side by side", (t) => {
  const report = withBaseline();
  t.deepEqual(reportSchemaErrors(onDisk(report)), []);
  t.deepEqual(reportSchemaErrors(onDisk({ ...sampleReport(), baseline: null })), []);
  const html = renderHtmlReport(report);
  t.regex(html, /<h2>Single-node baseline<\/h2>/);
  t.regex(html, /<td>500 \/ 2000 queries\/s<\/td><td>×0.25<\/td>/);
  t.regex(html, /hnsw, 1 task \/ exact, 1 task/);
  t.regex(renderHtmlReport(sampleReport()), /No single-node baseline/);
  const table = formatSummary(summarizeReport(report));
  t.regex(table, /with a single-node baseline/);
  t.regex(table, /single-shard-search .* 500 +2000 +x0\.25 +0\.970 +1\.000 +0 +hnsw\/1  pass/);
});

test("baseline: the URL is stored without its password", (t) => {
  const report = onDisk(withBaseline());
  t.regex(report.baseline.url, /app:\*\*\*@127\.0\.8\.4/);
  report.baseline.url = "postgresql://app:secret@127.0.8.4/vectors";
  t.regex(reportSchemaErrors(report).join("\n"), /\/baseline/);
});
