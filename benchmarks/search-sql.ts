// The SQL the suite runs against its own table, and exact search for recall.
import type pg from "pg";
import { BENCHMARK_SCHEMA } from "../sql/migrations.ts";
import type { VectorDialect } from "../sql/vector-dialect.ts";

export const BENCH_TABLE = `${BENCHMARK_SCHEMA}.vector_items`;
export const BENCH_INDEX = "vector_items_embedding_hnsw_idx";

export type SearchKind = "single-shard" | "cross-shard";

export interface SearchQuery {
  kind: SearchKind;
  /** One namespace (routes to one shard) or several (fans out to several shards). */
  namespaces: string[];
  /** Query vector in text form. */
  vector: string;
}

export interface SearchSql {
  text: string;
  values: unknown[];
}

/** The k-nearest-neighbour query (cosine) for one search; a constant LIMIT lets Citus push it down. */
export function searchSql(dialect: VectorDialect, query: SearchQuery, k: number): SearchSql {
  const filter = query.kind === "single-shard" ? "namespace = $1" : "namespace = ANY($1::text[])";
  return {
    text: `SELECT id::text AS id FROM ${BENCH_TABLE} WHERE ${filter} ORDER BY embedding <=> $2::${dialect.castType} LIMIT ${k}`,
    values: [query.kind === "single-shard" ? query.namespaces[0] : query.namespaces, query.vector],
  };
}

export async function search(client: pg.ClientBase | pg.Pool, dialect: VectorDialect, query: SearchQuery, k: number): Promise<string[]> {
  const { text, values } = searchSql(dialect, query, k);
  const result = await client.query<{ id: string }>(text, values);
  return result.rows.map((row) => row.id);
}

/**
 * Exact search: the same query with index scans off, in one transaction (SET LOCAL). With Citus,
 * propagate_set_commands = 'local' carries the SET LOCAL to the workers that run the shards.
 */
export async function exactSearch(client: pg.ClientBase, dialect: VectorDialect, query: SearchQuery, k: number, citus: boolean): Promise<string[]> {
  await client.query("BEGIN");
  try {
    if (citus) await client.query("SET LOCAL citus.propagate_set_commands = 'local'");
    await client.query("SET LOCAL enable_indexscan = off");
    const ids = await search(client, dialect, query, k);
    await client.query("COMMIT");
    return ids;
  } catch (error) {
    await client.query("ROLLBACK");
    throw error;
  }
}

export interface PlanSummary {
  /** Indexes the plan scans (any level, including Citus' remote plans). */
  indexes: string[];
  usesHnswIndex: boolean;
}

function collectIndexNames(node: unknown, into: Set<string>): void {
  if (Array.isArray(node)) node.forEach((child) => collectIndexNames(child, into));
  else if (node && typeof node === "object") {
    for (const [key, value] of Object.entries(node)) {
      if (key === "Index Name" && typeof value === "string") into.add(value);
      else collectIndexNames(value, into);
    }
  }
}

/** Which indexes the planner picks for a query: a namespace filter can make a btree scan win. */
export async function explainSearch(client: pg.ClientBase, dialect: VectorDialect, query: SearchQuery, k: number): Promise<PlanSummary> {
  const { text, values } = searchSql(dialect, query, k);
  const result = await client.query(`EXPLAIN (FORMAT JSON) ${text}`, values);
  const names = new Set<string>();
  collectIndexNames(result.rows[0]["QUERY PLAN"], names);
  const indexes = [...names].sort();
  return { indexes, usesHnswIndex: indexes.some((name) => name.includes(BENCH_INDEX)) };
}
