// What every scenario needs: options, the mode's plan, the vector dialect, pools sized to the
// client count, deterministic query and insert streams, and the progress display.
import pg from "pg";
import type { VectorDialect } from "../sql/vector-dialect.ts";
import { ClusteredVectors, STREAMS, vectorLiteral, type DatasetOptions, type DatasetRow } from "./dataset.ts";
import type { SearchMetrics } from "./metrics.ts";
import type { ModePlan, BenchmarkOptions } from "./options.ts";
import type { Progress } from "./progress.ts";
import { explainSearch, search, type PlanSummary, type SearchKind, type SearchQuery } from "./search-sql.ts";

// Client-side bound on every query, so a hung server cannot hang the run.
const QUERY_TIMEOUT_MS = 60_000;

export class SuiteContext {
  readonly queryVectors: ClusteredVectors;
  readonly insertVectors: ClusteredVectors;
  private nextId: number;
  private readonly pools: pg.Pool[] = [];

  constructor(
    readonly options: BenchmarkOptions,
    readonly plan: ModePlan,
    readonly data: DatasetOptions,
    readonly dialect: VectorDialect,
    readonly citus: boolean,
    readonly progress: Progress,
    /** Prometheus metrics of the measured searches, when the run exposes them. */
    readonly metrics?: SearchMetrics,
  ) {
    this.queryVectors = new ClusteredVectors(data, STREAMS.queries);
    this.insertVectors = new ClusteredVectors(data, STREAMS.inserts);
    this.nextId = data.rows;
  }

  get k(): number {
    return this.options.k;
  }

  /** A pool with exactly as many connections as clients: pg's default of 10 would measure queueing. */
  pool(clients: number): pg.Pool {
    const pool = new pg.Pool({ connectionString: this.options.url, max: clients, query_timeout: QUERY_TIMEOUT_MS });
    pool.on("error", () => {}); // an idle client's error surfaces on its next query
    this.pools.push(pool);
    return pool;
  }

  /** One measured vector search (counted in the Prometheus metrics when the run has them). */
  measuredSearch(db: pg.ClientBase | pg.Pool, query: SearchQuery): Promise<string[]> {
    const run = () => search(db, this.dialect, query, this.k);
    return this.metrics ? this.metrics.observe(query.kind, run) : run();
  }

  /** What one search of `kind` touches, from EXPLAIN of a query drawn for it (shards, workers, index). */
  async explain(kind: SearchKind): Promise<PlanSummary> {
    const pool = this.pool(1);
    const client = await pool.connect();
    try {
      return await explainSearch(client, this.dialect, this.makeQueries(kind, 1)[0], this.k, this.options.exactMaxRows);
    } finally {
      client.release();
    }
  }

  /** `count` search queries of one kind, each from a fresh draw of the query stream. */
  makeQueries(kind: SearchKind, count: number): SearchQuery[] {
    return Array.from({ length: count }, () => ({
      kind,
      namespaces: kind === "single-shard" ? [this.queryVectors.nextNamespace()] : this.queryVectors.nextNamespaces(this.plan.crossShardNamespaces),
      vector: vectorLiteral(this.queryVectors.nextVector()),
    }));
  }

  /** New rows for inserts, with ids after the loaded data set. */
  makeRows(count: number): DatasetRow[] {
    return Array.from({ length: count }, () => this.insertVectors.nextRow(this.nextId++));
  }

  async close(): Promise<void> {
    await Promise.all(this.pools.splice(0).map((pool) => pool.end()));
  }
}
