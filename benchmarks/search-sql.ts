// The SQL the suite runs against its own table, and exact search for recall.
import type pg from "pg";
import { BENCHMARK_SCHEMA } from "../sql/migrations.ts";
import type { VectorDialect } from "../sql/vector-dialect.ts";
import { explainDistributed, indexNames } from "./distributed-plan.ts";

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
  /** Shards one such query runs on (Citus tasks); 1 on a plain PostgreSQL node. */
  shards: number;
  /** Worker nodes those shards are on; 1 on a plain node. */
  workers: number;
  /** Shards whose plan scans the HNSW index (the rest search exactly). */
  hnswShards: number;
}

/** What one query of a kind touches and how each shard searches, from EXPLAIN (see distributed-plan.ts). */
export async function explainSearch(client: pg.ClientBase, dialect: VectorDialect, query: SearchQuery, k: number): Promise<PlanSummary> {
  const { text, values } = searchSql(dialect, query, k);
  const plan = await explainDistributed(client, text, values, BENCH_INDEX);
  if (plan.tasks === 0) {
    // A plain PostgreSQL node: the plan itself says which indexes it scans.
    const result = await client.query(`EXPLAIN (FORMAT JSON) ${text}`, values);
    const indexes = indexNames(result.rows[0]["QUERY PLAN"]);
    const usesHnswIndex = indexes.some((name) => name.startsWith(BENCH_INDEX));
    return { indexes, usesHnswIndex, shards: 1, workers: 1, hnswShards: usesHnswIndex ? 1 : 0 };
  }
  return { indexes: plan.indexes, usesHnswIndex: plan.indexTasks > 0, shards: plan.tasks, workers: plan.workers.length, hnswShards: plan.indexTasks };
}
