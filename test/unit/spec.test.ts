// Spec validation: every bad input is rejected with a message naming the field; good configs pass.
import { readFileSync } from "node:fs";
import test from "ava";
import { ConfigError, DEFAULT_CONFIG, parseClusterConfig, planTopology } from "../../components/spec.ts";
import { projectConfig } from "../../components/stack-config.ts";

function problemsOf(raw: Record<string, unknown>): string[] {
  try {
    parseClusterConfig(raw);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  throw new Error(`accepted: ${JSON.stringify(raw)}`);
}

function assertRejected(t: import("ava").ExecutionContext, raw: Record<string, unknown>, field: string, ...fragments: string[]) {
  const problems = problemsOf(raw);
  const problem = problems.find((p) => p.startsWith(`${field}:`));
  t.truthy(problem, `no problem names ${field}: ${problems.join(" | ")}`);
  for (const fragment of fragments) t.true(problem!.includes(fragment), `"${problem}" lacks "${fragment}"`);
}

test("no worker groups is rejected, naming workerGroups and the allowed range", (t) => {
  assertRejected(t, { workerGroups: 0 }, "workerGroups", "got 0", "an integer from 1");
});

test("an even etcd size is rejected", (t) => {
  assertRejected(t, { etcdMembers: 4 }, "etcdMembers", "got 4", "odd");
});

test("ruvector with a PostgreSQL major it does not build for is rejected", (t) => {
  // RUVECTOR_POSTGRES_MAJORS equals POSTGRES_MAJORS today (14-17), so 18 is rejected by the schema
  // rule; either way the problem names postgresMajor and the value given.
  assertRejected(t, { vectorExtension: "ruvector", postgresMajor: 18 }, "postgresMajor", "got 18");
});

test("a postgresMajor the default Citus image cannot serve is rejected, naming both values", (t) => {
  // The default image, citusdata/citus:13.0.3, runs PostgreSQL 17 only.
  assertRejected(t, { postgresMajor: 15 }, "postgresMajor", "got 15", `databaseBaseImage "${DEFAULT_CONFIG.databaseBaseImage}"`, "allowed: 17", "citusdata/citus:13.0.3-pg15");
  assertRejected(t, { postgresMajor: 14 }, "postgresMajor", "got 14", "allowed: 17", "Citus 13.0 serves PostgreSQL 15, 16, 17 only");
  assertRejected(t, { postgresMajor: 18 }, "postgresMajor", "got 18");
});

test("a Citus image for another major passes with that major only; other base images are not checked", (t) => {
  t.is(parseClusterConfig({ postgresMajor: 16, databaseBaseImage: "citusdata/citus:13.0.3-pg16" }).postgresMajor, 16);
  t.is(parseClusterConfig({ postgresMajor: 15, databaseBaseImage: "docker.io/citusdata/citus:13.0-pg15" }).postgresMajor, 15);
  assertRejected(t, { postgresMajor: 17, databaseBaseImage: "citusdata/citus:13.0.3-pg16" }, "postgresMajor", "got 17", "allowed: 16");
  assertRejected(t, { postgresMajor: 17, databaseBaseImage: "citusdata/citus:13.0.3-pg14" }, "postgresMajor", "allowed: none", "serves 15, 16, 17");
  assertRejected(t, { postgresMajor: 17, databaseBaseImage: "citusdata/citus:12.1.5" }, "postgresMajor", "allowed: 16");
  t.is(parseClusterConfig({ postgresMajor: 15, databaseBaseImage: "registry.example/citus-custom:1" }).postgresMajor, 15);
});

test("the default base image is the Citus release (major.minor) the tests build from source, on PostgreSQL 17", (t) => {
  const script = readFileSync(new URL("../../scripts/install-citus.sh", import.meta.url), "utf8");
  const vendored = /^CITUS_VERSION=(\d+\.\d+)\.\d+$/m.exec(script)?.[1];
  t.is(vendored, "13.0");
  t.regex(DEFAULT_CONFIG.databaseBaseImage, new RegExp(`^citusdata/citus:${vendored!.replace(".", "\\.")}\\.\\d+$`));
  t.is(DEFAULT_CONFIG.postgresMajor, 17);
});

test("a shard count that is not a positive integer is rejected", (t) => {
  assertRejected(t, { shardCount: 0 }, "shardCount", "got 0", "integer");
  assertRejected(t, { shardCount: -3 }, "shardCount", "got -3");
  assertRejected(t, { shardCount: 2.5 }, "shardCount", "got 2.5", "integer");
  assertRejected(t, { shardCount: "twelve" }, "shardCount", 'got "twelve"');
});

test("ef_search below the search k is rejected", (t) => {
  assertRejected(t, { hnswEfSearch: 5, searchK: 10 }, "hnswEfSearch", "got 5", "searchK 10", "at least searchK");
});

test("searchExactMaxRows: default 2000 (the measured threshold), 0 allowed (always HNSW), anything else outside 0-1,000,000 rejected by name", (t) => {
  t.is(parseClusterConfig({}).searchExactMaxRows, 2000);
  t.is(parseClusterConfig({ searchExactMaxRows: 0 }).searchExactMaxRows, 0);
  t.is(parseClusterConfig({ searchExactMaxRows: "5000" }).searchExactMaxRows, 5000);
  assertRejected(t, { searchExactMaxRows: -1 }, "searchExactMaxRows", "got -1", "an integer from 0 to 1000000");
  assertRejected(t, { searchExactMaxRows: 1.5 }, "searchExactMaxRows", "got 1.5");
  assertRejected(t, { searchExactMaxRows: 2000001 }, "searchExactMaxRows", "got 2000001");
});

test("ef_construction below 2 * m is rejected (pgvector refuses to build such an index)", (t) => {
  assertRejected(t, { hnswM: 40 }, "hnswEfConstruction", "got 64", "hnswM 40", "at least 2 * hnswM (80)");
  t.notThrows(() => parseClusterConfig({ hnswM: 32, hnswEfConstruction: 64 }));
});

test("an unknown key is rejected by name", (t) => {
  assertRejected(t, { workerGroup: 3 }, "workerGroup", "unknown configuration key");
});

test("several problems are reported at once, schema and cross-field alike", (t) => {
  const problems = problemsOf({
    workerGroups: 0,
    shardCount: 0,
    platform: "nomad",
    bogus: 1,
    etcdMembers: 2,
    hnswEfSearch: 5,
    searchK: 10,
    pgbouncerPort: 5000,
  });
  // haproxyReadWritePort keeps its default 5000, the same as the pgbouncerPort given.
  for (const field of ["workerGroups", "shardCount", "platform", "bogus", "etcdMembers", "hnswEfSearch", "haproxyReadWritePort"]) {
    t.true(problems.some((p) => p.startsWith(`${field}:`)), `${field} missing from ${problems.join(" | ")}`);
  }
  t.is(problems.length, 7);
  // The error message itself lists them all.
  const error = t.throws(() => parseClusterConfig({ workerGroups: 0, etcdMembers: 4 }), { instanceOf: ConfigError });
  t.regex(error!.message, /2 problems/);
  t.regex(error!.message, /workerGroups/);
  t.regex(error!.message, /etcdMembers/);
});

test("a cross-field rule about an invalid field is not reported with a made-up value", (t) => {
  // searchK is invalid: the ef_search rule would compare against a default searchK, so it stays silent.
  const problems = problemsOf({ searchK: "many", hnswEfSearch: 5 });
  t.deepEqual(problems.map((p) => p.split(":")[0]), ["searchK"]);
});

test("a minimal config is accepted and filled with the defaults", (t) => {
  const config = parseClusterConfig({ coordinatorMembers: 1, workerGroups: 1, workerMembers: 1, etcdMembers: 1, synchronousMode: "off" });
  t.is(config.workerGroups, 1);
  t.is(config.shardCount, DEFAULT_CONFIG.shardCount);
  const topology = planTopology(config);
  t.deepEqual(topology.groups.map((g) => g.length), [1, 1]);
  t.is(topology.etcd.length, 1);
});

test("the seed-sized config is accepted: coordinator of 3, 6 worker groups of 2, etcd of 3, 12 shards", (t) => {
  const config = parseClusterConfig({
    coordinatorMembers: 3,
    workerGroups: 6,
    workerMembers: 2,
    etcdMembers: 3,
    shardCount: 12,
    embeddingDimensions: 384,
  });
  const topology = planTopology(config);
  t.deepEqual(topology.groups.map((g) => g.length), [3, 2, 2, 2, 2, 2, 2]);
  t.deepEqual(topology.groups.map((g) => g[0].group), [0, 1, 2, 3, 4, 5, 6]);
  t.is(topology.etcd.length, 3);
  t.deepEqual(parseClusterConfig({}), DEFAULT_CONFIG);
});

test("string values, as Pulumi stores config, are coerced", (t) => {
  const config = parseClusterConfig({ workerGroups: "6", databaseCpus: "1.5", benchmarkEnabled: "false", postgresMajor: "16", databaseBaseImage: "citusdata/citus:13.0.3-pg16" });
  t.is(config.workerGroups, 6);
  t.is(config.databaseCpus, 1.5);
  t.is(config.benchmarkEnabled, false);
  t.is(config.postgresMajor, 16);
});

test("projectConfig keeps the project's keys without the namespace and drops passwords and other namespaces", (t) => {
  const raw = projectConfig(
    {
      "distributed-postgres-cluster:workerGroups": "4",
      "distributed-postgres-cluster:appPassword": "secret",
      "distributed-postgres-cluster:superuserPassword": "secret",
      "distributed-postgres-cluster:grafanaAdminPassword": "secret",
      "docker:host": "unix:///var/run/docker.sock",
    },
    "distributed-postgres-cluster",
  );
  t.deepEqual(raw, { workerGroups: "4" });
});

test("monitoring and benchmark keys: defaults, published ports in the duplicate check, run id length", (t) => {
  const config = parseClusterConfig({});
  t.deepEqual([config.prometheusPort, config.grafanaPort], [9090, 3000]);
  t.is(config.benchmarkRunId, "");
  t.is(parseClusterConfig({ benchmarkRunId: "2026-01-01" }).benchmarkRunId, "2026-01-01");
  // Grafana on PgBouncer's port, Prometheus on HAProxy's read-only port: both refused.
  const problems = problemsOf({ grafanaPort: 6432, prometheusPort: 5001 });
  t.true(problems.some((p) => p.startsWith("grafanaPort: got 6432, the same as pgbouncerPort")), problems.join(" | "));
  t.true(problems.some((p) => p.startsWith("prometheusPort: got 5001, the same as haproxyReadOnlyPort")), problems.join(" | "));
  t.deepEqual(problemsOf({ grafanaPort: 70000 }), ["grafanaPort: got 70000; allowed: an integer from 1 to 65535"]);
  t.deepEqual(problemsOf({ benchmarkRunId: "x".repeat(101) }), [`benchmarkRunId: got "${"x".repeat(101)}"; allowed: a string of at most 100 characters`]);
  t.deepEqual(problemsOf({ prometheusImage: "" }), ['prometheusImage: got ""; allowed: a non-empty string']);
});
