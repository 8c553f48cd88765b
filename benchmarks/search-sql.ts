// The SQL the suite runs against its own table, and exact search for recall.
import type pg from "pg";
import { BENCHMARK_SCHEMA } from "../sql/migrations.ts";
import type { VectorDialect } from "../sql/vector-dialect.ts";
import { chooseSearchPlan, type SearchPlanKind } from "../sql/search-plan.ts";
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

/** The suite's search function, rendered by sql/search-plan.ts like the product's claude_flow.search_memory. */
export const BENCH_SEARCH_FUNCTION = `${BENCHMARK_SCHEMA}.search_items`;

/**
 * One search as the suite runs it: a call of the search function, which picks exact search or HNSW
 * by the namespaces' size (sql/search-plan.ts). The single-namespace form passes `text`, so that
 * under Citus the call is delegated to the worker holding the namespace.
 */
export function searchSql(dialect: VectorDialect, query: SearchQuery, k: number): SearchSql {
  const namespaces = query.kind === "single-shard" ? "$1::text" : "$1::text[]";
  return {
    text: `SELECT id::text AS id FROM ${BENCH_SEARCH_FUNCTION}(${namespaces}, $2::${dialect.castType}, ${k})`,
    values: [query.kind === "single-shard" ? query.namespaces[0] : query.namespaces, query.vector],
  };
}

/** The query one branch of the search function runs (for EXPLAIN and exact search). */
export function branchSql(dialect: VectorDialect, query: SearchQuery, k: number, plan: SearchPlanKind): SearchSql {
  const filter = query.kind === "single-shard" ? "namespace = $1" : "namespace = ANY($1::text[])";
  // "+ 0": a sort key no index matches, so every shard sorts exactly.
  const order = plan === "exact" ? `(embedding <=> $2::${dialect.castType}) + 0` : `embedding <=> $2::${dialect.castType}`;
  return {
    text: `SELECT id::text AS id FROM ${BENCH_TABLE} WHERE ${filter} ORDER BY ${order} LIMIT ${k}`,
    values: [query.kind === "single-shard" ? query.namespaces[0] : query.namespaces, query.vector],
  };
}

/** Rows in the query's namespaces: what the search function's plan choice reads. */
export async function namespaceRows(client: pg.ClientBase | pg.Pool, query: SearchQuery): Promise<number> {
  const result = await client.query<{ n: string }>(`SELECT count(*) AS n FROM ${BENCH_TABLE} WHERE namespace = ANY($1::text[])`, [query.namespaces]);
  return Number(result.rows[0].n);
}

export async function search(client: pg.ClientBase | pg.Pool, dialect: VectorDialect, query: SearchQuery, k: number): Promise<string[]> {
  const { text, values } = searchSql(dialect, query, k);
  const result = await client.query<{ id: string }>(text, values);
  return result.rows.map((row) => row.id);
}

/** Exact search: the exact branch's query (its sort key matches no index, on any shard). */
export async function exactSearch(client: pg.ClientBase, dialect: VectorDialect, query: SearchQuery, k: number): Promise<string[]> {
  const { text, values } = branchSql(dialect, query, k, "exact");
  const result = await client.query<{ id: string }>(text, values);
  return result.rows.map((row) => row.id);
}

export interface PlanSummary {
  /** The search function's choice for this query: exact search or the HNSW index. */
  choice: SearchPlanKind;
  /** Rows in the query's namespaces (what the choice reads) and the threshold it compares with. */
  namespaceRows: number;
  exactMaxRows: number;
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

/** The search function's choice for a query, and what that branch touches and how each shard searches, from EXPLAIN (see distributed-plan.ts). */
export async function explainSearch(client: pg.ClientBase, dialect: VectorDialect, query: SearchQuery, k: number, exactMaxRows: number): Promise<PlanSummary> {
  const rows = await namespaceRows(client, query);
  const choice = chooseSearchPlan(rows, exactMaxRows);
  const base = { choice, namespaceRows: rows, exactMaxRows };
  const { text, values } = branchSql(dialect, query, k, choice);
  const plan = await explainDistributed(client, text, values, BENCH_INDEX);
  if (plan.tasks === 0) {
    // A plain PostgreSQL node: the plan itself says which indexes it scans.
    const result = await client.query(`EXPLAIN (FORMAT JSON) ${text}`, values);
    const indexes = indexNames(result.rows[0]["QUERY PLAN"]);
    const usesHnswIndex = indexes.some((name) => name.startsWith(BENCH_INDEX));
    return { ...base, indexes, usesHnswIndex, shards: 1, workers: 1, hnswShards: usesHnswIndex ? 1 : 0 };
  }
  return { ...base, indexes: plan.indexes, usesHnswIndex: plan.indexTasks > 0, shards: plan.tasks, workers: plan.workers.length, hnswShards: plan.indexTasks };
}
