// The benchmark suite's public surface.
export { runBenchmark, type RunOutcome } from "./runner.ts";
export { runPostDeployBenchmark } from "./post-deploy.ts";
export { summarizeReport, formatSummary, type Summary, type ScenarioSummary } from "./summary.ts";
export { defaultOptions, parseArgs, MODE_PLANS, type BenchmarkOptions, type ModePlan } from "./options.ts";
export { reportSchemaErrors, writeReport, type BenchmarkReport } from "./report.ts";
export { TARGETS, judge, type Verdict } from "./targets.ts";
