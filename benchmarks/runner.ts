// Runs the whole suite: read the environment, load the data set, warm up, run each scenario, then
// the load-generator figure; returns the report (and writes it when an output directory is given).
import { MAX_HNSW_DIMENSIONS } from "../components/spec.ts";
import { CITUS_ABSENT_NOTE } from "../sql/apply.ts";
import { createAndLoadTable, dropTable } from "./bench-table.ts";
import { dialectOf, readEnvironment } from "./environment.ts";
import type { SearchMetrics } from "./metrics.ts";
import { MODE_PLANS, type BenchmarkOptions } from "./options.ts";
import { silentProgress, type Progress } from "./progress.ts";
import { redactUrl, writeReport, type BenchmarkReport } from "./report.ts";
import type { ScenarioResult } from "./scenario-result.ts";
import { bulkInsert } from "./scenarios/bulk-insert.ts";
import { loadGeneratorFigure } from "./scenarios/load-generator.ts";
import { mixedClosedLoop, mixedOpenLoop } from "./scenarios/mixed-load.ts";
import { concurrentSearch, crossShardSearch, singleShardSearch } from "./scenarios/search.ts";
import { explainSearch, search } from "./search-sql.ts";
import { baselineSection } from "./baseline.ts";
import { SuiteContext } from "./suite-context.ts";
import { worstVerdict } from "./targets.ts";
import { quietClient } from "../components/pg-client.ts";

export interface RunOutcome {
  report: BenchmarkReport;
  files?: { json: string; html: string };
}

const round = (value: number, places = 3) => Math.round(value * 10 ** places) / 10 ** places;

/** Untimed queries of both kinds, so caches and connections are warm before anything is measured. */
async function warmUp(context: SuiteContext): Promise<void> {
  const pool = context.pool(1);
  const queries = [...context.makeQueries("single-shard", context.plan.warmupQueries), ...context.makeQueries("cross-shard", context.plan.warmupQueries)];
  context.progress.begin("Warm-up (not measured)", queries.length);
  for (const query of queries) {
    await search(pool, context.dialect, query, context.k);
    context.progress.tick();
  }
  context.progress.end(`Warm-up: ${queries.length} queries, not measured`);
}

/**
 * Runs the suite on `options.url`, then, with `options.baselineUrl`, the same data set and queries
 * (same seeds) on that plain PostgreSQL node, and sets each figure beside the baseline's.
 */
export async function runBenchmark(options: BenchmarkOptions, progress: Progress = silentProgress, metrics?: SearchMetrics): Promise<RunOutcome> {
  const report = await runSuite(options, progress, metrics);
  if (options.baselineUrl) {
    progress.log(`Baseline: the same data and queries on ${redactUrl(options.baselineUrl)} ...`);
    // The open loop offers the node the same arrival rate as the cluster, so their latencies compare.
    const openLoopRate = options.openLoopRate ?? report.scenarios.find((s) => s.loop === "open")?.offeredRate ?? undefined;
    const baseline = await runSuite({ ...options, url: options.baselineUrl, skipPgbench: true, outDir: undefined, openLoopRate }, progress);
    if (baseline.environment.citus.present) {
      report.notes.push("the baseline node has the citus extension: it is not a plain single node");
    }
    report.baseline = baselineSection(baseline.url, baseline.environment, report.scenarios, baseline.scenarios);
    report.notes.push(...baseline.notes.map((note) => `baseline: ${note}`));
    report.finishedAt = new Date().toISOString();
    report.durationSeconds = round((Date.parse(report.finishedAt) - Date.parse(report.startedAt)) / 1000, 1);
    report.verdict = worstVerdict([report.verdict, report.baseline.verdict]);
  } else {
    report.baseline = null;
  }
  const files = options.outDir ? writeReport(report, options.outDir) : undefined;
  return { report, files };
}

async function runSuite(options: BenchmarkOptions, progress: Progress, metrics?: SearchMetrics): Promise<BenchmarkReport> {
  const startedAt = new Date();
  const plan = MODE_PLANS[options.mode];
  const notes: string[] = [];
  const setup = quietClient({ connectionString: options.url });
  // Idle through the scenarios: a lost connection surfaces on its next query, not as an uncaught event.
  setup.on("error", () => undefined);
  await setup.connect();
  let context: SuiteContext | undefined;
  try {
    const environment = await readEnvironment(setup);
    const dialect = dialectOf(environment);
    if (environment.vectorExtension.variant === "pgvector" && options.dimensions > MAX_HNSW_DIMENSIONS) {
      throw new Error(`--dimensions ${options.dimensions}: pgvector HNSW indexes take at most ${MAX_HNSW_DIMENSIONS}`);
    }
    const citus = environment.citus.present;
    if (!citus) notes.push(`${CITUS_ABSENT_NOTE}: "single-shard" and "cross-shard" searches compare one namespace with several on one node`);
    const efSearch = environment.settings[dialect.efSearchSetting] ?? null;
    if (efSearch !== null && Number(efSearch) < options.k) notes.push(`${dialect.efSearchSetting} = ${efSearch} is below k = ${options.k}: searches return at most ${efSearch} rows`);
    const data = { rows: options.rows, dimensions: options.dimensions, namespaces: plan.namespaces, clusters: plan.clusters, seed: options.seed };

    progress.log(`Loading ${data.rows} x ${data.dimensions} vectors and building the HNSW index ...`);
    const load = await createAndLoadTable(setup, {
      dialect, citus, hnswAccessMethod: environment.hnswAccessMethod, m: options.hnswM, efConstruction: options.hnswEfConstruction, shardCount: options.shardCount,
      efSearch: Number(efSearch ?? 40), exactMaxRows: options.exactMaxRows,
    }, data);
    progress.log(`  loaded in ${round(load.loadSeconds, 1)} s, index built in ${round(load.indexBuildSeconds, 1)} s`);

    context = new SuiteContext(options, plan, data, dialect, citus, progress, metrics);
    await warmUp(context);
    const plans = {
      singleShard: await explainSearch(setup, dialect, context.makeQueries("single-shard", 1)[0], options.k, options.exactMaxRows),
      crossShard: await explainSearch(setup, dialect, context.makeQueries("cross-shard", 1)[0], options.k, options.exactMaxRows),
    };
    for (const [kind, summary] of Object.entries(plans)) {
      notes.push(`${kind} searches: ${summary.namespaceRows} rows in the namespaces of a sample query, ${summary.choice === "exact" ? `at most ${summary.exactMaxRows}: exact search` : `above ${summary.exactMaxRows}: HNSW`} on ${summary.shards} shard(s)`);
      if (summary.choice === "hnsw" && !summary.usesHnswIndex) notes.push(`the planner does not use the HNSW index for ${kind} searches (indexes: ${summary.indexes.join(", ") || "none"}): their results are exact`);
    }

    const scenarios: ScenarioResult[] = [];
    scenarios.push(await singleShardSearch(context));
    scenarios.push(await crossShardSearch(context));
    scenarios.push(await concurrentSearch(context));
    scenarios.push(await bulkInsert(context, "insert"));
    scenarios.push(await bulkInsert(context, "copy"));
    const closed = await mixedClosedLoop(context);
    scenarios.push(closed);
    const rate = options.openLoopRate ?? Math.max(10, Math.round(closed.throughput[0].value / 2));
    if (options.openLoopRate === undefined) notes.push(`open-loop rate ${rate} operations/s: half of what the closed loop sustained`);
    scenarios.push(await mixedOpenLoop(context, rate));
    const busiest = Math.max(...scenarios.filter((s) => s.throughput[0].unit !== "rows/s").map((s) => s.throughput[0].value));
    const loadGenerator = await loadGeneratorFigure(context, busiest);

    await dropTable(setup);
    const finishedAt = new Date();
    const report: BenchmarkReport = {
      schemaVersion: 1,
      tool: "dpc-bench",
      mode: options.mode,
      startedAt: startedAt.toISOString(),
      finishedAt: finishedAt.toISOString(),
      durationSeconds: round((finishedAt.getTime() - startedAt.getTime()) / 1000, 1),
      url: redactUrl(options.url),
      environment,
      dataset: {
        ...data,
        distributed: load.distributed,
        shardCount: load.distributed ? options.shardCount : null,
        hnsw: { accessMethod: environment.hnswAccessMethod, m: options.hnswM, efConstruction: options.hnswEfConstruction, efSearch },
        loadSeconds: round(load.loadSeconds),
        indexBuildSeconds: round(load.indexBuildSeconds),
      },
      plans,
      scenarios,
      loadGenerator,
      notes,
      verdict: worstVerdict(scenarios.map((scenario) => scenario.verdict)),
    };
    return report;
  } finally {
    await context?.close();
    await setup.end();
  }
}
