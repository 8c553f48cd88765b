// A measurement beside the suite (issue 14): what TLS costs the client path. The suite's own table
// and search (one namespace, top k) run through the same PgBouncer twice in one run: over TCP with
// TLS (sslmode=verify-full) and over PgBouncer's unix socket without TLS. Behind PgBouncer both are
// the same (PgBouncer -> HAProxy -> PostgreSQL is TLS either way), so the difference is the client
// leg alone. Phases alternate (plain, TLS, plain, TLS, ...) so that drift in the machine's load
// falls on both sides. Also measured: a new connection's set-up (connect, SELECT 1, close), where the
// TLS handshake is paid.
//
//   npx tsx benchmarks/tls-compare.ts --url TLS_URL --plain-url PLAIN_URL [--seconds S] [--rounds N]
//                                     [--clients N] [--rows N] [--out FILE]
import { writeFileSync } from "node:fs";
import type { TLSSocket } from "node:tls";
import pg from "pg";
import { createAndLoadTable, dropTable } from "./bench-table.ts";
import { ClusteredVectors, STREAMS, vectorLiteral, type DatasetOptions } from "./dataset.ts";
import { dialectOf, readEnvironment } from "./environment.ts";
import { LatencyRecorder, nowMs } from "./latency.ts";
import { search, type SearchQuery } from "./search-sql.ts";
import { DEFAULT_CONFIG } from "../components/spec.ts";
import type { VectorDialect } from "../sql/vector-dialect.ts";
import { quietClient } from "../components/pg-client.ts";

export type Transport = "tls" | "plain";

export interface TlsCompareOptions {
  /** postgresql:// URL of PgBouncer over TCP with sslmode=verify-full (and sslrootcert). */
  tlsUrl: string;
  /** postgresql:// URL of the same PgBouncer without TLS (its unix socket: ?host=/dir). */
  plainUrl: string;
  /** Length of one measured phase, s. */
  seconds: number;
  /** Phases per transport, alternated. */
  rounds: number;
  /** Concurrent clients of the search phases, each on its own connection. */
  clients: number;
  /** Rows of the suite's table (384 dimensions, 24 namespaces). */
  rows: number;
  /** New connections timed one after another per phase. */
  connections: number;
  log?: (line: string) => void;
}

export interface TransportFigures {
  transport: Transport;
  /** Whether the client's socket was a TLS socket (checked on a connection of each phase). */
  encrypted: boolean;
  searches: number;
  errors: number;
  /** Searches per second over all phases. */
  qps: number;
  p50Ms: number;
  p95Ms: number;
  /** Connect + SELECT 1 + close. */
  connectP50Ms: number;
  connectP95Ms: number;
}

export interface TlsComparison {
  rows: number;
  clients: number;
  secondsPerPhase: number;
  rounds: number;
  tls: TransportFigures;
  plain: TransportFigures;
  /** tls / plain, 3 places (p95: > 1 is slower with TLS; qps: < 1 is fewer with TLS). */
  ratios: { p95: number | null; qps: number | null; connectP95: number | null };
}

const round = (value: number, places = 3) => Math.round(value * 10 ** places) / 10 ** places;
const ratio = (a: number, b: number) => (b > 0 && Number.isFinite(a) ? round(a / b) : null);

function isEncrypted(client: pg.Client): boolean {
  // node-postgres keeps its socket on the connection; after TLS negotiation it is a TLSSocket.
  const stream = (client as unknown as { connection: { stream: Partial<TLSSocket> } }).connection.stream;
  return stream.encrypted === true;
}

interface Tally {
  searches: LatencyRecorder;
  connects: LatencyRecorder;
  seconds: number;
  encrypted: boolean[];
}

async function searchPhase(url: string, clients: number, seconds: number, dialect: VectorDialect, queries: SearchQuery[], tally: Tally): Promise<void> {
  const deadline = nowMs() + seconds * 1000;
  const started = nowMs();
  await Promise.all(
    Array.from({ length: clients }, async (_, c) => {
      const client = quietClient({ connectionString: url });
      await client.connect();
      tally.encrypted.push(isEncrypted(client));
      try {
        for (let i = c; nowMs() < deadline; i += clients) {
          const t0 = nowMs();
          try {
            await search(client, dialect, queries[i % queries.length], DEFAULT_CONFIG.searchK);
            tally.searches.recordMs(nowMs() - t0);
          } catch (error) {
            tally.searches.recordError(error);
          }
        }
      } finally {
        await client.end();
      }
    }),
  );
  tally.seconds += (nowMs() - started) / 1000;
}

async function connectPhase(url: string, count: number, tally: Tally): Promise<void> {
  for (let i = 0; i < count; i++) {
    const t0 = nowMs();
    const client = quietClient({ connectionString: url });
    try {
      await client.connect();
      await client.query("SELECT 1");
      tally.connects.recordMs(nowMs() - t0);
    } catch (error) {
      tally.connects.recordError(error);
    } finally {
      await client.end().catch(() => undefined);
    }
  }
}

function figures(transport: Transport, tally: Tally): TransportFigures {
  const s = tally.searches.summary();
  const c = tally.connects.summary();
  return {
    transport,
    encrypted: tally.encrypted.length > 0 && tally.encrypted.every(Boolean),
    searches: tally.searches.count,
    errors: tally.searches.errors + tally.connects.errors,
    qps: tally.seconds > 0 ? round(tally.searches.count / tally.seconds, 1) : 0,
    p50Ms: s.p50,
    p95Ms: s.p95,
    connectP50Ms: c.p50,
    connectP95Ms: c.p95,
  };
}

/**
 * Loads the suite's table through `tlsUrl`, measures both transports alternately and drops the table.
 * Throws when a URL does not connect, or when the "tls" side is not encrypted or the "plain" side is
 * (the comparison would mean nothing).
 */
export async function compareTls(options: TlsCompareOptions): Promise<TlsComparison> {
  const log = options.log ?? (() => undefined);
  const data: DatasetOptions = { rows: options.rows, dimensions: DEFAULT_CONFIG.embeddingDimensions, namespaces: 24, clusters: 50, seed: 42 };
  const setup = quietClient({ connectionString: options.tlsUrl });
  await setup.connect();
  let dialect: VectorDialect;
  try {
    const environment = await readEnvironment(setup);
    dialect = dialectOf(environment);
    const load = await createAndLoadTable(setup, {
      dialect, citus: environment.citus.present, hnswAccessMethod: environment.hnswAccessMethod,
      m: DEFAULT_CONFIG.hnswM, efConstruction: DEFAULT_CONFIG.hnswEfConstruction, shardCount: DEFAULT_CONFIG.shardCount,
      efSearch: DEFAULT_CONFIG.hnswEfSearch, exactMaxRows: DEFAULT_CONFIG.searchExactMaxRows,
    }, data);
    log(`loaded ${load.rows} rows in ${round(load.loadSeconds, 1)} s, HNSW index ${round(load.indexBuildSeconds, 1)} s`);
  } finally {
    await setup.end();
  }
  const stream = new ClusteredVectors(data, STREAMS.queries);
  const queries: SearchQuery[] = Array.from({ length: 200 }, () => ({ kind: "single-shard", namespaces: [stream.nextNamespace()], vector: vectorLiteral(stream.nextVector()) }));
  const tallies: Record<Transport, Tally> = {
    tls: { searches: new LatencyRecorder(), connects: new LatencyRecorder(), seconds: 0, encrypted: [] },
    plain: { searches: new LatencyRecorder(), connects: new LatencyRecorder(), seconds: 0, encrypted: [] },
  };
  const urls: Record<Transport, string> = { tls: options.tlsUrl, plain: options.plainUrl };
  // Warm-up on both (not measured): caches, PgBouncer's server connections.
  for (const transport of ["plain", "tls"] as const) {
    await searchPhase(urls[transport], options.clients, 1, dialect, queries, { searches: new LatencyRecorder(), connects: new LatencyRecorder(), seconds: 0, encrypted: [] });
  }
  for (let r = 0; r < options.rounds; r++) {
    for (const transport of ["plain", "tls"] as const) {
      await searchPhase(urls[transport], options.clients, options.seconds, dialect, queries, tallies[transport]);
      await connectPhase(urls[transport], options.connections, tallies[transport]);
      log(`round ${r + 1}/${options.rounds} ${transport}: ${tallies[transport].searches.count} searches so far`);
    }
  }
  const cleanup = quietClient({ connectionString: options.tlsUrl });
  await cleanup.connect();
  await dropTable(cleanup).finally(() => cleanup.end());
  const tls = figures("tls", tallies.tls);
  const plain = figures("plain", tallies.plain);
  if (!tls.encrypted) throw new Error("tls-compare: the --url connections were not encrypted: give sslmode=verify-full (and sslrootcert)");
  if (plain.encrypted) throw new Error("tls-compare: the --plain-url connections were encrypted: give PgBouncer's unix socket (?host=/dir) or sslmode=disable");
  return {
    rows: options.rows,
    clients: options.clients,
    secondsPerPhase: options.seconds,
    rounds: options.rounds,
    tls,
    plain,
    ratios: { p95: ratio(tls.p95Ms, plain.p95Ms), qps: ratio(tls.qps, plain.qps), connectP95: ratio(tls.connectP95Ms, plain.connectP95Ms) },
  };
}

/** The comparison as a text table. */
export function formatTlsComparison(c: TlsComparison): string {
  const line = (f: TransportFigures) =>
    `${f.transport.padEnd(6)} ${String(f.qps).padStart(9)} ${String(f.p50Ms).padStart(8)} ${String(f.p95Ms).padStart(8)} ${String(f.connectP50Ms).padStart(11)} ${String(f.connectP95Ms).padStart(11)} ${String(f.searches).padStart(9)} ${String(f.errors).padStart(6)}`;
  return [
    `search (1 namespace, top ${DEFAULT_CONFIG.searchK}), ${c.clients} clients, ${c.rounds} x ${c.secondsPerPhase} s per transport, ${c.rows} rows`,
    `${"".padEnd(6)} ${"search/s".padStart(9)} ${"p50 ms".padStart(8)} ${"p95 ms".padStart(8)} ${"connect p50".padStart(11)} ${"connect p95".padStart(11)} ${"searches".padStart(9)} ${"errors".padStart(6)}`,
    line(c.plain),
    line(c.tls),
    `tls / plain: p95 ${c.ratios.p95 ?? "-"}, search/s ${c.ratios.qps ?? "-"}, connect p95 ${c.ratios.connectP95 ?? "-"}`,
  ].join("\n");
}

function parse(argv: string[]): TlsCompareOptions & { out?: string } {
  const get = (name: string) => {
    const index = argv.indexOf(name);
    return index >= 0 ? argv[index + 1] : undefined;
  };
  const tlsUrl = get("--url");
  const plainUrl = get("--plain-url");
  if (!tlsUrl || !plainUrl) throw new Error("usage: --url TLS_URL --plain-url PLAIN_URL [--seconds S] [--rounds N] [--clients N] [--rows N] [--out FILE]");
  const number = (name: string, fallback: number, min: number) => {
    const value = Number(get(name) ?? fallback);
    if (!Number.isInteger(value) || value < min) throw new Error(`${name}: got ${get(name)}; allowed: an integer >= ${min}`);
    return value;
  };
  return {
    tlsUrl,
    plainUrl,
    seconds: number("--seconds", 10, 1),
    rounds: number("--rounds", 2, 1),
    clients: number("--clients", 8, 1),
    rows: number("--rows", 10_000, 100),
    connections: number("--connections", 50, 1),
    out: get("--out"),
    log: (line) => console.error(line),
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const options = parse(process.argv.slice(2));
  compareTls(options)
    .then((result) => {
      console.log(formatTlsComparison(result));
      if (options.out) writeFileSync(options.out, JSON.stringify(result, null, 2) + "\n");
    })
    .catch((error) => {
      console.error(error instanceof Error ? error.message : error);
      process.exit(1);
    });
}
