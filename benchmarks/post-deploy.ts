// What the post-deploy hook calls after `pulumi up` created or updated the schema: run the suite
// against the deployed endpoint and return the compact summary for the stack outputs.
import type { BenchmarkMode } from "../components/spec.ts";
import { defaultOptions, type BenchmarkOptions } from "./options.ts";
import { runBenchmark } from "./runner.ts";
import { summarizeReport, type Summary } from "./summary.ts";

export async function runPostDeployBenchmark(
  url: string,
  mode: BenchmarkMode,
  overrides: Partial<Omit<BenchmarkOptions, "url" | "mode">> = {},
): Promise<Summary> {
  const { report } = await runBenchmark({ ...defaultOptions(url, mode), ...overrides });
  return summarizeReport(report);
}
