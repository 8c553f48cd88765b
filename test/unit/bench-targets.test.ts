// Judging measured values against the design's targets and their critical levels.
import test from "ava";
import { exitCodeFor, judge, TARGETS, worstVerdict } from "../../benchmarks/targets.ts";

test("search p95: under 10 ms passes, under 50 ms warns, otherwise fails", (t) => {
  t.is(judge(TARGETS.searchP95, 3.2), "pass");
  t.is(judge(TARGETS.searchP95, 10), "warn"); // the goal is strictly below 10 ms
  t.is(judge(TARGETS.searchP95, 49.9), "warn");
  t.is(judge(TARGETS.searchP95, 50), "fail");
});

test("cross-shard p95: 25 ms goal, 100 ms critical", (t) => {
  t.is(judge(TARGETS.crossShardP95, 24), "pass");
  t.is(judge(TARGETS.crossShardP95, 60), "warn");
  t.is(judge(TARGETS.crossShardP95, 150), "fail");
});

test("insert throughput: above 1000 rows/s passes, above 500 warns", (t) => {
  t.is(judge(TARGETS.insertThroughput, 1369), "pass");
  t.is(judge(TARGETS.insertThroughput, 735), "warn");
  t.is(judge(TARGETS.insertThroughput, 500), "fail");
});

test("query throughput: 1000 goal, 100 critical", (t) => {
  t.is(judge(TARGETS.queryThroughput, 2400), "pass");
  t.is(judge(TARGETS.queryThroughput, 101), "warn");
  t.is(judge(TARGETS.queryThroughput, 99), "fail");
});

test("success rate: above 99 % passes, above 95 % warns", (t) => {
  t.is(judge(TARGETS.successRate, 1), "pass");
  t.is(judge(TARGETS.successRate, 0.97), "warn");
  t.is(judge(TARGETS.successRate, 0.95), "fail");
});

test("a value that was never measured fails", (t) => {
  t.is(judge(TARGETS.searchP95, Number.NaN), "fail");
  t.is(judge(TARGETS.queryThroughput, Number.POSITIVE_INFINITY), "fail");
});

test("the worst verdict wins; --fail-on decides the exit code", (t) => {
  t.is(worstVerdict([]), "pass");
  t.is(worstVerdict(["pass", "warn", "pass"]), "warn");
  t.is(worstVerdict(["warn", "fail", "pass"]), "fail");
  t.is(exitCodeFor("fail", "critical"), 1);
  t.is(exitCodeFor("warn", "critical"), 0);
  t.is(exitCodeFor("warn", "warn"), 1);
  t.is(exitCodeFor("fail", "never"), 0);
});
