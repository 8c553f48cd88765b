// The benchmark's search metrics: the names, buckets and counts the vector-search alerts read.
import test from "ava";
import { SearchMetrics } from "../../benchmarks/metrics.ts";

test("each search is counted, failures counted apart, durations in the alert's buckets", async (t) => {
  const metrics = new SearchMetrics();
  await metrics.observe("single-shard", async () => "ok");
  await t.throwsAsync(metrics.observe("single-shard", async () => Promise.reject(new Error("timeout"))));
  await metrics.observe("cross-shard", async () => "ok");
  metrics.setRecall(0.97);
  const text = await metrics.registry.metrics();
  t.regex(text, /^vector_search_queries_total\{kind="single-shard"\} 2$/m);
  t.regex(text, /^vector_search_errors_total\{kind="single-shard"\} 1$/m);
  t.regex(text, /^vector_search_errors_total\{kind="cross-shard"\} 0$/m, "a kind with no failure still reports 0");
  // The alert's buckets exist (0.01 s is one); where a sample lands depends on the machine's load.
  t.regex(text, /^vector_search_duration_seconds_bucket\{le="0.01",kind="single-shard"\} [0-2]$/m);
  t.regex(text, /^vector_search_duration_seconds_bucket\{le="\+Inf",kind="single-shard"\} 2$/m);
  t.regex(text, /^vector_search_duration_seconds_count\{kind="cross-shard"\} 1$/m);
  t.regex(text, /^vector_search_recall 0.97$/m);
});
