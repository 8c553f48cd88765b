// Mixed load over a fixed duration: searches split 90 % single-shard / 10 % cross-shard, plus
// single-row inserts as 10 % of all operations. Run closed loop (clients wait for replies), then
// open loop (a fixed arrival rate; latency from each operation's scheduled start).
import { createRandom } from "../dataset.ts";
import { insertRows } from "../insert-sql.ts";
import { runClosedLoop, runOpenLoop, type LoopResult, type Operation } from "../load-loops.ts";
import { measureRecall } from "../recall-check.ts";
import { buildScenarioResult, operationP95, perSecond, type CheckSpec, type ScenarioResult } from "../scenario-result.ts";
import type { SearchQuery } from "../search-sql.ts";
import { TARGETS } from "../targets.ts";
import type { SuiteContext } from "../suite-context.ts";

export const INSERT_SHARE = 0.1;
export const CROSS_SHARD_SHARE_OF_SEARCHES = 0.1;

function operationMix(context: SuiteContext, seed: number): { next: (index: number) => Operation; sample: SearchQuery[] } {
  const random = createRandom(seed);
  const single = context.makeQueries("single-shard", 450);
  const cross = context.makeQueries("cross-shard", 50);
  return {
    sample: [...single.slice(0, Math.ceil(context.plan.recallSample * 0.9)), ...cross.slice(0, Math.ceil(context.plan.recallSample * 0.1))],
    next: (index) => {
      const draw = random();
      if (draw < INSERT_SHARE) {
        const [row] = context.makeRows(1);
        return { name: "insert", run: (db) => insertRows(db, context.dialect, [row]) };
      }
      const isCross = random() < CROSS_SHARD_SHARE_OF_SEARCHES;
      const queries = isCross ? cross : single;
      const query = queries[index % queries.length];
      return { name: query.kind, run: (db) => context.measuredSearch(db, query) };
    },
  };
}

const CHECKS: CheckSpec[] = [
  { target: TARGETS.searchP95, value: ({ operations }) => operationP95(operations, "single-shard") },
  { target: TARGETS.crossShardP95, value: ({ operations }) => operationP95(operations, "cross-shard") },
];

const MIX_TEXT = `${100 - CROSS_SHARD_SHARE_OF_SEARCHES * 100} % single-shard / ${CROSS_SHARD_SHARE_OF_SEARCHES * 100} % cross-shard searches, plus single-row inserts as ${INSERT_SHARE * 100} % of operations`;

async function withSecondsProgress<T>(context: SuiteContext, title: string, seconds: number, run: () => Promise<T>): Promise<T> {
  context.progress.begin(title, seconds);
  const timer = setInterval(() => context.progress.tick(1), 1000);
  try {
    return await run();
  } finally {
    clearInterval(timer);
  }
}

export async function mixedClosedLoop(context: SuiteContext): Promise<ScenarioResult> {
  const { mixedClients: clients, mixedSeconds: seconds } = context.plan;
  const title = "Mixed load (closed loop)";
  const mix = operationMix(context, context.options.seed + 101);
  const pool = context.pool(clients);
  const loop: LoopResult = await withSecondsProgress(context, title, seconds, () =>
    runClosedLoop(pool, { clients, seconds, nextOperation: mix.next }),
  );
  const recall = await measureRecall(pool, context, mix.sample);
  context.metrics?.setRecall(recall.mean);
  const result = buildScenarioResult(
    { id: "mixed-closed-loop", title, description: `${clients} clients for ${seconds} s, closed loop: ${MIX_TEXT}`, loop: "closed", clients, plan: await context.explain("single-shard") },
    loop,
    [perSecond(loop.overall.count, loop.seconds, "operations/s")],
    recall,
    [...CHECKS, { target: TARGETS.queryThroughput, value: ({ throughput }) => throughput[0].value }],
  );
  context.progress.end(`${title}: ${result.throughput[0].value} operations/s, p95 ${result.latencyMs.p95} ms`);
  return result;
}

/** Open loop at `rate` operations/s (default: half of what the closed loop sustained). */
export async function mixedOpenLoop(context: SuiteContext, rate: number): Promise<ScenarioResult> {
  const { mixedClients: clients, mixedSeconds: seconds } = context.plan;
  const title = "Mixed load (open loop)";
  const mix = operationMix(context, context.options.seed + 202);
  const pool = context.pool(clients);
  const loop = await withSecondsProgress(context, title, seconds, () => runOpenLoop(pool, { rate, seconds, nextOperation: mix.next }));
  const recall = await measureRecall(pool, context, mix.sample);
  context.metrics?.setRecall(recall.mean);
  const result = buildScenarioResult(
    {
      id: "mixed-open-loop",
      title,
      description: `fixed arrival rate ${rate} operations/s for ${seconds} s over ${clients} connections, latency from each operation's scheduled start: ${MIX_TEXT}`,
      loop: "open",
      clients,
      offeredRate: rate,
      plan: await context.explain("single-shard"),
    },
    loop,
    [perSecond(loop.overall.count, loop.seconds, "operations/s")],
    recall,
    CHECKS,
  );
  context.progress.end(`${title}: offered ${rate}/s, achieved ${result.throughput[0].value} operations/s, p95 ${result.latencyMs.p95} ms (generator dispatch lag p95 ${result.dispatchLagMs?.p95} ms)`);
  return result;
}
