// What the BenchmarkRun resource runs after the schema is created or updated: the benchmark suite
// against the deployed PgBouncer endpoint, returning the compact summary for the stack outputs.
// No Pulumi import: the dynamic provider loads this file in its own process, and the unit tests
// call it with a fake runner.
import { runPostDeployBenchmark } from "../benchmarks/post-deploy.ts";
import { formatSummary, type Summary } from "../benchmarks/summary.ts";
import type { BenchmarkOptions } from "../benchmarks/options.ts";
import { briefError, endpointOf } from "./schema-apply.ts";
import { verifyFullUrl } from "./pg-client.ts";
import type { BenchmarkMode, ClusterConfig } from "./spec.ts";

export type { Summary } from "../benchmarks/summary.ts";

/** The data set and index settings of the run: those of the deployed schema. */
export type BenchmarkDataset = Pick<BenchmarkOptions, "dimensions" | "k" | "hnswM" | "hnswEfConstruction" | "shardCount" | "exactMaxRows">;

export interface BenchmarkStepInputs {
  /** postgresql:// URL of the application role through PgBouncer. */
  url: string;
  /** The cluster CA (PEM): PgBouncer is verified with it and by name (sslmode=verify-full). */
  ca?: string;
  mode: BenchmarkMode;
  /** The schema version the run follows (only a trigger here: a new version runs the suite again). */
  schemaVersion: string;
  /** Any new value runs the suite again. */
  runId: string;
  dataset: BenchmarkDataset;
}

export type BenchmarkRunner = (url: string, mode: BenchmarkMode, overrides: Partial<BenchmarkDataset>) => Promise<Summary>;

export interface BenchmarkStepOptions {
  /** The suite; injected by the tests. */
  runner?: BenchmarkRunner;
  /** Progress lines (never the connection string). */
  log?: (message: string) => void;
}

/** The run's data set from the cluster configuration, so that it measures what was deployed. */
export function benchmarkDataset(config: ClusterConfig): BenchmarkDataset {
  return {
    dimensions: config.embeddingDimensions,
    k: config.searchK,
    hnswM: config.hnswM,
    hnswEfConstruction: config.hnswEfConstruction,
    shardCount: config.shardCount,
    exactMaxRows: config.searchExactMaxRows,
  };
}

/** Runs the suite once; a failed run throws (the deployment then reports it, and the next `pulumi up` retries). */
export async function runBenchmarkStep(inputs: BenchmarkStepInputs, options: BenchmarkStepOptions = {}): Promise<Summary> {
  const runner = options.runner ?? runPostDeployBenchmark;
  const log = options.log ?? (() => {});
  const endpoint = endpointOf(inputs.url);
  log(`benchmark: ${inputs.mode} run against ${endpoint} after schema ${inputs.schemaVersion}${inputs.runId ? ` (run ${inputs.runId})` : ""}`);
  let summary: Summary;
  try {
    summary = await runner(verifyFullUrl(inputs.url, inputs.ca), inputs.mode, inputs.dataset);
  } catch (error) {
    throw new Error(`benchmark: the ${inputs.mode} run against ${endpoint} failed: ${briefError(error)}`, { cause: error });
  }
  log(formatSummary(summary));
  return summary;
}
