// Against a real database (the local cluster's coordinator, or any PostgreSQL with pgvector):
// the pgvector migrations apply twice, the second time changing nothing, and the benchmark's quick
// mode writes a report.json that matches its schema.
//   DPC_TEST_DATABASE_URL      superuser URL (migrations need CREATE EXTENSION and ALTER DATABASE)
//   DPC_TEST_APP_DATABASE_URL  optional URL the benchmark uses (e.g. PgBouncer as `app`); default: the first
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import pg from "pg";
import { DEFAULT_CONFIG, type ClusterConfig } from "../../components/spec.ts";
import { applyMigrations, CITUS_ABSENT_NOTE } from "../../sql/apply.ts";
import { DISTRIBUTED_TABLES, REFERENCE_TABLES } from "../../sql/migrations.ts";
import { runPostDeployBenchmark } from "../../benchmarks/post-deploy.ts";
import { reportSchemaErrors } from "../../benchmarks/report.ts";

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

function configFor(databaseUrl: string): ClusterConfig {
  return { ...DEFAULT_CONFIG, vectorExtension: "pgvector", database: decodeURIComponent(new URL(databaseUrl).pathname.slice(1)) };
}

/** A fresh database on the primary named by DPC_TEST_PRIMARY_URL (superuser, direct), or undefined. */
async function scratchDatabase(t: { log: (message: string) => void }): Promise<{ url: string; drop: () => Promise<void> } | undefined> {
  const primary = process.env.DPC_TEST_PRIMARY_URL;
  if (!primary) return undefined;
  const name = "migration_test";
  const admin = new pg.Client({ connectionString: primary });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${name}`);
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  t.log(`applying into a fresh database ${name}`);
  const scratchUrl = new URL(primary);
  scratchUrl.pathname = `/${name}`;
  return {
    url: scratchUrl.toString(),
    drop: async () => {
      const client = new pg.Client({ connectionString: primary });
      await client.connect();
      await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await client.end();
    },
  };
}

if (!url) {
  console.log("SKIPPED test/cluster/sql-bench.test.ts: DPC_TEST_DATABASE_URL is not set (a superuser URL of a PostgreSQL with pgvector; the cluster test harness sets it)");
  test.skip("pgvector migrations apply twice, the second time changing nothing", () => {});
  test.skip("the quick benchmark writes a report.json that matches its schema", () => {});
} else {
  test.serial("pgvector migrations apply twice, the second time changing nothing", async (t) => {
    // The cluster's own database already has the schema (`up` applies it, as `pulumi up` does): apply
    // into a new database on the same primary when the harness names one, so the first apply is real.
    const scratch = await scratchDatabase(t);
    const target = scratch?.url ?? url;
    const config = configFor(target);
    const client = new pg.Client({ connectionString: target });
    await client.connect();
    try {
      const first = await applyMigrations(client, config);
      t.is(first.version, "007_grants");
      if (scratch) t.is(first.applied.length, 7, "a fresh database gets every migration");
      t.log(`first apply: ${first.applied.join(", ") || "nothing (already applied)"}; notes: ${first.notes.join("; ")}`);
      const before = await catalogSnapshot(client);
      const second = await applyMigrations(client, config);
      t.deepEqual(second.applied, []);
      t.is(second.version, first.version);
      t.deepEqual(await catalogSnapshot(client), before);

      if (second.citus) {
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
      } else {
        t.log("citus extension absent: checked local tables only; distribution was not run");
        t.true(second.notes.includes(CITUS_ABSENT_NOTE));
      }
    } finally {
      await client.end();
      await scratch?.drop();
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
