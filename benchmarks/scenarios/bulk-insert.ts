// Bulk insert into the indexed table: batches of rows, each batch one transaction, one client;
// once as multi-row INSERT and once as COPY. Every row also goes into the live HNSW index.
import type pg from "pg";
import { copyRows } from "../bench-table.ts";
import { insertRows } from "../insert-sql.ts";
import { runClosedLoop } from "../load-loops.ts";
import { buildScenarioResult, perSecond, type ScenarioResult } from "../scenario-result.ts";
import { TARGETS } from "../targets.ts";
import type { SuiteContext } from "../suite-context.ts";

type InsertMethod = "insert" | "copy";

export async function bulkInsert(context: SuiteContext, method: InsertMethod): Promise<ScenarioResult> {
  const { insertBatches: batches, rowsPerBatch } = context.plan;
  const title = method === "insert" ? "Bulk insert (multi-row INSERT)" : "Bulk insert (COPY)";
  // Rows are generated before timing starts.
  const batchRows = Array.from({ length: batches }, () => context.makeRows(rowsPerBatch));
  const pool = context.pool(1);
  context.progress.begin(title, batches);
  const loop = await runClosedLoop(pool, {
    clients: 1,
    totalOperations: batches,
    nextOperation: (index) => ({
      name: method,
      run: (db) => (method === "insert" ? insertRows(db, context.dialect, batchRows[index]) : copyRows(db as pg.ClientBase, batchRows[index])),
    }),
    onDone: (count) => context.progress.tick(count),
  });
  const rows = loop.overall.count * rowsPerBatch;
  const result = buildScenarioResult(
    {
      id: `bulk-insert-${method}`,
      title,
      description: `${batches} batches x ${rowsPerBatch} rows, one transaction per batch, one client, into the table with its HNSW index`,
      loop: "closed",
      clients: 1,
    },
    loop,
    [perSecond(rows, loop.seconds, "rows/s"), perSecond(loop.overall.count, loop.seconds, "transactions/s")],
    null,
    [{ target: TARGETS.insertThroughput, value: ({ throughput }) => throughput[0].value }],
  );
  context.progress.end(`${title}: ${result.throughput[0].value} rows/s (${result.throughput[1].value} transactions/s), batch p95 ${result.latencyMs.p95} ms`);
  return result;
}
