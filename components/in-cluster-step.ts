// What a deploy step's pod runs (scripts/deploy-step.ts, in the deploy-steps image): read the input
// from the mounted Secret, run the same function the Pulumi process runs on docker (runSchemaStep,
// runBenchmarkStep, runRotationStep; the rollout: components/rollout/step.ts, the PostgresConfig's
// code plus the pod rollout; the scaling: components/scaling/step.ts, citus-workers.ts plus the
// going StatefulSets scaled to 0), and report the result, with the trigger it ran for, to `pulumi up`. No Pulumi
// import; every effect is injected, so the unit tests run it with fakes.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { isRetryableError, runSchemaStep, type SchemaStepInputs } from "./schema-apply.ts";
import { runBenchmarkStep, type BenchmarkStepInputs } from "./benchmark-step.ts";
import { runRolloutStep, type RolloutStepInputs } from "./rollout/step.ts";
import { runRotationStep, type RotationStepInputs } from "./rotation/step.ts";
import { runScalingStep, type ScalingStepInputs } from "./scaling/step.ts";
import { ScalingError } from "./scaling/citus-workers.ts";
import { kubernetesScaler } from "./platform/kubernetes/scale-api.ts";
import { ENV, EXIT_FINAL, INPUT_DIR, INPUT_FILE, RESULT_KEY, TRIGGER_KEY } from "./platform/kubernetes/deploy-step.ts";
import { inClusterAccess } from "./platform/kubernetes/result-writer.ts";
import { kubernetesPodApi, readyPodAddresses } from "./platform/kubernetes/pod-api.ts";
import { KubernetesApiError } from "./platform/kubernetes/api-request.ts";
import type { DeployStepName } from "./platform/types.ts";

export interface InClusterStepOptions {
  env: NodeJS.ProcessEnv;
  /** The step's name from the command line (the Job's args); DPC_STEP otherwise. */
  argv: string[];
  /** Directory of the mounted input Secret (default INPUT_DIR). */
  inputDir?: string;
  /** The steps; injected by the tests (those given; the others are unknown). */
  steps?: { [K in DeployStepName]?: (input: any, log: (message: string) => void) => Promise<unknown> };
  /** Writes the result ConfigMap's data (patchConfigMapData with the pod's access). */
  report: (namespace: string, name: string, data: Record<string, string>) => Promise<void>;
  log?: (message: string) => void;
}

const STEPS: Required<NonNullable<InClusterStepOptions["steps"]>> = {
  schema: (input: SchemaStepInputs, log) => runSchemaStep(input, log),
  benchmark: (input: BenchmarkStepInputs, log) => runBenchmarkStep(input, { log }),
  // The pod's own ServiceAccount (the rollout Role) reaches the StatefulSets and their pods.
  rollout: (input: RolloutStepInputs, log) =>
    runRolloutStep(input, {
      // The token file is read for each request: the kubelet rotates it, and a rollout may outlast one.
      pods: kubernetesPodApi(() => inClusterAccess(), input.namespace),
      // PgBouncer and HAProxy pod by pod (their Services pick one pod per connection).
      routerPods: (matchLabels) => readyPodAddresses(() => inClusterAccess(), input.namespace, matchLabels),
      log,
      // Stopped mid-switchover (its deadline, a drain: SIGTERM, then the grace period): PgBouncer is
      // resumed before the pod goes, never left paused.
      onTerminate: (release) =>
        process.once("SIGTERM", () => {
          log("deploy step rollout: SIGTERM; resuming PgBouncer if it is paused");
          void release()
            .catch((error: Error) => log(`deploy step rollout: RESUME failed: ${error.message}`))
            .finally(() => process.exit(1));
        }),
    }),
  rotation: (input: RotationStepInputs, log) => runRotationStep(input, log),
  // The pod's own ServiceAccount (the scaling Role) scales the going worker StatefulSets.
  scaling: (input: ScalingStepInputs, log) => runScalingStep(input, { statefulSets: kubernetesScaler(() => inClusterAccess(), input.namespace), log }),
};

/**
 * Whether a step's failure is worth a new pod. The benchmark's always (a dropped connection, a slow
 * cluster); the rollout's and the scaling's unless its input is bad or the API server refused (RBAC,
 * a missing StatefulSet): it re-plans from what it finds (the scaling's not when Citus refused the
 * drain or the rebalance); the rotation's when the database did not answer; the schema's only when
 * no leader answered.
 */
function retryable(step: DeployStepName, error: unknown): boolean {
  if (step === "benchmark") return true;
  // A refused drain or rebalance is the answer (README: refused with its reason), not a hiccup.
  if (step === "scaling" && error instanceof ScalingError) return false;
  // The rotation waited for a leader by itself; a refused login or SQL error will not change.
  if (step === "rotation") return isRetryableError((error as Error).cause ?? error);
  if (step === "rollout" || step === "scaling") {
    if ((error as { final?: boolean }).final === true) return false;
    return !(error instanceof KubernetesApiError && [400, 401, 403, 404, 422].includes(error.status));
  }
  return isRetryableError(error) || /no leader answered|did not answer/.test((error as Error).message);
}

/**
 * Runs the step and reports its result; returns the process's exit status: 0 done, 1 failed (the Job
 * may retry in a new pod: the database did not answer, the report did not reach the API), EXIT_FINAL
 * failed for good (bad input, an SQL error, a changed migration: the Job fails at once).
 */
export async function runInClusterStep(options: InClusterStepOptions): Promise<number> {
  const log = options.log ?? ((message: string) => console.log(message));
  const env = options.env;
  const step = (options.argv[0] ?? env[ENV.step]) as DeployStepName;
  const steps = options.steps ?? STEPS;
  const missing = [ENV.resultConfigMap, ENV.trigger, ENV.namespace].filter((name) => !env[name]);
  if (!(step in steps) || missing.length > 0) {
    log(`deploy step: got step "${step}" and no ${missing.join(", ") || "(none missing)"}; allowed: ${Object.keys(steps).join(" or ")} with ${ENV.resultConfigMap}, ${ENV.trigger} and ${ENV.namespace} set`);
    return EXIT_FINAL;
  }
  let input: unknown;
  try {
    input = JSON.parse(readFileSync(join(options.inputDir ?? INPUT_DIR, INPUT_FILE), "utf8"));
  } catch (error) {
    log(`deploy step ${step}: cannot read its input ${INPUT_FILE}: ${(error as Error).message}`);
    return EXIT_FINAL;
  }
  let result: unknown;
  try {
    result = await steps[step]!(input, log);
  } catch (error) {
    const retry = retryable(step, error);
    log(`deploy step ${step} failed${retry ? "" : " for good"}: ${(error as Error).message}`);
    return retry ? 1 : EXIT_FINAL;
  }
  try {
    await options.report(env[ENV.namespace]!, env[ENV.resultConfigMap]!, { [RESULT_KEY]: JSON.stringify(result), [TRIGGER_KEY]: env[ENV.trigger]! });
  } catch (error) {
    log(`deploy step ${step}: done, but its result did not reach ConfigMap ${env[ENV.resultConfigMap]}: ${(error as Error).message}`);
    return 1;
  }
  log(`deploy step ${step}: done; result in ConfigMap ${env[ENV.resultConfigMap]}`);
  return 0;
}
