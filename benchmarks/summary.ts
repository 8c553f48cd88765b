// The compact summary of a report: small enough for Pulumi stack outputs and a terminal.
import type { BenchmarkReport } from "./report.ts";
import type { ThroughputUnit } from "./scenario-result.ts";
import type { Verdict } from "./targets.ts";

export interface ScenarioSummary {
  id: string;
  p95Ms: number;
  throughput: number;
  throughputUnit: ThroughputUnit;
  /** recall@k mean, or null for scenarios without searches. */
  recall: number | null;
  verdict: Verdict;
  /** With a baseline: the same figures on the plain node, and cluster / node. */
  baseline?: { p95Ms: number; throughput: number; p95Ratio: number | null; throughputRatio: number | null; recall: number | null };
  /** Sampled searches that lost rows, and the plan (exact or hnsw, tasks); searches only. */
  shortResults?: number;
  plan?: string;
}

export interface Summary {
  mode: string;
  verdict: Verdict;
  /** Failed checks as "scenario: target". */
  failed: string[];
  citus: boolean;
  scenarios: ScenarioSummary[];
  /** suite SELECT 1 rate / pgbench's, or null without pgbench. */
  loadGeneratorRatio: number | null;
  reportStartedAt: string;
}

export function summarizeReport(report: BenchmarkReport): Summary {
  return {
    mode: report.mode,
    verdict: report.verdict,
    failed: report.scenarios.flatMap((s) => s.checks.filter((c) => c.verdict === "fail").map((c) => `${s.id}: ${c.target}`)),
    citus: report.environment.citus.present,
    scenarios: report.scenarios.map((s) => {
      const compared = report.baseline?.scenarios.find((c) => c.id === s.id);
      return {
        id: s.id,
        p95Ms: s.latencyMs.p95,
        throughput: s.throughput[0].value,
        throughputUnit: s.throughput[0].unit,
        recall: s.recall ? s.recall.mean : null,
        verdict: s.verdict,
        ...(s.recall ? { shortResults: s.recall.shortResults } : {}),
        ...(s.plan ? { plan: `${s.plan.choice}/${s.plan.shards}` } : {}),
        ...(compared
          ? {
              baseline: {
                p95Ms: compared.p95Ms.baseline,
                throughput: compared.throughput.baseline,
                p95Ratio: compared.p95Ms.ratio,
                throughputRatio: compared.throughput.ratio,
                recall: compared.recall.baseline,
              },
            }
          : {}),
      };
    }),
    loadGeneratorRatio: report.loadGenerator.ratio,
    reportStartedAt: report.startedAt,
  };
}

const fmtRatio = (value: number | null) => (value === null ? "-" : `x${value}`);

/** With a baseline: cluster figure | single node | ratio, plus rows lost and the plan per scenario. */
function formatWithBaseline(summary: Summary): string[] {
  return [
    `${"scenario".padEnd(22)} ${"p95 ms".padStart(8)} ${"node".padStart(8)} ${"ratio".padStart(7)} ${"throughput".padStart(10)} ${"node".padStart(9)} ${"ratio".padStart(7)} ${"recall".padStart(6)} ${"node".padStart(6)} ${"short".padStart(5)} ${"plan".padStart(8)}  verdict`,
    ...summary.scenarios.map((s) => {
      const b = s.baseline;
      const cells = [
        s.id.padEnd(22),
        s.p95Ms.toFixed(2).padStart(8),
        (b ? b.p95Ms.toFixed(2) : "-").padStart(8),
        fmtRatio(b?.p95Ratio ?? null).padStart(7),
        String(s.throughput).padStart(10),
        (b ? String(b.throughput) : "-").padStart(9),
        fmtRatio(b?.throughputRatio ?? null).padStart(7),
        (s.recall === null ? "-" : s.recall.toFixed(3)).padStart(6),
        (b?.recall == null ? "-" : b.recall.toFixed(3)).padStart(6),
        (s.shortResults === undefined ? "-" : String(s.shortResults)).padStart(5),
        (s.plan ?? "-").padStart(8),
      ];
      return `${cells.join(" ")}  ${s.verdict}`;
    }),
    "(node: the same figure on the plain single node; ratio: cluster / node; throughput in each scenario's unit; short: sampled searches that lost rows; plan: exact|hnsw/tasks)",
  ];
}

export function formatSummary(summary: Summary): string {
  if (summary.scenarios.some((s) => s.baseline)) {
    const lines = [
      `benchmark (${summary.mode}): ${summary.verdict.toUpperCase()}${summary.citus ? "" : " (citus absent: local tables)"}, with a single-node baseline`,
      ...formatWithBaseline(summary),
      `load generator: suite/pgbench SELECT 1 ratio ${summary.loadGeneratorRatio ?? "n/a"}`,
    ];
    if (summary.failed.length) lines.push(`failed checks: ${summary.failed.join("; ")}`);
    return lines.join("\n");
  }
  const lines = [
    `benchmark (${summary.mode}): ${summary.verdict.toUpperCase()}${summary.citus ? "" : " (citus absent: local tables)"}`,
    `${"scenario".padEnd(22)} ${"p95 ms".padStart(9)} ${"throughput".padStart(22)} ${"recall".padStart(7)}  verdict`,
    ...summary.scenarios.map(
      (s) =>
        `${s.id.padEnd(22)} ${s.p95Ms.toFixed(2).padStart(9)} ${`${s.throughput} ${s.throughputUnit}`.padStart(22)} ${(s.recall === null ? "-" : s.recall.toFixed(3)).padStart(7)}  ${s.verdict}`,
    ),
    `load generator: suite/pgbench SELECT 1 ratio ${summary.loadGeneratorRatio ?? "n/a"}`,
  ];
  if (summary.failed.length) lines.push(`failed checks: ${summary.failed.join("; ")}`);
  return lines.join("\n");
}
