// Against the local Citus cluster: `up` applied every migration to the fresh cluster, a second apply
// changes nothing and the tables are distributed as designed; the benchmark's quick mode writes a
// report.json that matches its schema.
//   DPC_TEST_DATABASE_URL      superuser URL (migrations need CREATE EXTENSION and ALTER DATABASE)
//   DPC_TEST_APP_DATABASE_URL  optional URL the benchmark uses (e.g. PgBouncer as `app`); default: the first
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import pg from "pg";
import { DEFAULT_CONFIG } from "../../components/spec.ts";
import { runningCluster } from "./context.ts";
import { applyMigrations } from "../../sql/apply.ts";
import { DISTRIBUTED_TABLES, REFERENCE_TABLES, renderMigrations } from "../../sql/migrations.ts";
import { runPostDeployBenchmark } from "../../benchmarks/post-deploy.ts";
import { reportSchemaErrors } from "../../benchmarks/report.ts";
import { quietClient } from "../../components/pg-client.ts";

const url = process.env.DPC_TEST_DATABASE_URL;
const benchUrl = process.env.DPC_TEST_APP_DATABASE_URL ?? url;

// Everything a migration run could change: relations, columns, indexes, settings, grants, records.
const CATALOG_QUERIES = [
  `SELECT n.nspname, c.relname, c.relkind, c.relfilenode, c.reloptions::text, c.relacl::text
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname IN ('public', 'claude_flow', 'benchmark') ORDER BY 1, 2`,
  `SELECT a.attrelid::regclass::text, a.attname, a.atttypid::regtype::text, a.atttypmod
     FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'claude_flow' AND a.attnum > 0 ORDER BY 1, 2`,
  `SELECT schemaname, indexname, indexdef FROM pg_indexes WHERE schemaname IN ('public', 'claude_flow') ORDER BY 1, 2`,
  `SELECT setrole, setconfig::text FROM pg_db_role_setting WHERE setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database()) ORDER BY 1`,
  `SELECT nspname, nspacl::text FROM pg_namespace ORDER BY 1`,
  `SELECT extname, extversion FROM pg_extension ORDER BY 1`,
  `SELECT defaclrole, defaclnamespace, defaclobjtype, defaclacl::text FROM pg_default_acl ORDER BY 1, 2, 3`,
  `SELECT id, checksum, applied_at::text FROM public.schema_migrations ORDER BY 1`,
];

async function catalogSnapshot(client: pg.Client): Promise<unknown[]> {
  const snapshot: unknown[] = [];
  for (const query of CATALOG_QUERIES) snapshot.push((await client.query(query)).rows);
  return snapshot;
}


if (!url) {
  console.log("SKIPPED test/cluster/sql-bench.test.ts: DPC_TEST_DATABASE_URL is not set (a superuser URL of a PostgreSQL with pgvector; the cluster test harness sets it)");
  test.skip("the migrations applied in full on the fresh cluster, and a second apply changes nothing", () => {});
  test.skip("the quick benchmark writes a report.json that matches its schema", () => {});
} else {
  test.serial("the migrations applied in full on the fresh cluster, and a second apply changes nothing", async (t) => {
    // `up` applied them to the fresh Citus cluster's database, as `pulumi up` does.
    const firstApply = JSON.parse(process.env.DPC_TEST_SCHEMA_APPLIED ?? "null") as string[] | null;
    const { config } = runningCluster();
    const client = quietClient({ connectionString: url });
    await client.connect();
    try {
      const all = renderMigrations(config, { citus: true, hnswAccessMethod: "hnsw" }).map((m) => m.id);
      if (firstApply) t.deepEqual(firstApply, all, "`up` on a fresh cluster applied every migration");
      const before = await catalogSnapshot(client);
      const second = await applyMigrations(client, config);
      t.deepEqual(second.applied, []);
      t.is(second.version, all[all.length - 1]);
      t.deepEqual(await catalogSnapshot(client), before);

      t.true(second.citus, "the citus extension exists in the database");
      {
        const distributed = await client.query<{ table: string; method: string; colocation: number; shards: string }>(
          `SELECT p.logicalrelid::regclass::text AS table, p.partmethod AS method, p.colocationid AS colocation,
                  (SELECT count(*) FROM pg_dist_shard s WHERE s.logicalrelid = p.logicalrelid) AS shards
             FROM pg_dist_partition p JOIN pg_class c ON c.oid = p.logicalrelid JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'claude_flow'`,
        );
        const hashed = distributed.rows.filter((row) => row.method === "h");
        t.deepEqual(hashed.map((row) => row.table.replace("claude_flow.", "")).sort(), [...DISTRIBUTED_TABLES].sort());
        t.is(new Set(hashed.map((row) => row.colocation)).size, 1);
        for (const row of hashed) t.is(Number(row.shards), config.shardCount);
        t.is(distributed.rows.filter((row) => row.method === "n").length, REFERENCE_TABLES.length);
      }
    } finally {
      await client.end();
    }
  });

  test.serial("the quick benchmark writes a report.json that matches its schema", async (t) => {
    const outDir = mkdtempSync(join(tmpdir(), "dpc-bench-test-"));
    try {
      const summary = await runPostDeployBenchmark(benchUrl!, "quick", { outDir, dimensions: DEFAULT_CONFIG.embeddingDimensions });
      const report = JSON.parse(readFileSync(join(outDir, "report.json"), "utf8"));
      t.deepEqual(reportSchemaErrors(report), []);
      t.regex(readFileSync(join(outDir, "report.html"), "utf8"), /<svg /);
      t.is(summary.scenarios.length, report.scenarios.length);
      for (const scenario of report.scenarios) t.true(scenario.count > 0, `${scenario.id} measured nothing`);
      t.log(`verdict ${summary.verdict}; ` + summary.scenarios.map((s) => `${s.id} p95 ${s.p95Ms} ms, ${s.throughput} ${s.throughputUnit}`).join("; "));
    } finally {
      rmSync(outDir, { recursive: true, force: true });
    }
  });
}
