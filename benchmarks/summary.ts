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
    scenarios: report.scenarios.map((s) => ({
      id: s.id,
      p95Ms: s.latencyMs.p95,
      throughput: s.throughput[0].value,
      throughputUnit: s.throughput[0].unit,
      recall: s.recall ? s.recall.mean : null,
      verdict: s.verdict,
    })),
    loadGeneratorRatio: report.loadGenerator.ratio,
    reportStartedAt: report.startedAt,
  };
}

export function formatSummary(summary: Summary): string {
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
