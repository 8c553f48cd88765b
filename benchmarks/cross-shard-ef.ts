// A measurement, not part of the suite (issue 16, cross-shard search): top-k over every namespace
// (no namespace filter: every shard searched) on the Citus cluster at several per-shard
// hnsw.ef_search values, against the plain node at the database's own ef_search, each at 1, 8 and 50
// clients, with recall@k against exact search. Each shard returns its own top k and the coordinator
// merges them, so a smaller per-shard candidate list may keep recall: this measures by how much.
//
//   npx tsx benchmarks/cross-shard-ef.ts --url URL --baseline-url URL [--rows N] [--namespaces N] [--seconds S] [--out FILE]
//
// Each search runs as one simple-query round trip: BEGIN; SET LOCAL hnsw.ef_search = N; SELECT ...; COMMIT
// (Citus propagates SET LOCAL to the shards), and "db" runs the bare SELECT at the database's setting.
import { writeFileSync } from "node:fs";
import pg from "pg";
import { createAndLoadTable, dropTable } from "./bench-table.ts";
import { ClusteredVectors, STREAMS, vectorLiteral } from "./dataset.ts";
import { dialectOf, readEnvironment } from "./environment.ts";
import { DEFAULT_CONFIG } from "../components/spec.ts";
import { quietClient } from "../components/pg-client.ts";

interface Args {
  url: string;
  baselineUrl: string;
  rows: number;
  namespaces: number;
  seconds: number;
  out?: string;
  efs: string[];
}

function parse(argv: string[]): Args {
  const get = (name: string) => {
    const index = argv.indexOf(name);
    return index >= 0 ? argv[index + 1] : undefined;
  };
  const url = get("--url");
  const baselineUrl = get("--baseline-url");
  if (!url || !baselineUrl) throw new Error("usage: --url URL --baseline-url URL [--rows N] [--namespaces N] [--seconds S] [--ef 10,16,20,40,db] [--out FILE]");
  return {
    url,
    baselineUrl,
    rows: Number(get("--rows") ?? 100_000),
    namespaces: Number(get("--namespaces") ?? 200),
    seconds: Number(get("--seconds") ?? 8),
    out: get("--out"),
    efs: (get("--ef") ?? "10,16,20,40,db").split(","),
  };
}

const K = DEFAULT_CONFIG.searchK;
const QUERIES = 100;

function sql(vector: string, ef: string, exact = false): string {
  const select = `SELECT id FROM benchmark.vector_items ORDER BY ${exact ? `(embedding <=> '${vector}') + 0` : `embedding <=> '${vector}'`} LIMIT ${K}`;
  return ef === "db" || exact ? select : `BEGIN; SET LOCAL hnsw.ef_search = ${Number(ef)}; ${select}; COMMIT`;
}

async function ids(client: pg.ClientBase | pg.Pool, text: string): Promise<string[]> {
  const result = (await client.query(text)) as unknown as pg.QueryResult | pg.QueryResult[];
  const last = Array.isArray(result) ? result.find((r) => r.command === "SELECT")! : result;
  return last.rows.map((row: { id: string }) => String(row.id));
}

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
const round = (value: number, places = 2) => Math.round(value * 10 ** places) / 10 ** places;

/** Closed loop for `seconds`: every client its own connection, one search after another. */
async function throughput(pool: pg.Pool, clients: number, seconds: number, texts: string[]): Promise<{ qps: number; p95: number }> {
  const deadline = performance.now() + seconds * 1000;
  const latencies: number[] = [];
  const start = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async (_, c) => {
      const client = await pool.connect();
      try {
        for (let i = c; performance.now() < deadline; i += clients) {
          const t0 = performance.now();
          await ids(client, texts[i % texts.length]);
          latencies.push(performance.now() - t0);
        }
      } finally {
        client.release();
      }
    }),
  );
  const elapsed = (performance.now() - start) / 1000;
  latencies.sort((a, b) => a - b);
  return { qps: round(latencies.length / elapsed, 1), p95: round(percentile(latencies, 95)) };
}

async function measure(url: string, label: string, efs: string[], vectors: string[], seconds: number) {
  const pool = new pg.Pool({ connectionString: url, max: 50 });
  try {
    const exact: string[][] = [];
    for (const v of vectors) exact.push(await ids(pool, sql(v, "db", true)));
    const rows = [];
    for (const ef of efs) {
      const texts = vectors.map((v) => sql(v, ef));
      for (const text of texts.slice(0, 10)) await ids(pool, text); // warm
      const latencies: number[] = [];
      let found = 0;
      let short = 0;
      for (let i = 0; i < texts.length; i++) {
        const t0 = performance.now();
        const got = await ids(pool, texts[i]);
        latencies.push(performance.now() - t0);
        if (got.length < K) short++;
        const truth = new Set(exact[i]);
        found += got.filter((id) => truth.has(id)).length;
      }
      latencies.sort((a, b) => a - b);
      const c8 = await throughput(pool, 8, seconds, texts);
      const c50 = await throughput(pool, 50, seconds, texts);
      const row = { target: label, ef, recall: round(found / (K * texts.length), 4), short, p50: round(percentile(latencies, 50)), p95: round(percentile(latencies, 95)), qps8: c8.qps, p95at8: c8.p95, qps50: c50.qps, p95at50: c50.p95 };
      console.log(JSON.stringify(row));
      rows.push(row);
    }
    return rows;
  } finally {
    await pool.end();
  }
}

async function main(): Promise<void> {
  const args = parse(process.argv.slice(2));
  const data = { rows: args.rows, dimensions: DEFAULT_CONFIG.embeddingDimensions, namespaces: args.namespaces, clusters: 100, seed: 42 };
  const targets = [
    { url: args.url, label: "citus", efs: args.efs },
    { url: args.baselineUrl, label: "single node", efs: ["db"] },
  ];
  // Load both at once (the machine's cores are shared either way); measure one after the other.
  await Promise.all(
    targets.map(async ({ url, label }) => {
      const client = quietClient({ connectionString: url });
      await client.connect();
      try {
        const environment = await readEnvironment(client);
        const load = await createAndLoadTable(client, {
          dialect: dialectOf(environment), citus: environment.citus.present, hnswAccessMethod: environment.hnswAccessMethod,
          m: DEFAULT_CONFIG.hnswM, efConstruction: DEFAULT_CONFIG.hnswEfConstruction, shardCount: DEFAULT_CONFIG.shardCount,
          efSearch: DEFAULT_CONFIG.hnswEfSearch, exactMaxRows: DEFAULT_CONFIG.searchExactMaxRows,
        }, data);
        console.error(`${label}: loaded ${load.rows} rows in ${round(load.loadSeconds, 1)} s, index ${round(load.indexBuildSeconds, 1)} s`);
      } finally {
        await client.end();
      }
    }),
  );
  const queryStream = new ClusteredVectors(data, STREAMS.queries);
  const vectors = Array.from({ length: QUERIES }, () => vectorLiteral(queryStream.nextVector()));
  const results = [];
  for (const target of targets) results.push(...(await measure(target.url, target.label, target.efs, vectors, args.seconds)));
  if (args.out) writeFileSync(args.out, JSON.stringify(results, null, 2) + "\n");
  for (const { url } of targets) {
    const client = quietClient({ connectionString: url });
    await client.connect();
    await dropTable(client).finally(() => client.end());
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
