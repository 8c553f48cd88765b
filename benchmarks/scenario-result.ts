// One scenario's measured numbers, judged against the targets that apply to it.
import type { LatencyRecorder, LatencySummary, PercentilePoint } from "./latency.ts";
import type { LoopResult } from "./load-loops.ts";
import type { RecallSummary } from "./recall.ts";
import type { PlanSummary } from "./search-sql.ts";
import { check, TARGETS, worstVerdict, type Check, type Target, type Verdict } from "./targets.ts";

export type ThroughputUnit = "queries/s" | "rows/s" | "transactions/s" | "operations/s";

export interface Throughput {
  value: number;
  unit: ThroughputUnit;
}

export interface OperationResult {
  name: string;
  count: number;
  errors: number;
  latencyMs: LatencySummary;
}

export interface ScenarioResult {
  id: string;
  title: string;
  description: string;
  loop: "closed" | "open";
  clients: number;
  count: number;
  errors: number;
  successRate: number;
  firstError: string | null;
  durationSeconds: number;
  latencyMs: LatencySummary;
  /** The first entry is the one judged. */
  throughput: Throughput[];
  /** Open loop: the fixed arrival rate, operations/s. */
  offeredRate: number | null;
  /** Open loop: lateness of the generator's own dispatch (included in latency), ms. */
  dispatchLagMs: LatencySummary | null;
  recall: RecallSummary | null;
  /** What one of the scenario's searches touches (from EXPLAIN); null for scenarios without searches. */
  plan: PlanSummary | null;
  operations: OperationResult[];
  distribution: PercentilePoint[];
  checks: Check[];
  verdict: Verdict;
}

export interface ScenarioMeta {
  id: string;
  title: string;
  description: string;
  loop: "closed" | "open";
  clients: number;
  offeredRate?: number;
  plan?: PlanSummary;
}

/** A check on a latency or throughput, and always the success rate. */
export interface CheckSpec {
  target: Target;
  value: (result: { latency: LatencySummary; operations: Map<string, LatencyRecorder>; throughput: Throughput[] }) => number;
}

const round = (value: number, places = 1) => Math.round(value * 10 ** places) / 10 ** places;

export function perSecond(count: number, seconds: number, unit: ThroughputUnit): Throughput {
  return { value: seconds > 0 ? round(count / seconds) : 0, unit };
}

export function buildScenarioResult(
  meta: ScenarioMeta,
  loop: LoopResult,
  throughput: Throughput[],
  recall: RecallSummary | null,
  checks: CheckSpec[],
): ScenarioResult {
  const latency = loop.overall.summary();
  const operations = [...loop.byOperation.entries()].map(([name, recorder]) => ({
    name,
    count: recorder.count,
    errors: recorder.errors,
    latencyMs: recorder.summary(),
  }));
  const judged = [
    ...checks.map((spec) => check(spec.target, spec.value({ latency, operations: loop.byOperation, throughput }))),
    ...(recall ? [check(TARGETS.recall, recall.mean), check(TARGETS.kRows, recall.shortResults)] : []),
    check(TARGETS.successRate, round(loop.overall.successRate(), 4)),
  ];
  return {
    id: meta.id,
    title: meta.title,
    description: meta.description,
    loop: meta.loop,
    clients: meta.clients,
    count: loop.overall.count,
    errors: loop.overall.errors,
    successRate: round(loop.overall.successRate(), 4),
    firstError: loop.overall.firstError ?? null,
    durationSeconds: round(loop.seconds, 3),
    latencyMs: latency,
    throughput,
    offeredRate: meta.offeredRate ?? null,
    dispatchLagMs: loop.dispatchLag ? loop.dispatchLag.summary() : null,
    recall,
    plan: meta.plan ?? null,
    operations: operations.length > 1 ? operations : [],
    distribution: loop.overall.percentileCurve(),
    checks: judged,
    verdict: worstVerdict(judged.map((c) => c.verdict)),
  };
}

/** p95 of one operation kind (mixed load), NaN (a failed check) if it never succeeded. */
export function operationP95(operations: Map<string, LatencyRecorder>, name: string): number {
  const recorder = operations.get(name);
  return recorder && recorder.count > 0 ? recorder.summary().p95 : Number.NaN;
}
