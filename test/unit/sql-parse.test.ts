// Every migration, in every variant (pgvector / RuVector, with / without Citus), parses with
// PostgreSQL's own parser (libpg-query); and the benchmark's own statements parse too.
import test from "ava";
import { loadModule, parse } from "libpg-query";
import { DEFAULT_CONFIG, type ClusterConfig } from "../../components/spec.ts";
import { renderMigrations, type MigrationContext } from "../../sql/migrations.ts";
import { vectorDialect } from "../../sql/vector-dialect.ts";
import { searchSql } from "../../benchmarks/search-sql.ts";

const VARIANTS: { name: string; config: ClusterConfig; context: MigrationContext }[] = [];
for (const vectorExtension of ["pgvector", "ruvector"] as const) {
  for (const citus of [false, true]) {
    const hnswAccessMethod = vectorDialect(vectorExtension).accessMethodCandidates[0];
    VARIANTS.push({ name: `${vectorExtension}, citus ${citus ? "on" : "off"}`, config: { ...DEFAULT_CONFIG, vectorExtension }, context: { citus, hnswAccessMethod } });
  }
}

test.before(async () => {
  await loadModule();
});

for (const variant of VARIANTS) {
  for (const migration of renderMigrations(variant.config, variant.context)) {
    test(`${migration.id} parses (${variant.name})`, async (t) => {
      const tree = await parse(migration.sql);
      t.true(tree.stmts.length > 0);
    });
  }
}

test("the ruvector variant names ruvector's type, opclass, access method and setting, and never pgvector's", (t) => {
  const all = renderMigrations({ ...DEFAULT_CONFIG, vectorExtension: "ruvector" }, { citus: true, hnswAccessMethod: "ruhnsw" })
    .map((m) => m.sql)
    .join("\n");
  t.regex(all, /CREATE EXTENSION IF NOT EXISTS "ruvector"/);
  t.regex(all, /embedding ruvector\(384\)/);
  t.regex(all, /USING "ruhnsw" \(embedding ruvector_cosine_ops\) WITH \(m = 16, ef_construction = 64\)/);
  t.regex(all, /SET ruvector\.hnsw_ef_search = '40'/);
  t.notRegex(all, /CREATE EXTENSION IF NOT EXISTS "vector"/);
  t.notRegex(all, /\bvector_cosine_ops/);
});

test("the citus variant distributes five tables colocated with memory_entries in shardCount shards", (t) => {
  const migration = renderMigrations({ ...DEFAULT_CONFIG, shardCount: 12 }, { citus: true, hnswAccessMethod: "hnsw" }).find((m) => m.id === "004_distribution")!;
  const calls = migration.sql.match(/create_distributed_table\([^)]*\)/g) ?? [];
  t.is(calls.length, 5);
  t.is(calls[0], "create_distributed_table('claude_flow.memory_entries', 'namespace', shard_count => 12, colocate_with => 'none')");
  for (const call of calls.slice(1)) t.regex(call, /'namespace', colocate_with => 'claude_flow\.memory_entries'\)$/);
  t.is((migration.sql.match(/create_reference_table/g) ?? []).length, 3);
});

test("without citus the distribution migration runs no Citus function and says why", (t) => {
  const migration = renderMigrations(DEFAULT_CONFIG, { citus: false, hnswAccessMethod: "hnsw" }).find((m) => m.id === "004_distribution")!;
  t.notRegex(migration.sql, /create_distributed_table|create_reference_table|run_command_on_workers/);
  t.regex(migration.sql, /citus extension absent: tables are local, not distributed/);
});

test("the benchmark's search statements parse for both vector extensions", async (t) => {
  for (const extension of ["pgvector", "ruvector"] as const) {
    for (const kind of ["single-shard", "cross-shard"] as const) {
      const { text } = searchSql(vectorDialect(extension), { kind, namespaces: ["a", "b"], vector: "[1,2,3]" }, 10);
      const tree = await parse(text);
      t.is(tree.stmts.length, 1);
    }
  }
});
