// The single-node baseline the local runner starts (issue 16): a plain PostgreSQL node with the
// cluster's settings minus Citus and the same schema, and a quick benchmark that runs the same data
// and queries on both and sets them side by side. Runs under `npm run test:cluster` (harness.ts).
import { join } from "node:path";
import test from "ava";
import pg from "pg";
import { runningCluster } from "./context.ts";
import { BaselineNode } from "../../local/baseline.ts";
import { baselineAddress } from "../../local/layout.ts";
import { defaultOptions } from "../../benchmarks/options.ts";
import { runBenchmark } from "../../benchmarks/runner.ts";
import { reportSchemaErrors } from "../../benchmarks/report.ts";
import { quietClient } from "../../components/pg-client.ts";

const benchUrl = process.env.DPC_TEST_APP_DATABASE_URL;
const databaseUrl = process.env.DPC_TEST_DATABASE_URL;
if (!benchUrl || !databaseUrl) throw new Error("DPC_TEST_APP_DATABASE_URL / DPC_TEST_DATABASE_URL are not set: run through `npm run test:cluster` (test/cluster/harness.ts)");

const cluster = runningCluster();
const node = new BaselineNode({ stackFile: process.env.DPC_TEST_STACK_FILE!, dir: join(cluster.paths.stateDir, "baseline"), log: () => undefined });

// Server parameters the baseline must share with the cluster's nodes. Not wal_level: Patroni sets
// it to logical on a Citus cluster (for Citus' shard moves), the plain node keeps replica.
const SHARED_PARAMETERS = ["shared_buffers", "effective_cache_size", "maintenance_work_mem", "work_mem", "max_connections", "max_parallel_maintenance_workers", "password_encryption"];

async function query<T extends pg.QueryResultRow>(url: string, sql: string, values: unknown[] = []): Promise<T[]> {
  const client = quietClient({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(sql, values)).rows;
  } finally {
    await client.end();
  }
}

const settingsOf = (url: string) =>
  query<{ name: string; setting: string }>(url, "SELECT name, setting FROM pg_settings WHERE name = ANY ($1) ORDER BY name", [SHARED_PARAMETERS]);
// Database-level settings (ALTER DATABASE ... SET), Citus' own left out.
const databaseSettingsOf = async (url: string) =>
  (await query<{ setconfig: string[] }>(url, "SELECT setconfig FROM pg_db_role_setting WHERE setrole = 0 AND setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())"))
    .flatMap((row) => row.setconfig)
    .filter((entry) => !entry.startsWith("citus."))
    .sort();

test.before(async () => {
  await node.down(true);
  await node.up();
});
test.after.always(async () => {
  await node.down(true);
});

test.serial("the baseline is a plain node on 127.N.4.1 with the cluster's settings, schema and search threshold, without Citus", async (t) => {
  t.is(node.address, baselineAddress());
  t.regex(node.address, /^127\.\d+\.4\.1$/);
  const url = node.appUrl();
  const extensions = (await query<{ extname: string }>(url, "SELECT extname FROM pg_extension ORDER BY 1")).map((r) => r.extname);
  t.true(extensions.includes("vector"));
  t.false(extensions.includes("citus"));
  // Citus preloaded would register its citus.* settings (shared_preload_libraries itself is superuser-only).
  const [citusSettings] = await query<{ n: number }>(url, "SELECT count(*)::int AS n FROM pg_settings WHERE name LIKE 'citus.%'");
  t.is(citusSettings.n, 0);
  const [onCoordinator] = await query<{ n: number }>(databaseUrl, "SELECT count(*)::int AS n FROM pg_settings WHERE name LIKE 'citus.%'");
  t.true(onCoordinator.n > 0, "the coordinator's citus settings are visible to the same query");
  t.deepEqual(await settingsOf(url), await settingsOf(databaseUrl), "server parameters differ from the coordinator's");
  const search = await databaseSettingsOf(url);
  t.deepEqual(search, await databaseSettingsOf(databaseUrl), "ALTER DATABASE search settings differ from the coordinator's");
  t.true(search.some((entry) => entry.startsWith("hnsw.ef_search=")), search.join(", "));
  const [fn] = await query<{ args: string }>(
    url,
    "SELECT string_agg(pg_get_function_arguments(p.oid), ' | ') AS args FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'claude_flow' AND p.proname = 'search_memory'",
  );
  t.is((fn.args.match(new RegExp(`exact_max_rows integer DEFAULT ${cluster.config.searchExactMaxRows}\\b`, "g")) ?? []).length, 2, fn.args);
  // The benchmark's role can create its table there, as on the cluster.
  const [privilege] = await query<{ ok: boolean }>(url, "SELECT has_schema_privilege('benchmark', 'CREATE') AS ok");
  t.true(privilege.ok);
});

test.serial("a quick benchmark with the baseline: every search scenario side by side, k rows and recall on both, 1 task per search on the node", async (t) => {
  const options = { ...defaultOptions(benchUrl, "quick"), rows: 3000, skipPgbench: true, baselineUrl: node.appUrl() };
  const { report } = await runBenchmark(options);
  t.deepEqual(reportSchemaErrors(report), []);
  t.truthy(report.baseline);
  const baseline = report.baseline!;
  t.false(baseline.environment.citus.present);
  t.true(report.environment.citus.present);
  t.false(baseline.url.includes(node.secrets().app), "the report holds the baseline's password");
  const ids = ["single-shard-search", "cross-shard-search", "concurrent-search"];
  const searches = baseline.scenarios.filter((s) => ids.includes(s.id));
  t.is(searches.length, ids.length, `compared: ${baseline.scenarios.map((s) => s.id).join(", ")}`);
  t.true(searches.every((s) => s.plan.value !== null && s.plan.baseline !== null));
  for (const scenario of searches) {
    t.is(scenario.shortResults.value, 0, `${scenario.id}: cluster searches short of k rows`);
    t.is(scenario.shortResults.baseline, 0, `${scenario.id}: baseline searches short of k rows`);
    t.true((scenario.recall.value ?? 0) >= 0.95 && (scenario.recall.baseline ?? 0) >= 0.95, `${scenario.id}: recall ${scenario.recall.value} / ${scenario.recall.baseline}`);
    t.is(scenario.plan.baseline!.tasks, 1, `${scenario.id}: tasks on the plain node`);
    t.true(scenario.throughput.value > 0 && scenario.throughput.baseline > 0);
    t.is(scenario.throughput.ratio, Math.round((scenario.throughput.value / scenario.throughput.baseline) * 1000) / 1000);
  }
  // 3,000 rows over 12 namespaces: at most 2,000 rows a search, so both search exactly.
  t.deepEqual([...new Set(searches.flatMap((s) => [s.plan.value!.choice, s.plan.baseline!.choice]))], ["exact"]);
  t.true(searches.find((s) => s.id === "cross-shard-search")!.plan.value!.tasks > 1, "a cross-shard search on the cluster runs on several shards");
  t.log(searches.map((s) => `${s.id}: ${s.throughput.value} / ${s.throughput.baseline} ${s.throughput.unit} (x${s.throughput.ratio})`).join("; "));
});
