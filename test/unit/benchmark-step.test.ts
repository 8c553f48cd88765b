// The post-deploy benchmark's work, without a database: what the BenchmarkRun resource hands the
// suite (an injected runner), what it logs, and how a failed run is reported.
import test from "ava";
import { benchmarkDataset, runBenchmarkStep, type BenchmarkStepInputs, type Summary } from "../../components/benchmark-step.ts";
import { parseClusterConfig } from "../../components/spec.ts";

const URL = "postgresql://app:s3cret-pw@localhost:6432/vectors";
const SUMMARY: Summary = {
  mode: "quick",
  verdict: "warn",
  failed: [],
  citus: true,
  scenarios: [{ id: "single-shard-search", p95Ms: 4.2, throughput: 800, throughputUnit: "queries/s", recall: 0.97, verdict: "warn" }],
  loadGeneratorRatio: 0.9,
  reportStartedAt: "2026-01-01T00:00:00.000Z",
};

const inputs = (overrides: Partial<BenchmarkStepInputs> = {}): BenchmarkStepInputs => ({
  url: URL,
  mode: "quick",
  schemaVersion: "008_x",
  runId: "",
  dataset: benchmarkDataset(parseClusterConfig({})),
  ...overrides,
});

test("benchmarkDataset: the deployed schema's dimensions, k and index settings", (t) => {
  const config = parseClusterConfig({ embeddingDimensions: 768, searchK: 20, hnswEfSearch: 80, hnswM: 24, hnswEfConstruction: 128, shardCount: 24 });
  t.deepEqual(benchmarkDataset(config), { dimensions: 768, k: 20, hnswM: 24, hnswEfConstruction: 128, shardCount: 24, exactMaxRows: 2000 });
  t.is(benchmarkDataset(parseClusterConfig({ searchExactMaxRows: 0 })).exactMaxRows, 0);
});

test("runs the suite once with the URL, mode and data set, and returns its summary", async (t) => {
  const calls: unknown[][] = [];
  const lines: string[] = [];
  const summary = await runBenchmarkStep(inputs({ mode: "full", runId: "r7" }), {
    runner: async (...args) => {
      calls.push(args);
      return SUMMARY;
    },
    log: (line) => lines.push(line),
  });
  t.is(summary, SUMMARY);
  t.deepEqual(calls, [[URL, "full", { dimensions: 384, k: 10, hnswM: 16, hnswEfConstruction: 64, shardCount: 12, exactMaxRows: 2000 }]]);
  t.is(lines[0], "benchmark: full run against localhost:6432 after schema 008_x (run r7)");
  t.regex(lines[1], /^benchmark \(quick\): WARN/);
  t.regex(lines[1], /single-shard-search/);
  t.false(lines.some((l) => l.includes("s3cret-pw")), "a log line holds the password");
});

test("a failed run throws, naming mode and endpoint, never the password", async (t) => {
  const cause = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:6432"), { code: "ECONNREFUSED" });
  const error = await t.throwsAsync(runBenchmarkStep(inputs(), { runner: async () => { throw cause; } }));
  t.is(error!.message, "benchmark: the quick run against localhost:6432 failed: connect ECONNREFUSED 127.0.0.1:6432");
  t.is((error as Error & { cause?: unknown }).cause, cause);
  t.false(error!.message.includes("s3cret-pw"));
});
