// Vector search scenarios: single-shard (namespace filter, one client), cross-shard (several
// namespaces, one client) and concurrent (many clients, each with its own connection).
import { measureRecall } from "../recall-check.ts";
import { buildScenarioResult, perSecond, type CheckSpec, type ScenarioResult } from "../scenario-result.ts";
import type { SearchKind } from "../search-sql.ts";
import { runClosedLoop } from "../load-loops.ts";
import { TARGETS } from "../targets.ts";
import type { SuiteContext } from "../suite-context.ts";

interface SearchScenario {
  id: string;
  title: string;
  description: string;
  kind: SearchKind;
  clients: number;
  queries: number;
  checks: CheckSpec[];
}

async function runSearchScenario(context: SuiteContext, scenario: SearchScenario): Promise<ScenarioResult> {
  const queries = context.makeQueries(scenario.kind, Math.min(scenario.queries, 500));
  const pool = context.pool(scenario.clients);
  context.progress.begin(scenario.title, scenario.queries);
  const loop = await runClosedLoop(pool, {
    clients: scenario.clients,
    totalOperations: scenario.queries,
    nextOperation: (index) => ({ name: scenario.kind, run: (db) => context.measuredSearch(db, queries[index % queries.length]) }),
    onDone: (count) => context.progress.tick(count),
  });
  const recall = await measureRecall(pool, context, queries.slice(0, context.plan.recallSample));
  const plan = await context.explain(scenario.kind);
  context.metrics?.setRecall(recall.mean);
  const result = buildScenarioResult(
    { id: scenario.id, title: scenario.title, description: scenario.description, loop: "closed", clients: scenario.clients, plan },
    loop,
    [perSecond(loop.overall.count, loop.seconds, "queries/s")],
    recall,
    scenario.checks,
  );
  context.progress.end(
    `${scenario.title}: p95 ${result.latencyMs.p95} ms, ${result.throughput[0].value} queries/s, recall@${context.k} ${recall.mean}, ` +
      `${plan.shards} shard(s) on ${plan.workers} worker(s), HNSW on ${plan.hnswShards}`,
  );
  return result;
}

const p95: CheckSpec = { target: TARGETS.searchP95, value: ({ latency }) => latency.p95 };
const crossP95: CheckSpec = { target: TARGETS.crossShardP95, value: ({ latency }) => latency.p95 };
const qps: CheckSpec = { target: TARGETS.queryThroughput, value: ({ throughput }) => throughput[0].value };

export function singleShardSearch(context: SuiteContext): Promise<ScenarioResult> {
  return runSearchScenario(context, {
    id: "single-shard-search",
    title: "Single-shard vector search",
    description: `top-${context.k} cosine search filtered on one namespace (routes to one shard), one client, ${context.plan.singleShardQueries} queries`,
    kind: "single-shard",
    clients: 1,
    queries: context.plan.singleShardQueries,
    checks: [p95],
  });
}

export function crossShardSearch(context: SuiteContext): Promise<ScenarioResult> {
  return runSearchScenario(context, {
    id: "cross-shard-search",
    title: "Cross-shard vector search",
    description: `top-${context.k} cosine search over ${context.plan.crossShardNamespaces} namespaces (fans out to several shards, merged on the coordinator), one client, ${context.plan.crossShardQueries} queries`,
    kind: "cross-shard",
    clients: 1,
    queries: context.plan.crossShardQueries,
    checks: [crossP95],
  });
}

export function concurrentSearch(context: SuiteContext): Promise<ScenarioResult> {
  const { concurrentClients: clients, queriesPerClient } = context.plan;
  return runSearchScenario(context, {
    id: "concurrent-search",
    title: "Concurrent vector search",
    description: `${clients} clients x ${queriesPerClient} single-shard queries, closed loop, one connection per client`,
    kind: "single-shard",
    clients,
    queries: clients * queriesPerClient,
    checks: [p95, qps],
  });
}
