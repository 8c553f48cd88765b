// CLI parsing, the data set's determinism and the load loops' operation counts (no database).
import test from "ava";
import type pg from "pg";
import { ClusteredVectors, createRandom, STREAMS, vectorLiteral } from "../../benchmarks/dataset.ts";
import { runClosedLoop, runOpenLoop } from "../../benchmarks/load-loops.ts";
import { MODE_PLANS, parseArgs } from "../../benchmarks/options.ts";
import { parsePgbenchTps } from "../../benchmarks/pgbench.ts";

test("parseArgs: mode defaults, overrides and mistakes", (t) => {
  const options = parseArgs(["--url", "postgresql://x/db", "--mode", "full", "--out", "out", "--fail-on", "critical", "--dimensions", "128", "--rows", "2000"]);
  t.is(options.mode, "full");
  t.is(options.outDir, "out");
  t.is(options.failOn, "critical");
  t.is(options.dimensions, 128);
  t.is(options.rows, 2000);
  t.is(parseArgs(["--url", "u"]).rows, MODE_PLANS.quick.rows);
  t.is(parseArgs(["--url", "u"]).failOn, "never");
  t.throws(() => parseArgs(["--url", "u", "--mode", "huge"]), { message: /--mode must be/ });
  t.throws(() => parseArgs(["--url", "u", "--rows", "-1"]), { message: /--rows must be a positive integer/ });
  t.throws(() => parseArgs(["--url", "u", "--colour", "blue"]), { message: /unknown option --colour/ });
});

test("parseArgs: --exact-max-rows (default the stack's 2000) and a baseline node given by URL or started locally", (t) => {
  const url = ["--url", "postgresql://x/db"];
  t.is(parseArgs(url).exactMaxRows, 2000);
  t.is(parseArgs([...url, "--exact-max-rows", "0"]).exactMaxRows, 0);
  t.is(parseArgs([...url, "--exact-max-rows", "5000"]).exactMaxRows, 5000);
  for (const bad of ["-1", "1.5", "many", "1000001"]) {
    t.throws(() => parseArgs([...url, "--exact-max-rows", bad]), { message: new RegExp(`--exact-max-rows: got ${bad.replace(".", "\\.")}; allowed: an integer from 0 \\(always HNSW\\) to 1000000`) });
  }
  t.is(parseArgs(url).localBaseline, undefined);
  t.is(parseArgs([...url, "--baseline-url", "postgresql://b/db"]).baselineUrl, "postgresql://b/db");
  const local = parseArgs([...url, "--baseline", "local"]);
  t.deepEqual(local.localBaseline, { stack: "local", stateDir: undefined });
  t.is(local.baselineUrl, undefined);
  t.deepEqual(parseArgs([...url, "--baseline", "local", "--stack", "dev", "--baseline-state", "/tmp/b"]).localBaseline, { stack: "dev", stateDir: "/tmp/b" });
  t.throws(() => parseArgs([...url, "--baseline", "remote"]), { message: /--baseline: got remote; allowed: local/ });
  t.throws(() => parseArgs([...url, "--baseline", "local", "--baseline-url", "postgresql://b/db"]), { message: /give one of them/ });
  t.throws(() => parseArgs([...url, "--baseline-state", "/tmp/b"]), { message: /--baseline-state goes with --baseline local/ });
  t.throws(() => parseArgs([...url, "--baseline", "local", "--stack", "../x"]), { message: /--stack: got \.\.\/x/ });
});

test("the PRNG and the data set are deterministic per seed, and vectors are unit length", (t) => {
  const a = createRandom(1);
  const b = createRandom(1);
  t.deepEqual([a(), a(), a()], [b(), b(), b()]);
  const options = { rows: 10, dimensions: 16, namespaces: 4, clusters: 3, seed: 5 };
  const first = new ClusteredVectors(options, STREAMS.rows).nextRow(0);
  const again = new ClusteredVectors(options, STREAMS.rows).nextRow(0);
  t.deepEqual(first, again);
  t.notDeepEqual(new ClusteredVectors(options, STREAMS.queries).nextVector(), first.embedding);
  const norm = Math.sqrt(first.embedding.reduce((sum, v) => sum + v * v, 0));
  t.true(Math.abs(norm - 1) < 1e-5);
  t.regex(vectorLiteral(Float32Array.from([0.5, -0.25])), /^\[0\.500000,-0\.250000\]$/);
});

test("clustered: a point is nearer its own cluster's points than a random other cluster's", (t) => {
  // Two clusters far apart in 32 dims: the nearest neighbour by cosine is almost always a cluster mate.
  const vectors = new ClusteredVectors({ rows: 0, dimensions: 32, namespaces: 1, clusters: 2, seed: 3 }, STREAMS.rows);
  const points = Array.from({ length: 200 }, () => vectors.nextVector());
  const dot = (x: Float32Array, y: Float32Array) => x.reduce((sum, v, i) => sum + v * y[i], 0);
  const similarities = points.slice(1).map((p) => dot(points[0], p));
  const high = similarities.filter((s) => s > 0.5).length;
  t.true(high > 50 && high < 150, `${high} of 199 points near the first one`);
});

test("pgbench's tps line is read", (t) => {
  t.is(parsePgbenchTps("latency average = 0.1 ms\ntps = 53442.161256 (without initial connection time)\n"), 53442.161256);
  t.is(parsePgbenchTps("no numbers"), undefined);
});

// A pool stand-in whose queries resolve on the next tick: enough to count operations.
function fakePool(): pg.Pool {
  const client = { query: async () => ({ rows: [] }), release() {} };
  return { connect: async () => client, query: async () => ({ rows: [] }) } as unknown as pg.Pool;
}

test("closed loop runs exactly the requested number of operations across its clients", async (t) => {
  let failures = 0;
  const result = await runClosedLoop(fakePool(), {
    clients: 4,
    totalOperations: 103,
    nextOperation: (index) => ({ name: index % 10 === 0 ? "odd-one" : "normal", run: async () => { if (index === 5) { failures++; throw new Error("boom"); } } }),
  });
  t.is(result.overall.count + result.overall.errors, 103);
  t.is(result.overall.errors, failures);
  t.is(result.byOperation.get("odd-one")!.count, 11);
});

test("open loop schedules rate x seconds operations and records the dispatch lag", async (t) => {
  const result = await runOpenLoop(fakePool(), { rate: 200, seconds: 0.1, nextOperation: () => ({ name: "op", run: async () => {} }) });
  t.is(result.overall.count, 20);
  t.is(result.dispatchLag!.count, 20);
});

test("--baseline-url names the plain node that runs the same data and queries", (t) => {
  t.is(parseArgs(["--url", "postgresql://a@h/db", "--baseline-url", "postgresql://a@127.0.8.4/db"]).baselineUrl, "postgresql://a@127.0.8.4/db");
  t.is(parseArgs(["--url", "postgresql://a@h/db"]).baselineUrl, process.env.DPC_BENCH_BASELINE_URL);
});
