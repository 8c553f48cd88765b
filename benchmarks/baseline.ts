// The single-node baseline: the same data set and queries run on a plain PostgreSQL node (no Citus,
// same settings) in the same run, and each figure of the cluster set beside the baseline's with
// the ratio. Pure: built from two lists of scenario results.
import type { Environment } from "./environment.ts";
import type { ScenarioResult, ThroughputUnit } from "./scenario-result.ts";
import type { SearchPlanKind } from "../sql/search-plan.ts";
import { check, worstVerdict, type Check, type Target, type Verdict } from "./targets.ts";

/** A figure of the cluster, the same figure on the baseline, and cluster / baseline. */
export interface FigureComparison {
  value: number;
  baseline: number;
  /** value / baseline, 3 places; null when the baseline is 0 or either is not a number. */
  ratio: number | null;
}

export interface PlanBrief {
  choice: SearchPlanKind;
  /** Shards (Citus tasks) one search runs on; 1 on a plain node. */
  tasks: number;
}

export interface ScenarioComparison {
  id: string;
  title: string;
  p50Ms: FigureComparison;
  p95Ms: FigureComparison;
  throughput: FigureComparison & { unit: ThroughputUnit };
  recall: { value: number | null; baseline: number | null };
  /** Sampled searches that returned fewer rows than exist (up to k); null without searches. */
  shortResults: { value: number | null; baseline: number | null };
  plan: { value: PlanBrief | null; baseline: PlanBrief | null };
  /** Search scenarios: throughput at least a third of the baseline's (a warning below). */
  checks: Check[];
  verdict: Verdict;
}

export interface BaselineSection {
  /** The baseline's URL without its password. */
  url: string;
  environment: Environment;
  scenarios: ScenarioComparison[];
  verdict: Verdict;
}

/** Issue 16: a search scenario on the cluster keeps at least a third of the single node's throughput. */
export const BASELINE_THROUGHPUT_RATIO: Target = {
  id: "baseline-throughput-ratio",
  description: "throughput / the single node's",
  direction: "above",
  goal: 0.333,
  critical: 0,
  unit: "ratio",
  inclusive: true,
};

const round = (value: number, places = 3) => Math.round(value * 10 ** places) / 10 ** places;

export function ratio(value: number, baseline: number): number | null {
  if (!Number.isFinite(value) || !Number.isFinite(baseline) || baseline === 0) return null;
  return round(value / baseline);
}

function figure(value: number, baseline: number): FigureComparison {
  return { value, baseline, ratio: ratio(value, baseline) };
}

function planBrief(scenario: ScenarioResult): PlanBrief | null {
  return scenario.plan ? { choice: scenario.plan.choice, tasks: scenario.plan.shards } : null;
}

/** Pairs scenarios by id; a scenario the baseline lacks is left out. */
export function compareWithBaseline(cluster: ScenarioResult[], baseline: ScenarioResult[]): ScenarioComparison[] {
  const byId = new Map(baseline.map((scenario) => [scenario.id, scenario]));
  return cluster.flatMap((scenario) => {
    const other = byId.get(scenario.id);
    if (!other) return [];
    const throughput = { ...figure(scenario.throughput[0].value, other.throughput[0].value), unit: scenario.throughput[0].unit };
    const checks = scenario.plan && throughput.ratio !== null ? [check(BASELINE_THROUGHPUT_RATIO, throughput.ratio)] : [];
    return [
      {
        id: scenario.id,
        title: scenario.title,
        p50Ms: figure(scenario.latencyMs.p50, other.latencyMs.p50),
        p95Ms: figure(scenario.latencyMs.p95, other.latencyMs.p95),
        throughput,
        recall: { value: scenario.recall?.mean ?? null, baseline: other.recall?.mean ?? null },
        shortResults: { value: scenario.recall?.shortResults ?? null, baseline: other.recall?.shortResults ?? null },
        plan: { value: planBrief(scenario), baseline: planBrief(other) },
        checks,
        verdict: worstVerdict(checks.map((c) => c.verdict)),
      },
    ];
  });
}

export function baselineSection(url: string, environment: Environment, cluster: ScenarioResult[], baseline: ScenarioResult[]): BaselineSection {
  const scenarios = compareWithBaseline(cluster, baseline);
  return { url, environment, scenarios, verdict: worstVerdict(scenarios.map((s) => s.verdict)) };
}
