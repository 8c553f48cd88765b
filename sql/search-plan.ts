// Per-namespace search plan, chosen by the namespace's size (issue 16). Pure: renders the SQL
// functions that applications and the benchmark call, and the same choice as a TypeScript function
// for reports and tests.
//
// Why: on Citus one namespace is a small share of the whole table but a large share of a shard, so
// the planner of a shard switches to the HNSW index and filters afterwards: without iterative scan it
// returns fewer than k rows, with it recall drops and latency rises. Exact search over a small
// namespace (an index scan on the (namespace, ...) primary key, a top-k sort) is both exact and fast;
// above a measured size, HNSW with a relaxed iterative scan, a sized candidate list and a re-sort.
import type { VectorDialect } from "./vector-dialect.ts";

/**
 * Namespaces (or sets of namespaces) with at most this many rows are searched exactly. Measured on
 * the 2-core machine (PostgreSQL 15, pgvector 0.8.0, 384 dimensions, load average 3.5-7): exact
 * search costs 1.8-4.5 µs a row, so 2,000 rows take 4-9 ms at p95 — the 10 ms budget — while HNSW
 * with a namespace filter of 2 % or less of a table loses recall (0.92 at ef_search 40). See README.
 */
export const EXACT_SEARCH_MAX_ROWS = 2000;

export type SearchPlanKind = "exact" | "hnsw";

/** The plan for a search over `rows` rows (the namespaces' total). */
export function chooseSearchPlan(rows: number, exactMaxRows: number = EXACT_SEARCH_MAX_ROWS): SearchPlanKind {
  return rows <= exactMaxRows ? "exact" : "hnsw";
}

/**
 * Candidates the HNSW branch reads per row asked for (its ef_search and LIMIT). Measured at 100k x
 * 384 over 24 namespaces (4,000 rows each): on one node, 4 per row gave recall 0.943 over 4
 * namespaces and 10 gave 0.978; on Citus, each shard's graph is small and the coordinator merges
 * every shard's top k, and 4 per row already gave 1.000 (10 doubled the p50 there).
 */
export function hnswCandidatesPerK(citus: boolean): number {
  return citus ? 4 : 10;
}

/** Candidates the HNSW branch asks for before re-sorting: never fewer than ef_search. */
export function hnswCandidates(k: number, efSearch: number, perK: number): number {
  return Math.max(efSearch, perK * k);
}

/**
 * Settings the HNSW branch applies for its own transaction (set_config(..., true)). pgvector: a
 * relaxed iterative scan keeps reading the graph until enough rows pass the namespace filter, and the
 * outer ORDER BY restores exact order; max_scan_tuples bounds the work (pgvector's default is 20,000).
 */
export function hnswBranchSettings(dialect: VectorDialect, k: number, efSearch: number, perK: number): Record<string, string> {
  const candidates = String(hnswCandidates(k, efSearch, perK));
  if (dialect.extensionName === "vector") {
    return { "hnsw.ef_search": candidates, "hnsw.iterative_scan": "relaxed_order", "hnsw.max_scan_tuples": "50000" };
  }
  return { [dialect.efSearchSetting]: candidates };
}

export interface SearchFunctionSpec {
  /** Schema-qualified function name, e.g. claude_flow.search_memory. */
  name: string;
  /** Schema-qualified table, distributed on `namespace` under Citus. */
  table: string;
  /** Columns returned besides the distance, with their types: [["key", "text"], ...]. */
  columns: Array<[string, string]>;
  dialect: VectorDialect;
  dimensions: number;
  /** The database's ef_search (the HNSW branch reads at least hnswCandidatesPerK × k candidates). */
  efSearch: number;
  exactMaxRows: number;
  /** Distribute the single-namespace function (Citus): the call runs on the worker holding the namespace. */
  citus: boolean;
}

const lit = (value: string) => `'${value.replace(/'/g, "''")}'`;

/**
 * Two overloads: (namespace text, query, k) and (namespaces text[], query, k), each with an optional
 * last argument `exact_max_rows` (the threshold; tests and the benchmark pass it to force a branch).
 * Under Citus the single-namespace overload is distributed on its namespace argument and colocated
 * with the table: the coordinator delegates the whole call to the worker holding that namespace,
 * where its settings (set_config, transaction-local) apply to the shard's scan — a SET on the
 * coordinator would not reach the shard outside a transaction block. The array overload runs on the
 * coordinator: its exact branch is pushed to the shards; its HNSW branch's settings reach them only
 * inside a transaction block (citus.propagate_set_commands = local), else the database's apply.
 */
export function searchFunctionStatements(spec: SearchFunctionSpec): string[] {
  const vectorType = spec.dialect.columnType(spec.dimensions);
  const perK = hnswCandidatesPerK(spec.citus);
  const out = spec.columns.map(([name, type]) => `${name} ${type}`).join(", ");
  const cols = spec.columns.map(([name]) => `t.${name}`).join(", ");
  const settings = (kExpr: string) =>
    Object.entries(hnswBranchSettings(spec.dialect, 10, spec.efSearch, perK))
      .map(([name, value]) =>
        name === spec.dialect.efSearchSetting
          ? `    PERFORM set_config(${lit(name)}, greatest(${spec.efSearch}, ${perK} * ${kExpr})::text, true);`
          : `    PERFORM set_config(${lit(name)}, ${lit(value)}, true);`,
      )
      .join("\n");
  const body = (filter: string, countSql: string) => `
DECLARE
  n bigint;
BEGIN
  IF k < 1 THEN
    RETURN;
  END IF;
  ${countSql}
  IF n <= exact_max_rows THEN
    -- Exact: "+ 0" makes the sort key an expression no index matches, so no shard can pick HNSW.
    RETURN QUERY SELECT ${cols}, (t.embedding <=> query)::double precision
      FROM ${spec.table} t WHERE ${filter}
      ORDER BY (t.embedding <=> query) + 0 LIMIT k;
  ELSE
${settings("k")}
    RETURN QUERY SELECT c.* FROM (
      SELECT ${cols}, (t.embedding <=> query)::double precision AS distance
      FROM ${spec.table} t WHERE ${filter}
      ORDER BY t.embedding <=> query LIMIT greatest(${spec.efSearch}, ${perK} * k)) c
      ORDER BY c.distance LIMIT k;
  END IF;
END`;
  const single = `CREATE OR REPLACE FUNCTION ${spec.name}(namespace text, query ${vectorType}, k integer, exact_max_rows integer DEFAULT ${spec.exactMaxRows})
RETURNS TABLE (${out}, distance double precision)
LANGUAGE plpgsql AS $fn$${body(
    "t.namespace = search_namespace",
    `SELECT count(*) INTO n FROM (SELECT 1 FROM ${spec.table} t WHERE t.namespace = search_namespace LIMIT exact_max_rows + 1) s;`,
  ).replace("DECLARE\n", "DECLARE\n  search_namespace text := namespace;\n")}
$fn$;`;
  const many = `CREATE OR REPLACE FUNCTION ${spec.name}(namespaces text[], query ${vectorType}, k integer, exact_max_rows integer DEFAULT ${spec.exactMaxRows})
RETURNS TABLE (${out}, distance double precision)
LANGUAGE plpgsql AS $fn$${body("t.namespace = ANY (namespaces)", `SELECT count(*) INTO n FROM ${spec.table} t WHERE t.namespace = ANY (namespaces);`)}
$fn$;`;
  const statements = [single, many];
  if (spec.citus) {
    const signature = `${spec.name}(text, ${vectorType}, integer, integer)`;
    statements.push(
      `SELECT create_distributed_function(${lit(signature)}, 'namespace', colocate_with := ${lit(spec.table)});`,
    );
  }
  return statements;
}
