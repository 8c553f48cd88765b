// The Pulumi mocks every program-level test shares: setMocks before any resource exists, a mock
// monitor that records each registration request (type, name, parent, dependencies, inputs), the
// outputs the dynamic resources would return, and helpers to read outputs and find secrets.
// Import it before the program (the program's resources must see the mocks).
import { readFileSync } from "node:fs";
import * as pulumi from "@pulumi/pulumi";
import { parse as parseYaml } from "yaml";
import { SECRET_SIG, SECRET_SIG_KEY, recordRegistrations, type RecordedRegistration } from "../support/pulumi-recording.ts";
import { mockCertificatesState } from "../support/mock-certificates.ts";

export const PROJECT = "distributed-postgres-cluster";

export const SCHEMA_TYPE = "pulumi-nodejs:dynamic/dpc:SchemaMigrations";
export const BENCHMARK_TYPE = "pulumi-nodejs:dynamic/dpc:BenchmarkRun";
export const CERTIFICATES_TYPE = "pulumi-nodejs:dynamic/dpc:ClusterCertificates";
export const ROTATION_TYPE = "pulumi-nodejs:dynamic/dpc:PasswordRotation";
/**
 * Tests only: the `previous` passwords the PasswordRotation resource holds after an update that saw
 * them change (a later run of the same stack with new passwords); unset: none (its create).
 */
export const mockRotation: { previous?: Record<string, string> } = {};
/** What the dynamic providers would return after a real `pulumi up`. */
export const MOCK_SCHEMA_OUTPUTS = { version: "008_mock", applied: ["001_mock", "008_mock"], citus: true, notes: [] as string[] };
/** What the kubernetes rollout step's pod would write (components/rollout/step.ts RolloutStepResult). */
export const MOCK_ROLLOUT_REPORT = {
  groups: [{ group: 1, statefulSet: "dpc-worker1", changed: ["work_mem"], deleted: ["dpc-worker1-1", "dpc-worker1-0"], restarted: [], switchovers: ["dpc-worker1-0 -> dpc-worker1-1 (1.50 s)"] }],
  seconds: 42.5,
};
/** What the kubernetes rotation step's pod would write (components/rotation/rotate.ts RotationResult: names only). */
export const MOCK_ROTATION_RESULT = { changed: [] as string[], roles: [] as string[], workers: [] as string[], steps: [] as string[], seconds: {} };
/** What the kubernetes scaling step's pod would write (components/scaling/step.ts ScalingStepResult). */
export const MOCK_SCALING_REPORT = {
  direction: "out",
  workerGroups: 6,
  registered: [1, 2, 3, 4, 5, 6],
  moves: 0,
  shards: [{ tables: ["claude_flow.memory_entries"], shards: { "1": 2, "2": 2, "3": 2, "4": 2, "5": 2, "6": 2 } }],
  drained: [] as number[],
  stopped: [] as string[],
  removed: [] as string[],
  seconds: 3.2,
};
export const MOCK_BENCHMARK_SUMMARY = { mode: "mock", verdict: "pass", failed: [] as string[], citus: true, scenarios: [], loadGeneratorRatio: null, reportStartedAt: "2026-01-01T00:00:00.000Z" };

export type Registration = RecordedRegistration;
export const registrations: Registration[] = [];
export const generatedPasswords: string[] = [];

await pulumi.runtime.setMocks(
  {
    newResource(args) {
      const state: Record<string, unknown> = { ...args.inputs };
      if (args.type === "random:index/randomPassword:RandomPassword") {
        state.result = `generated-${args.name}`;
        generatedPasswords.push(state.result as string);
      }
      if (args.type === "docker:index/image:Image") state.repoDigest = `${args.inputs.imageName}@sha256:${"0".repeat(64)}`;
      if (args.type === SCHEMA_TYPE) Object.assign(state, MOCK_SCHEMA_OUTPUTS);
      if (args.type === BENCHMARK_TYPE) state.summary = MOCK_BENCHMARK_SUMMARY;
      // What the engine would hold after create, or after diff/update on a later run of the same stack.
      if (args.type === CERTIFICATES_TYPE) Object.assign(state, mockCertificatesState(args.name, args.inputs));
      if (args.type === ROTATION_TYPE && mockRotation.previous) state.previous = mockRotation.previous;
      if (args.id && args.type === "kubernetes:core/v1:ConfigMap") return readStepResult(args.id);
      return { id: `${args.name}-id`, state };
    },
    call: (args) => args.inputs,
  },
  PROJECT,
  "dev",
  false,
);

/**
 * A kubernetes deploy step's result ConfigMap (`namespace/name`), read back after its Job completed:
 * what the step's pod would have written, with the trigger of the registered Job.
 */
function readStepResult(id: string) {
  const name = id.split("/")[1];
  // The last such Job: a test file may run the program more than once.
  const job = [...registrations].reverse().find((r) => {
    const env = (reveal(r.inputs.spec) as any)?.template?.spec?.containers?.[0]?.env as { name: string; value?: string }[] | undefined;
    return r.type === "kubernetes:batch/v1:Job" && env?.some((e) => e.name === "DPC_STEP_RESULT_CONFIGMAP" && e.value === name);
  });
  if (!job) throw new Error(`read of ConfigMap ${id}: no Job writes it`);
  const template = (reveal(job.inputs.spec) as any).template;
  const step = template.spec.containers[0].args[0];
  const results: Record<string, unknown> = { schema: MOCK_SCHEMA_OUTPUTS, rollout: MOCK_ROLLOUT_REPORT, rotation: MOCK_ROTATION_RESULT, scaling: MOCK_SCALING_REPORT };
  const result = results[step] ?? MOCK_BENCHMARK_SUMMARY;
  return { id, state: { metadata: { name }, data: { result: JSON.stringify(result), trigger: template.metadata.annotations["dpc/trigger"] } } };
}

// Record every registration request as the engine would receive it.
recordRegistrations((registration) => registrations.push(registration));

// No Docker engine under the mocks: every database and etcd container is new (none deployed), so each
// member gets its turn at once. test/unit/rolling-replacement.test.ts installs its own fake engine.
const { useReplacementEnvironment } = await import("../../components/rolling-replacement.ts");
useReplacementEnvironment({
  environment: {
    deployed: async () => undefined,
    target: async () => {
      throw new Error("no Patroni under the mocks");
    },
  },
  etcdEnvironment: { deployed: async () => undefined },
});

/** Pulumi.dev.yaml's config, as `pulumi.runtime.setAllConfig` takes it. */
export function devStackConfig(): Record<string, string> {
  const file = parseYaml(readFileSync(new URL("../../Pulumi.dev.yaml", import.meta.url), "utf8")) as { config: Record<string, unknown> };
  return Object.fromEntries(Object.entries(file.config).map(([key, value]) => [key, String(value)]));
}

/** Config key of this project. */
export const key = (name: string) => `${PROJECT}:${name}`;

export function valueOf<T>(output: pulumi.Output<T> | T, timeoutMs = 10_000): Promise<T> {
  if (!pulumi.Output.isInstance(output)) return Promise.resolve(output as T);
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("output never resolved (unknown?)")), timeoutMs);
    output.apply((value) => {
      clearTimeout(timer);
      resolve(value);
      return value;
    });
  });
}

/** Waits until no registration has arrived for a while: the program has registered everything. */
export async function settled(): Promise<void> {
  let count = -1;
  for (let i = 0; i < 100 && count !== registrations.length; i++) {
    count = registrations.length;
    await new Promise((r) => setTimeout(r, 150));
  }
}

export const isSecretValue = (value: unknown): value is { value: unknown } =>
  typeof value === "object" && value !== null && (value as Record<string, unknown>)[SECRET_SIG_KEY] === SECRET_SIG;
export const reveal = (value: unknown): unknown => (isSecretValue(value) ? value.value : value);

/** Every string in a value that is not inside a secret. */
export function plainStrings(value: unknown): string[] {
  if (isSecretValue(value)) return [];
  if (typeof value === "string") return [value];
  if (Array.isArray(value)) return value.flatMap(plainStrings);
  if (value && typeof value === "object") return Object.values(value).flatMap(plainStrings);
  return [];
}

export const CONTAINER = "docker:index/container:Container";
export const containers = () => registrations.filter((r) => r.type === CONTAINER);
export const byName = (name: string) => registrations.find((r) => r.name === name)!;
export const byType = (type: string) => registrations.filter((r) => r.type === type);

/** Asserts that none of `passwords` appears in any registration input outside a secret; returns the leaks. */
export function passwordLeaks(passwords: string[]): string[] {
  return registrations.flatMap((registration) =>
    plainStrings(registration.inputs)
      .filter((s) => passwords.some((p) => s.includes(p)))
      .map((s) => `${registration.type} ${registration.name}: ${s.slice(0, 80)}`),
  );
}
