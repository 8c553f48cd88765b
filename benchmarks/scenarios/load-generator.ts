// How fast the load generator itself is: the suite's SELECT 1 rate through the same URL against
// pgbench's select-only rate on the same server in the same run. A ratio well under 1 means the
// suite, not the database, limits the throughput figures above.
import { runClosedLoop } from "../load-loops.ts";
import { findPgbench, runPgbenchSelectOne } from "../pgbench.ts";
import type { SuiteContext } from "../suite-context.ts";

export interface LoadGeneratorFigure {
  clients: number;
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
  context.progress.begin("Load generator: SELECT 1", seconds);
  const timer = setInterval(() => context.progress.tick(1), 1000);
  const loop = await runClosedLoop(context.pool(clients), {
    clients,
    seconds,
    nextOperation: () => ({ name: "select-1", run: (db) => db.query("SELECT 1") }),
  }).finally(() => clearInterval(timer));
  const suiteQps = Math.round(loop.overall.count / loop.seconds);
  const figure: LoadGeneratorFigure = { clients, seconds, suiteQps, pgbenchQps: null, ratio: null, pgbenchCommand: null, note: "" };
  const pgbench = context.options.skipPgbench ? undefined : findPgbench();
  if (!pgbench) {
    figure.note = context.options.skipPgbench ? "pgbench comparison skipped (--no-pgbench)" : "pgbench not found: no comparison";
  } else {
    try {
      const result = await runPgbenchSelectOne(pgbench, context.options.url, clients, seconds);
      figure.pgbenchQps = Math.round(result.tps);
      figure.ratio = Math.round((suiteQps / result.tps) * 100) / 100;
      figure.pgbenchCommand = result.command;
      figure.note = `suite ${suiteQps} queries/s vs pgbench ${figure.pgbenchQps} queries/s: ratio ${figure.ratio} (aim >= 0.8)`;
    } catch (error) {
      figure.note = `pgbench failed: ${(error as Error).message.split("\n")[0]}`;
    }
  }
  const share = Math.round((100 * highestScenarioRate) / Math.max(1, suiteQps));
  figure.note += `${figure.note ? "; " : ""}the suite's own ceiling is ${suiteQps} queries/s; the busiest scenario ran at ${highestScenarioRate}/s (${share} % of it)`;
  context.progress.end(`Load generator: ${figure.note || `suite ${suiteQps} queries/s`}`);
  return figure;
}
