// claude_flow.search_memory on the running Citus cluster, as the application calls it (the `app`
// role through PgBouncer): the plan chosen by namespace size (sql/search-plan.ts), k rows whenever
// the namespace holds k, recall against exact search, both branches and both overloads, and the
// single-namespace call delegated to the worker that holds the namespace.
import test from "ava";
import pg from "pg";
import { ClusteredVectors, STREAMS, vectorLiteral } from "../../benchmarks/dataset.ts";
import { recallAtK } from "../../benchmarks/recall.ts";
import { APP_SCHEMA, SEARCH_FUNCTION } from "../../sql/migrations.ts";
import { chooseSearchPlan, EXACT_SEARCH_MAX_ROWS } from "../../sql/search-plan.ts";
import { runningCluster } from "./context.ts";
import { quietClient } from "../../components/pg-client.ts";

const cluster = runningCluster();
const { config } = cluster;
const TABLE = `${APP_SCHEMA}.memory_entries`;
const K = config.searchK;
const PREFIX = "plan-test-";
// Small namespaces (exact branch), one larger than the threshold (HNSW branch), one with fewer than k rows.
const SMALL = { namespaces: 24, rows: 60 };
const LARGE = { name: `${PREFIX}large`, rows: EXACT_SEARCH_MAX_ROWS + 500 };
const TINY = { name: `${PREFIX}tiny`, rows: 3 };
const DATA = { rows: 0, namespaces: 1, dimensions: config.embeddingDimensions, clusters: 16, seed: 16 };
const QUERIES = 20;

async function asApp<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = quietClient({ connectionString: cluster.pgbouncerUrl("app"), connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

const smallName = (index: number) => `${PREFIX}small-${index}`;
const generator = new ClusteredVectors(DATA, STREAMS.rows);
const queryVectors = new ClusteredVectors(DATA, STREAMS.queries);
const queries = Array.from({ length: QUERIES }, () => vectorLiteral(queryVectors.nextVector()));

async function insert(client: pg.Client, namespace: string, count: number): Promise<void> {
  for (let start = 0; start < count; start += 500) {
    const values: unknown[] = [];
    const tuples: string[] = [];
    for (let id = start; id < Math.min(count, start + 500); id++) {
      values.push(namespace, `key-${id}`, vectorLiteral(generator.nextVector()));
      const p = (id - start) * 3;
      tuples.push(`($${p + 1}, $${p + 2}, 'plan test row', $${p + 3}::vector)`);
    }
    await client.query(`INSERT INTO ${TABLE} (namespace, key, content, embedding) VALUES ${tuples.join(", ")}`, values);
  }
}

test.before("load small namespaces, one above the exact-search threshold and one below k", async () => {
  await asApp(async (client) => {
    await client.query(`DELETE FROM ${TABLE} WHERE namespace LIKE $1`, [`${PREFIX}%`]);
    for (let i = 0; i < SMALL.namespaces; i++) await insert(client, smallName(i), SMALL.rows);
    await insert(client, LARGE.name, LARGE.rows);
    await insert(client, TINY.name, TINY.rows);
    await client.query(`ANALYZE ${TABLE}`);
  });
});

test.after.always("remove the test rows", async () => {
  await asApp((client) => client.query(`DELETE FROM ${TABLE} WHERE namespace LIKE $1`, [`${PREFIX}%`]));
});

async function searchKeys(client: pg.Client, namespaces: string | string[], query: string, exactMaxRows?: number): Promise<string[]> {
  const args = exactMaxRows === undefined ? "" : `, ${exactMaxRows}`;
  const cast = Array.isArray(namespaces) ? "text[]" : "text";
  const result = await client.query<{ key: string }>(`SELECT key FROM ${SEARCH_FUNCTION}($1::${cast}, $2::vector, ${K}${args})`, [namespaces, query]);
  return result.rows.map((row) => row.key);
}

async function exactKeys(client: pg.Client, namespaces: string[], query: string): Promise<string[]> {
  const result = await client.query<{ key: string }>(
    `SELECT key FROM ${TABLE} WHERE namespace = ANY($1::text[]) ORDER BY (embedding <=> $2::vector) + 0 LIMIT ${K}`,
    [namespaces, query],
  );
  return result.rows.map((row) => row.key);
}

/** Mean recall and the queries that lost rows, over QUERIES searches. */
async function measure(client: pg.Client, namespaces: string | string[], exactMaxRows?: number): Promise<{ recall: number; lost: number }> {
  const list = Array.isArray(namespaces) ? namespaces : [namespaces];
  let recall = 0;
  let lost = 0;
  for (const query of queries) {
    const found = await searchKeys(client, namespaces, query, exactMaxRows);
    const truth = await exactKeys(client, list, query);
    if (found.length < Math.min(K, truth.length)) lost++;
    recall += recallAtK(found, truth, K);
  }
  return { recall: recall / queries.length, lost };
}

test.serial("the plan choice: small namespaces exact, the large one HNSW", (t) => {
  t.is(chooseSearchPlan(SMALL.rows), "exact");
  t.is(chooseSearchPlan(LARGE.rows), "hnsw");
});

test.serial("a small namespace (exact branch): k rows, recall 1", async (t) => {
  const result = await asApp((client) => measure(client, smallName(3)));
  t.is(result.lost, 0);
  t.is(result.recall, 1);
});

test.serial("a small namespace forced onto the HNSW branch: still k rows (recall is why it is searched exactly)", async (t) => {
  const result = await asApp((client) => measure(client, smallName(5), 0));
  t.is(result.lost, 0, "the relaxed iterative scan keeps reading the graph until k rows pass the namespace filter");
  t.true(result.recall >= 0.8, `recall ${result.recall}`);
});

test.serial("the namespace above the threshold (HNSW branch): k rows, recall at least 0.95", async (t) => {
  const result = await asApp((client) => measure(client, LARGE.name));
  t.is(result.lost, 0);
  t.true(result.recall >= 0.95, `recall ${result.recall}`);
});

test.serial("a namespace with fewer than k rows returns all of them", async (t) => {
  const keys = await asApp((client) => searchKeys(client, TINY.name, queries[0]));
  t.is(keys.length, TINY.rows);
});

test.serial("several namespaces (the array form, across shards): k rows, recall at least 0.95", async (t) => {
  const namespaces = [smallName(0), smallName(7), smallName(11), smallName(19)];
  const result = await asApp((client) => measure(client, namespaces));
  t.is(result.lost, 0);
  t.true(result.recall >= 0.95, `recall ${result.recall}`);
});

test.serial("the single-namespace call is delegated to one worker (one task), the coordinator only forwards it", async (t) => {
  const plan = await asApp(async (client) => {
    // Outside a transaction block (Citus delegates no call inside one): EXPLAIN of a delegated call
    // shows Citus' custom scan with one task on the worker.
    const text = `EXPLAIN (FORMAT JSON) SELECT ${SEARCH_FUNCTION}(${client.escapeLiteral(smallName(2))}::text, ${client.escapeLiteral(queries[0])}::vector, ${K})`;
    const result = await client.query(text);
    return JSON.stringify(result.rows[0]["QUERY PLAN"]);
  });
  t.regex(plan, /"Task Count":\s*1/);
});
