// Monitoring proven on live metrics: every PromQL expression of every alert and panel returns data
// from the real Prometheus scraping the local cluster (or the test names the component missing here),
// and killing a PostgreSQL node fires the availability alert within its `for` window.
import test from "ava";
import { BENCHMARK_METRICS, DEFAULT_ALERT_OPTIONS, promqlExpressions, type MetricSource } from "../../monitoring/index.ts";
import { LOCAL_BENCHMARK_METRICS, prometheusUrl } from "../../local/monitoring.ts";
import { SearchMetrics } from "../../benchmarks/metrics.ts";
import { runBenchmark } from "../../benchmarks/runner.ts";
import { defaultOptions } from "../../benchmarks/options.ts";
import { sleep } from "../../local/processes.ts";
import { runningCluster } from "./context.ts";

const cluster = runningCluster();

async function query(expr: string): Promise<unknown[]> {
  const url = `${prometheusUrl()}/api/v1/query?query=${encodeURIComponent(expr)}`;
  const body = (await (await fetch(url)).json()) as { status: string; error?: string; data?: { result: unknown[] } };
  if (body.status !== "success") throw new Error(`${expr}: ${body.error}`);
  return body.data!.result;
}

interface Target {
  labels: { job: string };
  health: string;
  lastError: string;
}

async function targets(): Promise<Target[]> {
  const body = (await (await fetch(`${prometheusUrl()}/api/v1/targets`)).json()) as { data: { activeTargets: Target[] } };
  return body.data.activeTargets;
}

/** Why a source has no data here, or undefined when it should have data. */
async function missingHere(source: MetricSource): Promise<string | undefined> {
  const job = (await targets()).filter((t) => t.labels.job === source);
  const down = job.filter((t) => t.health !== "up");
  if (job.length > 0 && down.length === job.length) return `its scrape target is down here: ${down[0].lastError}`;
  return undefined;
}

const metrics = new SearchMetrics();
let metricsServer: Awaited<ReturnType<SearchMetrics["serve"]>> | undefined;

test.before(async () => {
  // A short benchmark run whose search metrics the local Prometheus scrapes (job `benchmark`), so the
  // vector-search alerts and panels have data; the endpoint stays up until the tests are done.
  metricsServer = await metrics.serve(LOCAL_BENCHMARK_METRICS);
  await runBenchmark({ ...defaultOptions(cluster.pgbouncerUrl("app"), "quick"), rows: 2000, skipPgbench: true }, undefined, metrics);
  // rate() needs a few samples, and the table metrics (of the schema `up` applied) a scrape: wait for both.
  const deadline = Date.now() + 60000;
  while (Date.now() < deadline) {
    const samples = await query('count_over_time(up{job="postgres_exporter"}[30s])').catch(() => []);
    const enoughSamples = samples.length > 0 && samples.every((s) => Number((s as { value: [number, string] }).value[1]) >= 8);
    const tables = await query("pg_vector_index_bytes").catch(() => []);
    const searches = await query(BENCHMARK_METRICS.searches).catch(() => []);
    if (enoughSamples && tables.length > 0 && searches.length > 0) return;
    await sleep(1000);
  }
});

test.after.always(() => metricsServer?.close());

test("every alert and panel expression returns data from the live Prometheus, or names what is missing here", async (t) => {
  const expressions = promqlExpressions(cluster.config, { ...DEFAULT_ALERT_OPTIONS, citus: true, rateWindow: "2m" });
  const missing = new Map<string, string[]>();
  const failures: string[] = [];
  for (const expression of expressions) {
    const result = await query(expression.expr);
    if (result.length > 0) continue;
    const reason = await missingHere(expression.source);
    if (reason) missing.set(`${expression.source}: ${reason}`, [...(missing.get(`${expression.source}: ${reason}`) ?? []), expression.name]);
    else failures.push(`${expression.kind} ${expression.name} (${expression.source}): ${expression.expr}`);
  }
  const withData = expressions.length - failures.length - [...missing.values()].flat().length;
  t.log(`${withData} of ${expressions.length} expressions return data from the live cluster`);
  for (const [reason, names] of missing) t.log(`NOT PROVEN HERE (${reason}): ${names.join(", ")}`);
  t.deepEqual(failures, [], "expressions with no data although their component runs here");
});

test("Citus: shard placements of distributed tables per worker group, and the shard tables seen by the exporter on the workers", async (t) => {
  type Sample = { metric: Record<string, string>; value: [number, string] };
  const placements = (await query("max by (citus_groupid) (citus_placement_shards)")) as Sample[];
  const perGroup = Object.fromEntries(placements.map((s) => [s.metric.citus_groupid, Number(s.value[1])]));
  t.log(`distributed shard placements per worker group (reference tables not counted): ${JSON.stringify(perGroup)}`);
  t.deepEqual(Object.keys(perGroup).sort(), Array.from({ length: cluster.config.workerGroups }, (_, i) => String(i + 1)));
  // The benchmark's table and the application's five distributed tables, shardCount shards each at least.
  for (const count of Object.values(perGroup)) t.true(count >= (5 * cluster.config.shardCount) / cluster.config.workerGroups - 5, `${count} placements`);
  const shardTables = (await query('count by (citus_group) (pg_table_rows{relname=~"memory_entries_[0-9]+"})')) as Sample[];
  t.deepEqual(
    shardTables.map((s) => s.metric.citus_group).sort(),
    Array.from({ length: cluster.config.workerGroups }, (_, i) => String(i + 1)),
    "every worker group's nodes export their memory_entries shards",
  );
});

test("killing a PostgreSQL node fires PostgreSQLDown in the live Prometheus within its `for` window", async (t) => {
  const group = cluster.topology.groups.length - 1;
  const leader = await cluster.leader(group);
  const victim = cluster.topology.groups[group].find((n) => n.name !== leader?.name)!;
  const killedAt = Date.now();
  cluster.killNode(victim);
  try {
    // for: 30s, plus a scrape and an evaluation interval (2 s each here), plus margin.
    const deadline = killedAt + 60000;
    let firing = false;
    while (!firing && Date.now() < deadline) {
      const body = (await (await fetch(`${prometheusUrl()}/api/v1/alerts`)).json()) as {
        data: { alerts: { labels: Record<string, string>; state: string }[] };
      };
      firing = body.data.alerts.some((a) => a.labels.alertname === "PostgreSQLDown" && a.labels.member === victim.name && a.state === "firing");
      if (!firing) await sleep(1000);
    }
    t.true(firing, `PostgreSQLDown fired for ${victim.name}`);
    t.log(`PostgreSQLDown firing for ${victim.name} ${((Date.now() - killedAt) / 1000).toFixed(1)} s after the kill (for: 30s)`);
  } finally {
    cluster.startPatroni(victim);
    await cluster.waitGroupHealthy(group, 120000);
  }
});
