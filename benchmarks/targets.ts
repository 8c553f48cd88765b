// The design's targets, each with its critical level, and how a measured value is judged:
// pass when it meets the goal, warn when it misses the goal but meets the critical level, fail otherwise.

export type Verdict = "pass" | "warn" | "fail";

export interface Target {
  id: string;
  description: string;
  /** "below": smaller is better (latency); "above": larger is better (throughput, success). */
  direction: "below" | "above";
  goal: number;
  critical: number;
  unit: string;
  /** The goal and critical levels themselves count as met (a floor, like recall >= 0.95). */
  inclusive?: boolean;
}

export const TARGETS = {
  searchP95: { id: "search-p95", description: "search latency p95", direction: "below", goal: 10, critical: 50, unit: "ms" },
  crossShardP95: { id: "cross-shard-p95", description: "cross-shard search latency p95", direction: "below", goal: 25, critical: 100, unit: "ms" },
  insertThroughput: { id: "insert-throughput", description: "insert throughput (rows/s: each row is one insert)", direction: "above", goal: 1000, critical: 500, unit: "rows/s" },
  queryThroughput: { id: "query-throughput", description: "query throughput", direction: "above", goal: 1000, critical: 100, unit: "queries/s" },
  // Below the goal is a failure: a search that misses neighbours is wrong, not slow.
  recall: { id: "recall-at-k", description: "recall@k against exact search", direction: "above", goal: 0.95, critical: 0.95, unit: "ratio", inclusive: true },
  // A search that returns fewer than k rows while the namespaces hold k has lost rows: a failure.
  kRows: { id: "k-rows", description: "sampled searches that returned fewer than k rows while k exist", direction: "below", goal: 0, critical: 0, unit: "queries", inclusive: true },
  successRate: { id: "success-rate", description: "share of operations that succeeded", direction: "above", goal: 0.99, critical: 0.95, unit: "ratio" },
} as const satisfies Record<string, Target>;

export interface Check {
  target: string;
  description: string;
  value: number;
  goal: number;
  critical: number;
  unit: string;
  direction: "below" | "above";
  verdict: Verdict;
}

/** Judges one measured value against a target. A value that is not a finite number fails. */
export function judge(target: Target, value: number): Verdict {
  if (!Number.isFinite(value)) return "fail";
  const meets = (limit: number) =>
    target.inclusive ? (target.direction === "below" ? value <= limit : value >= limit) : target.direction === "below" ? value < limit : value > limit;
  if (meets(target.goal)) return "pass";
  if (meets(target.critical)) return "warn";
  return "fail";
}

export function check(target: Target, value: number): Check {
  return {
    target: target.id,
    description: target.description,
    value,
    goal: target.goal,
    critical: target.critical,
    unit: target.unit,
    direction: target.direction,
    verdict: judge(target, value),
  };
}

const SEVERITY: Record<Verdict, number> = { pass: 0, warn: 1, fail: 2 };

/** The worst of several verdicts; pass when there are none. */
export function worstVerdict(verdicts: Iterable<Verdict>): Verdict {
  let worst: Verdict = "pass";
  for (const verdict of verdicts) if (SEVERITY[verdict] > SEVERITY[worst]) worst = verdict;
  return worst;
}

export type FailOn = "critical" | "warn" | "never";

/** The exit code a run should end with under `--fail-on`. */
export function exitCodeFor(verdict: Verdict, failOn: FailOn): number {
  if (failOn === "never") return 0;
  if (failOn === "warn") return verdict === "pass" ? 0 : 1;
  return verdict === "fail" ? 1 : 0;
}
