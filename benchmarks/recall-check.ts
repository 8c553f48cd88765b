// Measures recall@k of the approximate (index) search against exact search on a sample of queries.
import type pg from "pg";
import { recallAtK, summarizeRecall, type RecallSample, type RecallSummary } from "./recall.ts";
import { exactSearch, search, type SearchQuery } from "./search-sql.ts";
import type { SuiteContext } from "./suite-context.ts";

export async function measureRecall(pool: pg.Pool, context: SuiteContext, sample: SearchQuery[]): Promise<RecallSummary> {
  const client = await pool.connect();
  try {
    const values: RecallSample[] = [];
    for (const query of sample) {
      const approximate = await search(client, context.dialect, query, context.k);
      const exact = await exactSearch(client, context.dialect, query, context.k);
      values.push({ recall: recallAtK(approximate, exact, context.k), rows: approximate.length, exactRows: exact.length });
    }
    return summarizeRecall(values, context.k);
  } finally {
    client.release();
  }
}
