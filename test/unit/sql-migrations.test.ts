// The renderer is pure: same config and context, same SQL and checksums; a config change moves
// exactly the migrations that depend on it.
import test from "ava";
import { DEFAULT_CONFIG } from "../../components/spec.ts";
import { latestVersion, renderMigrations } from "../../sql/migrations.ts";

const context = { citus: false, hnswAccessMethod: "hnsw" };
const checksums = (config = DEFAULT_CONFIG, ctx = context) => Object.fromEntries(renderMigrations(config, ctx).map((m) => [m.id, m.checksum]));

test("rendering twice gives identical SQL and checksums", (t) => {
  t.deepEqual(renderMigrations(DEFAULT_CONFIG, context), renderMigrations({ ...DEFAULT_CONFIG }, { ...context }));
});

test("ids are ordered, unique and numbered", (t) => {
  const ids = renderMigrations(DEFAULT_CONFIG, context).map((m) => m.id);
  t.deepEqual([...ids].sort(), ids);
  t.is(new Set(ids).size, ids.length);
  for (const id of ids) t.regex(id, /^\d{3}_[a-z_]+$/);
  t.is(latestVersion(renderMigrations(DEFAULT_CONFIG, context)), ids[ids.length - 1]);
});

test("checksums are sha256 hex of the SQL", (t) => {
  for (const checksum of Object.values(checksums())) t.regex(checksum, /^[0-9a-f]{64}$/);
});

test("changing m changes only the index migration; ef_search only the settings migration", (t) => {
  const base = checksums();
  const changed = (other: Record<string, string>) => Object.keys(base).filter((id) => base[id] !== other[id]);
  t.deepEqual(changed(checksums({ ...DEFAULT_CONFIG, hnswM: 24 })), ["005_indexes"]);
  t.deepEqual(changed(checksums({ ...DEFAULT_CONFIG, hnswEfSearch: 100 })), ["006_search_settings", "009_search_function"]);
  t.deepEqual(changed(checksums({ ...DEFAULT_CONFIG, embeddingDimensions: 768 })), ["003_tables", "005_indexes", "009_search_function"]);
  t.deepEqual(changed(checksums(DEFAULT_CONFIG, { citus: true, hnswAccessMethod: "hnsw" })), ["004_distribution", "006_search_settings", "009_search_function", "011_pooler_lookup"]);
});

test("searchExactMaxRows changes only the search function, whose default threshold it becomes", (t) => {
  const base = checksums();
  const other = checksums({ ...DEFAULT_CONFIG, searchExactMaxRows: 5000 });
  t.deepEqual(Object.keys(base).filter((id) => base[id] !== other[id]), ["009_search_function"]);
  const fn = renderMigrations({ ...DEFAULT_CONFIG, searchExactMaxRows: 5000 }, context).find((m) => m.id === "009_search_function")!;
  t.is((fn.sql.match(/exact_max_rows integer DEFAULT 5000\)/g) ?? []).length, 2);
  t.regex(fn.sql, /at most 5000 rows/);
});

test("migrations whose SQL may change with the environment are repeatable", (t) => {
  const repeatable = renderMigrations(DEFAULT_CONFIG, context).filter((m) => m.repeatable).map((m) => m.id);
  t.deepEqual(repeatable, ["004_distribution", "006_search_settings", "007_grants", "009_search_function", "010_monitoring_role", "011_pooler_lookup"]);
});

test("the embedding columns take the configured dimension and the database its ef_search", (t) => {
  const sql = renderMigrations({ ...DEFAULT_CONFIG, embeddingDimensions: 768, hnswEfSearch: 64, database: "other_db" }, context).map((m) => m.sql).join("\n");
  t.is((sql.match(/embedding vector\(768\)/g) ?? []).length, 4);
  t.regex(sql, /ALTER DATABASE "other_db" SET hnsw\.ef_search = '64';/);
});
