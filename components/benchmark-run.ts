// The post-deploy benchmark: after `pulumi up` creates or updates the schema, run the suite against
// PgBouncer and keep its summary as an output (stack output `benchmarkSummary`).
//
// Why a dynamic resource and not a ResourceHook (afterCreate/afterUpdate on the Schema): a hook runs
// at the right moment but cannot return anything, and the summary must land in the stack outputs. A
// dynamic resource runs in the same phase (during `pulumi up`, never in preview), returns outputs,
// and re-runs exactly when its inputs say so: a new schema version, mode or `benchmarkRunId`.
// See components/schema.ts for why the provider's closure only captures two file URLs.
import { createHash } from "node:crypto";
import * as pulumi from "@pulumi/pulumi";
import type { Platform } from "./platform/types.ts";
import type { BenchmarkMode, ClusterConfig } from "./spec.ts";
import { benchmarkDataset, type BenchmarkDataset, type BenchmarkStepInputs, type Summary } from "./benchmark-step.ts";

const TSX_API_URL = import.meta.resolve("tsx/esm/api");
const BENCHMARK_STEP_URL = new URL("./benchmark-step.ts", import.meta.url).href;

// Exported for the test that runs its serialized form in a plain Node process.
export const benchmarkProvider: pulumi.dynamic.ResourceProvider = {
  async create(inputs: BenchmarkStepInputs) {
    const { tsImport } = await import(TSX_API_URL);
    const { runBenchmarkStep } = await tsImport(BENCHMARK_STEP_URL, BENCHMARK_STEP_URL);
    const summary = await runBenchmarkStep(inputs, { log: (message: string) => console.log(message) });
    return { id: `benchmark-${inputs.schemaVersion}-${inputs.mode}-${Date.now()}`, outs: { ...inputs, summary } };
  },
  async update(_id: string, _olds: BenchmarkStepInputs, news: BenchmarkStepInputs) {
    const { tsImport } = await import(TSX_API_URL);
    const { runBenchmarkStep } = await tsImport(BENCHMARK_STEP_URL, BENCHMARK_STEP_URL);
    const summary = await runBenchmarkStep(news, { log: (message: string) => console.log(message) });
    return { outs: { ...news, summary } };
  },
  // Run again on a new schema version, mode, run id or data set; a rotated password alone does not.
  async diff(_id: string, olds: BenchmarkStepInputs, news: BenchmarkStepInputs) {
    const changes =
      olds.schemaVersion !== news.schemaVersion ||
      olds.mode !== news.mode ||
      olds.runId !== news.runId ||
      JSON.stringify(olds.dataset) !== JSON.stringify(news.dataset);
    return { changes };
  },
  // The suite drops its own table at the end of a run: nothing to delete.
  async delete() {},
};

export interface BenchmarkRunArgs {
  /** Validated configuration: mode, run id and the data set's dimensions and index settings. */
  readonly config: ClusterConfig;
  /** postgresql:// URL of the application role through PgBouncer (secret; stays secret in the state). */
  readonly url: pulumi.Input<string>;
  /** The schema version the run follows. */
  readonly schemaVersion: pulumi.Input<string>;
  /** The cluster CA certificate (PEM, not secret): the suite verifies PgBouncer with it. */
  readonly ca: pulumi.Input<string>;
}

/**
 * The whole run's budget where it runs as a Job (kubernetes), seconds, by mode: the data set's load,
 * the index build and every scenario, with room for a loaded cluster.
 */
export const BENCHMARK_STEP_DEADLINE_SECONDS: Record<BenchmarkMode, number> = { quick: 1800, full: 3600, stress: 7200 };

/** What makes the run happen again, as the provider's diff decides it (no secret in it). */
export function benchmarkTrigger(inputs: Omit<BenchmarkStepInputs, "url" | "ca">): string {
  return createHash("sha256").update(JSON.stringify([inputs.schemaVersion, inputs.mode, inputs.runId, inputs.dataset])).digest("hex");
}

/**
 * The post-deploy benchmark's summary: a Job in the cluster where the platform runs deploy steps there
 * (kubernetes), else the BenchmarkRun dynamic resource in the Pulumi process (docker).
 */
export function postDeployBenchmark(
  name: string,
  args: BenchmarkRunArgs & { platform: Platform },
  opts: pulumi.CustomResourceOptions & { parent: pulumi.Resource },
): pulumi.Output<Summary> {
  const { config } = args;
  const plain = pulumi.output({
    mode: config.benchmarkMode,
    schemaVersion: args.schemaVersion,
    runId: config.benchmarkRunId,
    dataset: benchmarkDataset(config),
  });
  const ca = pulumi.output(args.ca);
  const inCluster = args.platform.runDeployStep(
    {
      name,
      step: "benchmark",
      input: pulumi.secret(pulumi.all([plain, args.url, ca]).apply(([p, url, caPem]) => ({ ...p, url, ca: caPem }) satisfies BenchmarkStepInputs)),
      trigger: plain.apply(benchmarkTrigger),
      timeoutSeconds: BENCHMARK_STEP_DEADLINE_SECONDS[config.benchmarkMode],
    },
    { parent: opts.parent, dependsOn: opts.dependsOn },
  );
  if (inCluster) return inCluster as unknown as pulumi.Output<Summary>;
  return new BenchmarkRun(name, args, opts).summary;
}

/** The dynamic resource that runs the suite (type `pulumi-nodejs:dynamic/dpc:BenchmarkRun`). */
export class BenchmarkRun extends pulumi.dynamic.Resource {
  /** The run's compact summary: verdict, failed checks, p95 / throughput / recall per scenario. */
  declare readonly summary: pulumi.Output<Summary>;
  declare readonly mode: pulumi.Output<BenchmarkMode>;

  constructor(name: string, args: BenchmarkRunArgs, opts: pulumi.CustomResourceOptions) {
    const { config } = args;
    const inputs: { [K in keyof BenchmarkStepInputs]: pulumi.Input<BenchmarkStepInputs[K]> } = {
      url: pulumi.secret(args.url),
      ca: args.ca,
      mode: config.benchmarkMode,
      schemaVersion: args.schemaVersion,
      runId: config.benchmarkRunId,
      dataset: benchmarkDataset(config) satisfies BenchmarkDataset,
    };
    // `summary` starts undefined: the provider's outs fill it in. The state echoes the inputs, so
    // the URL is marked secret among the outputs too.
    super(benchmarkProvider, name, { ...inputs, summary: undefined }, { ...opts, additionalSecretOutputs: ["url"] }, "dpc", "BenchmarkRun");
  }
}
