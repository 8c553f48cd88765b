// The suite's own table: created fresh for each run in the benchmark schema, distributed on
// namespace where Citus exists, loaded with the seeded data set by COPY, then indexed (building the
// HNSW index after the load is much faster than inserting into a live one).
import { pipeline } from "node:stream/promises";
import { Readable } from "node:stream";
import type pg from "pg";
import { from as copyFrom } from "pg-copy-streams";
import { quoteIdent } from "../sql/migrations.ts";
import type { VectorDialect } from "../sql/vector-dialect.ts";
import { ClusteredVectors, STREAMS, vectorLiteral, type DatasetOptions, type DatasetRow } from "./dataset.ts";
import { BENCH_INDEX, BENCH_SEARCH_FUNCTION, BENCH_TABLE } from "./search-sql.ts";
import { searchFunctionStatements } from "../sql/search-plan.ts";
import { nowMs } from "./latency.ts";

export interface TableSetup {
  dialect: VectorDialect;
  citus: boolean;
  hnswAccessMethod: string;
  m: number;
  efConstruction: number;
  shardCount: number;
  /** The database's ef_search (the search function's HNSW branch asks for at least 4k). */
  efSearch: number;
  /** The search function's threshold: namespaces of at most this many rows are searched exactly. */
  exactMaxRows: number;
}

export interface LoadResult {
  rows: number;
  distributed: boolean;
  loadSeconds: number;
  indexBuildSeconds: number;
}

export function copyLine(row: DatasetRow): string {
  return `${row.namespace}\t${row.id}\t${vectorLiteral(row.embedding)}\tbench row ${row.id}\n`;
}

/** Writes rows with COPY ... FROM STDIN in one statement. */
export async function copyRows(client: pg.ClientBase, rows: Iterable<DatasetRow>): Promise<void> {
  const stream = client.query(copyFrom(`COPY ${BENCH_TABLE} (namespace, id, embedding, content) FROM STDIN`));
  await pipeline(Readable.from((function* () {
    for (const row of rows) yield copyLine(row);
  })()), stream);
}

function* generateRows(dataset: ClusteredVectors, count: number): Generator<DatasetRow> {
  for (let id = 0; id < count; id++) yield dataset.nextRow(id);
}

/** Drops every overload of the suite's search function (under Citus the drop reaches the workers). */
export async function dropSearchFunctions(client: pg.ClientBase): Promise<void> {
  const [schema, name] = BENCH_SEARCH_FUNCTION.split(".");
  await client.query(`DO $$
DECLARE f regprocedure;
BEGIN
  FOR f IN SELECT p.oid::regprocedure FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = '${schema}' AND p.proname = '${name}' LOOP
    EXECUTE 'DROP FUNCTION ' || f;
  END LOOP;
END
$$`);
}

export async function createAndLoadTable(client: pg.ClientBase, setup: TableSetup, data: DatasetOptions): Promise<LoadResult> {
  // A function distributed with an earlier table would keep that table's colocation: drop it first.
  await dropSearchFunctions(client);
  await client.query(`DROP TABLE IF EXISTS ${BENCH_TABLE}`);
  await client.query(`CREATE TABLE ${BENCH_TABLE} (
    namespace text NOT NULL,
    id bigint NOT NULL,
    embedding ${setup.dialect.columnType(data.dimensions)} NOT NULL,
    content text NOT NULL,
    PRIMARY KEY (namespace, id)
  )`);
  if (setup.citus) {
    await client.query(`SELECT create_distributed_table($1, 'namespace', shard_count => ${setup.shardCount}, colocate_with => 'none')`, [BENCH_TABLE]);
  }
  const loadStart = nowMs();
  await copyRows(client, generateRows(new ClusteredVectors(data, STREAMS.rows), data.rows));
  const loadSeconds = (nowMs() - loadStart) / 1000;
  const indexStart = nowMs();
  await client.query(
    `CREATE INDEX ${BENCH_INDEX} ON ${BENCH_TABLE} USING ${quoteIdent(setup.hnswAccessMethod)} (embedding ${setup.dialect.cosineOpclass}) ` +
      `WITH (m = ${setup.m}, ef_construction = ${setup.efConstruction})`,
  );
  const indexBuildSeconds = (nowMs() - indexStart) / 1000;
  await client.query(`ANALYZE ${BENCH_TABLE}`);
  // The same search function the product ships (claude_flow.search_memory), over this table.
  for (const statement of searchFunctionStatements({
    name: BENCH_SEARCH_FUNCTION, table: BENCH_TABLE, columns: [["id", "bigint"]], dialect: setup.dialect, dimensions: data.dimensions,
    efSearch: setup.efSearch, exactMaxRows: setup.exactMaxRows, citus: setup.citus,
  })) await client.query(statement);
  return { rows: data.rows, distributed: setup.citus, loadSeconds, indexBuildSeconds };
}

export async function dropTable(client: pg.ClientBase): Promise<void> {
  await dropSearchFunctions(client);
  await client.query(`DROP TABLE IF EXISTS ${BENCH_TABLE}`);
}
