// How fast the load generator itself is: the suite's SELECT 1 rate through the same URL against
// pgbench's select-only rate on the same server in the same run. A ratio well under 1 means the
// suite, not the database, limits the throughput figures above.
//
// Like with like: the scenarios all run on one Node thread, so this figure does too (a multi-threaded
// figure would promise a ceiling the scenarios cannot reach), and pgbench runs the same clients on the
// same number of threads (-j). No pipelining on either side: one query in flight per connection.
// Where the client shares its cores with the server (a local cluster), the ratio is mostly the two
// clients' CPU cost per query: node-pg spends about four times what pgbench does.
import { runClosedLoop, type Operation } from "../load-loops.ts";
import { findPgbench, runPgbenchSelectOne } from "../pgbench.ts";
import type { SuiteContext } from "../suite-context.ts";

/** Threads the suite drives load from (the scenarios' one Node thread); pgbench gets the same -j. */
export const SUITE_THREADS = 1;
/** An untimed SELECT 1 loop first, so V8's compilation of the hot path is not measured. */
const WARMUP_SECONDS = 1;

export interface LoadGeneratorFigure {
  clients: number;
  /** Client threads, the suite's and pgbench's (-j) alike. */
  threads: number;
  seconds: number;
  /** The suite's SELECT 1 rate, queries/s. */
  suiteQps: number;
  pgbenchQps: number | null;
  /** suiteQps / pgbenchQps. */
  ratio: number | null;
  pgbenchCommand: string | null;
  note: string;
}

/** `highestScenarioRate`: the largest queries/operations per second a scenario reached, to compare with the ceiling. */
export async function loadGeneratorFigure(context: SuiteContext, highestScenarioRate: number): Promise<LoadGeneratorFigure> {
  const { loadGeneratorClients: clients, loadGeneratorSeconds: seconds } = context.plan;
  const threads = SUITE_THREADS;
  const selectOne = (): Operation => ({ name: "select-1", run: (db) => db.query("SELECT 1") });
  context.progress.begin("Load generator: SELECT 1", WARMUP_SECONDS + seconds);
  const timer = setInterval(() => context.progress.tick(1), 1000);
  const pool = context.pool(clients);
  const loop = await runClosedLoop(pool, { clients, seconds: WARMUP_SECONDS, nextOperation: selectOne })
    .then(() => runClosedLoop(pool, { clients, seconds, nextOperation: selectOne }))
    .finally(() => clearInterval(timer));
  const suiteQps = Math.round(loop.overall.count / loop.seconds);
  const figure: LoadGeneratorFigure = { clients, threads, seconds, suiteQps, pgbenchQps: null, ratio: null, pgbenchCommand: null, note: "" };
  const pgbench = context.options.skipPgbench ? undefined : findPgbench();
  if (!pgbench) {
    figure.note = context.options.skipPgbench ? "pgbench comparison skipped (--no-pgbench)" : "pgbench not found: no comparison";
  } else {
    try {
      const result = await runPgbenchSelectOne(pgbench, context.options.url, clients, threads, seconds);
      figure.pgbenchQps = Math.round(result.tps);
      figure.ratio = Math.round((suiteQps / result.tps) * 100) / 100;
      figure.pgbenchCommand = result.command;
      figure.note = `suite ${suiteQps} queries/s vs pgbench ${figure.pgbenchQps} queries/s (${clients} clients, ${threads} thread${threads === 1 ? "" : "s"} each, no pipelining): ratio ${figure.ratio} (aim >= 0.8)`;
    } catch (error) {
      figure.note = `pgbench failed: ${(error as Error).message.split("\n")[0]}`;
    }
  }
  const share = Math.round((100 * highestScenarioRate) / Math.max(1, suiteQps));
  figure.note += `${figure.note ? "; " : ""}the suite's own ceiling is ${suiteQps} queries/s; the busiest scenario ran at ${highestScenarioRate}/s (${share} % of it)`;
  context.progress.end(`Load generator: ${figure.note || `suite ${suiteQps} queries/s`}`);
  return figure;
}
