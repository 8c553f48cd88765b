// What each mode measures, and the options a run takes. Quick is sized to finish in about a minute
// on 2 cores; full follows the design's counts; stress raises the client counts and durations.
import { DEFAULT_CONFIG, type BenchmarkMode } from "../components/spec.ts";
import type { FailOn } from "./targets.ts";

export interface ModePlan {
  rows: number;
  namespaces: number;
  clusters: number;
  warmupQueries: number;
  singleShardQueries: number;
  crossShardQueries: number;
  /** Namespaces one cross-shard query spans. */
  crossShardNamespaces: number;
  concurrentClients: number;
  queriesPerClient: number;
  insertBatches: number;
  rowsPerBatch: number;
  mixedClients: number;
  mixedSeconds: number;
  /** Queries compared with exact search per vector scenario. */
  recallSample: number;
  loadGeneratorClients: number;
  loadGeneratorSeconds: number;
}

export const MODE_PLANS: Record<BenchmarkMode, ModePlan> = {
  quick: {
    rows: 5_000, namespaces: 12, clusters: 32, warmupQueries: 50,
    singleShardQueries: 200, crossShardQueries: 100, crossShardNamespaces: 4,
    concurrentClients: 50, queriesPerClient: 4,
    insertBatches: 20, rowsPerBatch: 100,
    mixedClients: 8, mixedSeconds: 8,
    recallSample: 50, loadGeneratorClients: 8, loadGeneratorSeconds: 3,
  },
  full: {
    rows: 100_000, namespaces: 24, clusters: 100, warmupQueries: 200,
    singleShardQueries: 1000, crossShardQueries: 500, crossShardNamespaces: 4,
    concurrentClients: 50, queriesPerClient: 20,
    insertBatches: 100, rowsPerBatch: 100,
    mixedClients: 16, mixedSeconds: 30,
    recallSample: 100, loadGeneratorClients: 8, loadGeneratorSeconds: 10,
  },
  stress: {
    rows: 100_000, namespaces: 24, clusters: 100, warmupQueries: 200,
    singleShardQueries: 1000, crossShardQueries: 500, crossShardNamespaces: 8,
    concurrentClients: 100, queriesPerClient: 50,
    insertBatches: 100, rowsPerBatch: 100,
    mixedClients: 64, mixedSeconds: 60,
    recallSample: 100, loadGeneratorClients: 16, loadGeneratorSeconds: 10,
  },
};

export interface BenchmarkOptions {
  url: string;
  mode: BenchmarkMode;
  /** Directory for report.json and report.html; none: no files. */
  outDir?: string;
  dimensions: number;
  rows: number;
  seed: number;
  k: number;
  hnswM: number;
  hnswEfConstruction: number;
  shardCount: number;
  /** Namespaces of at most this many rows are searched exactly (the stack's searchExactMaxRows). */
  exactMaxRows: number;
  /** Open-loop arrival rate, operations/s; undefined: half the closed-loop mixed throughput. */
  openLoopRate?: number;
  /** Skip the pgbench comparison (e.g. where pgbench is not installed). */
  skipPgbench: boolean;
  failOn: FailOn;
  /** A plain PostgreSQL node (no Citus, same settings) that runs the same data and queries in the same run. */
  baselineUrl?: string;
  /**
   * `--baseline local`: the CLI starts such a node with the local runner (local/baseline.ts) for
   * this run, from the stack's settings, under `stateDir`, and stops and deletes it afterwards.
   */
  localBaseline?: { stack: string; stateDir?: string };
}

/** The largest --exact-max-rows (the stack key searchExactMaxRows has the same bound). */
const EXACT_MAX_ROWS_LIMIT = 1_000_000;

export function defaultOptions(url: string, mode: BenchmarkMode): BenchmarkOptions {
  return {
    url,
    mode,
    dimensions: DEFAULT_CONFIG.embeddingDimensions,
    rows: MODE_PLANS[mode].rows,
    seed: 42,
    k: DEFAULT_CONFIG.searchK,
    hnswM: DEFAULT_CONFIG.hnswM,
    hnswEfConstruction: DEFAULT_CONFIG.hnswEfConstruction,
    shardCount: DEFAULT_CONFIG.shardCount,
    exactMaxRows: DEFAULT_CONFIG.searchExactMaxRows,
    skipPgbench: false,
    failOn: "never",
  };
}

const USAGE = `usage: npm run bench -- --url URL [--mode quick|full|stress] [--out DIR] [--fail-on critical|warn]
       [--dimensions N] [--rows N] [--seed N] [--rate OPS_PER_S] [--no-pgbench] [--exact-max-rows N]
       [--baseline-url URL | --baseline local [--stack NAME] [--baseline-state DIR]]`;

/** Parses CLI arguments; throws with the usage text on a mistake. */
export function parseArgs(argv: string[]): BenchmarkOptions {
  const values = new Map<string, string>();
  const flags = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--no-pgbench" || arg === "--help") flags.add(arg);
    else if (arg.startsWith("--") && i + 1 < argv.length) values.set(arg, argv[++i]);
    else throw new Error(`unexpected argument ${arg}\n${USAGE}`);
  }
  if (flags.has("--help")) throw new Error(USAGE);
  const url = values.get("--url") ?? process.env.DPC_BENCH_URL;
  if (!url) throw new Error(`--url is required\n${USAGE}`);
  const mode = (values.get("--mode") ?? "quick") as BenchmarkMode;
  if (!(mode in MODE_PLANS)) throw new Error(`--mode must be quick, full or stress\n${USAGE}`);
  const options = defaultOptions(url, mode);
  const positiveInt = (name: string): number | undefined => {
    const raw = values.get(name);
    if (raw === undefined) return undefined;
    const value = Number(raw);
    if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a positive integer, got ${raw}\n${USAGE}`);
    return value;
  };
  const failOn = values.get("--fail-on") ?? "never";
  if (!["critical", "warn", "never"].includes(failOn)) throw new Error(`--fail-on must be critical or warn\n${USAGE}`);
  const known = new Set([
    "--url", "--mode", "--out", "--fail-on", "--dimensions", "--rows", "--seed", "--rate", "--exact-max-rows",
    "--baseline-url", "--baseline", "--stack", "--baseline-state",
  ]);
  for (const name of values.keys()) if (!known.has(name)) throw new Error(`unknown option ${name}\n${USAGE}`);
  const exactRaw = values.get("--exact-max-rows");
  const exactMaxRows = exactRaw === undefined ? options.exactMaxRows : Number(exactRaw);
  if (!/^\d+$/.test(exactRaw ?? "0") || exactMaxRows > EXACT_MAX_ROWS_LIMIT) {
    throw new Error(`--exact-max-rows: got ${exactRaw}; allowed: an integer from 0 (always HNSW) to ${EXACT_MAX_ROWS_LIMIT}\n${USAGE}`);
  }
  const baseline = values.get("--baseline");
  if (baseline !== undefined && baseline !== "local") throw new Error(`--baseline: got ${baseline}; allowed: local (or --baseline-url URL for a node of your own)\n${USAGE}`);
  const baselineUrl = values.get("--baseline-url") ?? process.env.DPC_BENCH_BASELINE_URL ?? undefined;
  if (baseline && values.has("--baseline-url")) throw new Error(`--baseline local and --baseline-url: give one of them\n${USAGE}`);
  for (const name of ["--stack", "--baseline-state"]) {
    if (values.has(name) && !baseline) throw new Error(`${name} goes with --baseline local\n${USAGE}`);
  }
  const stack = values.get("--stack") ?? "local";
  if (!/^[A-Za-z0-9_.-]+$/.test(stack)) throw new Error(`--stack: got ${stack}; allowed: the NAME of a Pulumi.NAME.yaml\n${USAGE}`);
  return {
    ...options,
    outDir: values.get("--out"),
    dimensions: positiveInt("--dimensions") ?? options.dimensions,
    rows: positiveInt("--rows") ?? options.rows,
    seed: positiveInt("--seed") ?? options.seed,
    openLoopRate: positiveInt("--rate"),
    skipPgbench: flags.has("--no-pgbench"),
    failOn: failOn as FailOn,
    exactMaxRows,
    baselineUrl: baseline ? undefined : baselineUrl,
    localBaseline: baseline ? { stack, stateDir: values.get("--baseline-state") } : undefined,
  };
}
