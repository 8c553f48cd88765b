// The search plan chosen by namespace size (sql/search-plan.ts): the pure choice, and the SQL
// functions that carry it (exact branch with a sort key no index matches; HNSW branch with its
// settings local to the transaction; the single-namespace form distributed under Citus).
import test from "ava";
import { DEFAULT_CONFIG } from "../../components/spec.ts";
import { renderMigrations } from "../../sql/migrations.ts";
import { chooseSearchPlan, EXACT_SEARCH_MAX_ROWS, hnswBranchSettings, hnswCandidates, hnswCandidatesPerK, searchFunctionStatements } from "../../sql/search-plan.ts";
import { vectorDialect } from "../../sql/vector-dialect.ts";
import { branchSql, searchSql } from "../../benchmarks/search-sql.ts";

test("namespaces up to the threshold are searched exactly, larger ones with HNSW", (t) => {
  t.is(chooseSearchPlan(0), "exact");
  t.is(chooseSearchPlan(EXACT_SEARCH_MAX_ROWS), "exact");
  t.is(chooseSearchPlan(EXACT_SEARCH_MAX_ROWS + 1), "hnsw");
  t.is(chooseSearchPlan(500, 100), "hnsw");
  t.is(chooseSearchPlan(500, 500), "exact");
});

test("the HNSW branch asks for 4k candidates per shard on Citus, 10k on one node, and a relaxed iterative scan (pgvector)", (t) => {
  t.is(hnswCandidatesPerK(true), 4);
  t.is(hnswCandidatesPerK(false), 10);
  t.is(hnswCandidates(10, 40, 4), 40);
  t.is(hnswCandidates(10, 40, 10), 100);
  t.is(hnswCandidates(50, 40, 4), 200);
  t.deepEqual(hnswBranchSettings(vectorDialect("pgvector"), 10, 40, 4), { "hnsw.ef_search": "40", "hnsw.iterative_scan": "relaxed_order", "hnsw.max_scan_tuples": "50000" });
  t.deepEqual(hnswBranchSettings(vectorDialect("ruvector"), 25, 40, 4), { "ruvector.hnsw_ef_search": "100" });
});

const spec = (citus: boolean) => ({
  name: "s.f", table: "s.t", columns: [["id", "bigint"]] as Array<[string, string]>, dialect: vectorDialect("pgvector"), dimensions: 384, efSearch: 40, exactMaxRows: 2000, citus,
});

test("the function: exact branch sorts on an expression no index matches; HNSW branch sets its settings for the transaction only", (t) => {
  const [single, many] = searchFunctionStatements(spec(false));
  for (const sql of [single, many]) {
    t.regex(sql, /ORDER BY \(t\.embedding <=> query\) \+ 0 LIMIT k/);
    t.regex(sql, /IF n <= exact_max_rows THEN/);
    t.regex(sql, /set_config\('hnsw\.iterative_scan', 'relaxed_order', true\)/);
    t.regex(sql, /set_config\('hnsw\.ef_search', greatest\(40, 10 \* k\)::text, true\)/);
    t.regex(sql, /ORDER BY c\.distance LIMIT k/);
    t.regex(sql, /exact_max_rows integer DEFAULT 2000/);
  }
  t.regex(single, /LIMIT exact_max_rows \+ 1\) s;/, "the count stops at the threshold");
  t.regex(many, /namespace = ANY \(namespaces\)/);
  t.is(searchFunctionStatements(spec(false)).length, 2);
});

test("under Citus the single-namespace form is distributed on its namespace, colocated with the table", (t) => {
  const statements = searchFunctionStatements(spec(true));
  t.is(statements.length, 3);
  t.regex(statements[0], /greatest\(40, 4 \* k\)/);
  t.is(statements[2], "SELECT create_distributed_function('s.f(text, vector(384), integer, integer)', 'namespace', colocate_with := 's.t');");
});

test("the product ships claude_flow.search_memory in a repeatable migration; distributed only with Citus", (t) => {
  const plain = renderMigrations(DEFAULT_CONFIG, { citus: false, hnswAccessMethod: "hnsw" }).find((m) => m.id === "009_search_function")!;
  const citus = renderMigrations(DEFAULT_CONFIG, { citus: true, hnswAccessMethod: "hnsw" }).find((m) => m.id === "009_search_function")!;
  t.true(plain.repeatable);
  t.regex(plain.sql, /CREATE OR REPLACE FUNCTION claude_flow\.search_memory\(namespace text, query vector\(384\), k integer/);
  t.regex(plain.sql, /CREATE OR REPLACE FUNCTION claude_flow\.search_memory\(namespaces text\[\], query vector\(384\)/);
  t.notRegex(plain.sql, /create_distributed_function/);
  t.regex(citus.sql, /create_distributed_function\('claude_flow\.search_memory\(text, vector\(384\), integer, integer\)', 'namespace', colocate_with := 'claude_flow\.memory_entries'\)/);
});

test("the benchmark searches through its search function; exact search is the exact branch's query", (t) => {
  const dialect = vectorDialect("pgvector");
  const one = { kind: "single-shard" as const, namespaces: ["a"], vector: "[1,2,3]" };
  const several = { kind: "cross-shard" as const, namespaces: ["a", "b"], vector: "[1,2,3]" };
  t.is(searchSql(dialect, one, 10).text, "SELECT id::text AS id FROM benchmark.search_items($1::text, $2::vector, 10)");
  t.is(searchSql(dialect, several, 10).text, "SELECT id::text AS id FROM benchmark.search_items($1::text[], $2::vector, 10)");
  t.deepEqual(searchSql(dialect, several, 10).values, [["a", "b"], "[1,2,3]"]);
  t.regex(branchSql(dialect, one, 10, "exact").text, /ORDER BY \(embedding <=> \$2::vector\) \+ 0 LIMIT 10$/);
  t.regex(branchSql(dialect, several, 10, "hnsw").text, /WHERE namespace = ANY\(\$1::text\[\]\) ORDER BY embedding <=> \$2::vector LIMIT 10$/);
});
