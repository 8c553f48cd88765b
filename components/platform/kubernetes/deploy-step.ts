// The deploy steps as Jobs inside the cluster: the schema migrations and the post-deploy benchmark run
// in the deploy-steps image (images/deploy-steps.Dockerfile: the database image plus Node.js and this
// project's code), reach the database through the router like any client, and write their result to
// a ConfigMap that the program reads back. Pure: the object specs; kubernetes.ts registers them.
//
// - The input (connection URLs with passwords) travels in a Secret mounted as a file: never in the
//   command line or an environment literal.
// - The result: the step patches `data` of its ConfigMap `<step>-result` (a Role allows exactly that,
//   nothing else) with the result JSON and the trigger it ran for; the program checks the trigger.
// - Retries: the step retries by itself while no leader answers (schema-apply.ts); a pod that fails
//   with EXIT_FINAL (a wrong password, a changed migration) fails the Job at once (podFailurePolicy);
//   a pod lost with its node does not count; anything else is retried BACKOFF_LIMIT times.
// - Network: the step's pods are kind DEPLOY_STEP_KIND: HAProxy's read-write port and PgBouncer admit
//   them (network-policy.ts); their own egress goes to those two, DNS and the API server only.
// - The rollout step (components/rollout/step.ts) is of its own kind, ROLLOUT_STEP_KIND, with its own
//   ServiceAccount: its pods alone may also reach Patroni's REST API on the database pods, and its
//   account alone may read the Patroni StatefulSets and delete their pods (rolloutRules).
// - The scaling step (components/scaling/step.ts) is of its own kind too, SCALING_STEP_KIND: HAProxy's
//   read-write port and the API server only; its account alone may scale the worker StatefulSets
//   that go to no pod (scalingRules). The rotation step is an ordinary deploy step (SQL only).
import { PORTS } from "../../render/types.ts";
import type { DeployStepName } from "../types.ts";
import { KIND_LABEL } from "./naming.ts";
import { containerSecurityContext, podSecurityContext, type RunAs } from "./pod.ts";

/** The pods' kind label value (KIND_LABEL): what the router's policies admit. */
export const DEPLOY_STEP_KIND = "deploy-step";
/** The rollout step's pods' kind: also admitted to Patroni's REST API (network-policy.ts). */
export const ROLLOUT_STEP_KIND = "rollout-step";
/** The scaling step's pods' kind: HAProxy's read-write port (no PgBouncer, no Patroni), the API server. */
export const SCALING_STEP_KIND = "scaling-step";
export type StepKind = typeof DEPLOY_STEP_KIND | typeof ROLLOUT_STEP_KIND | typeof SCALING_STEP_KIND;

/** The kind of a step's pods: what they may reach, and which ServiceAccount they run as. */
export function stepKind(step: DeployStepName): StepKind {
  if (step === "rollout") return ROLLOUT_STEP_KIND;
  return step === "scaling" ? SCALING_STEP_KIND : DEPLOY_STEP_KIND;
}

/** The ServiceAccount and egress policy of a kind of step (one each, shared by the steps of that kind). */
export function stepSharedName(clusterName: string, kind: StepKind): string {
  return kind === DEPLOY_STEP_KIND ? `${clusterName}-deploy-steps` : `${clusterName}-${kind}`;
}
/** Where the step's Secret (one file, INPUT_FILE) is mounted. */
export const INPUT_DIR = "/etc/dpc-step";
export const INPUT_FILE = "input.json";
/** Keys of the result ConfigMap's data. */
export const RESULT_KEY = "result";
export const TRIGGER_KEY = "trigger";
/** Environment of the step's container (none holds a secret). */
export const ENV = {
  step: "DPC_STEP",
  resultConfigMap: "DPC_STEP_RESULT_CONFIGMAP",
  trigger: "DPC_STEP_TRIGGER",
  namespace: "DPC_STEP_NAMESPACE",
} as const;
/** Exit status of a step that failed for good (retrying cannot help): the Job fails at once. */
export const EXIT_FINAL = 3;
/** Pods that may fail otherwise (a crash, an eviction) before the Job fails. */
export const BACKOFF_LIMIT = 2;
/** CPU and memory of a step's pod (Node.js, the benchmark's load generator included); requests = limits. */
export const STEP_RESOURCES = { cpu: "1", memory: "1024Mi" };
/** Annotation of the pod template holding the trigger: a new trigger is a new Job. */
export const TRIGGER_ANNOTATION = "dpc/trigger";

/** Names of a step's objects, from its name stem. */
export function stepObjectNames(name: string) {
  return { input: `${name}-input`, result: `${name}-result`, role: `${name}-result-writer`, podsRole: `${name}-pods` };
}

export interface StepJobArgs {
  step: DeployStepName;
  /** KIND_LABEL of the pods (stepKind). */
  kind: StepKind;
  image: string;
  /** Labels of the pods (the cluster's, plus KIND_LABEL set here). */
  labels: Record<string, string>;
  serviceAccountName: string;
  inputSecretName: string;
  resultConfigMapName: string;
  trigger: string;
  /** The Job's activeDeadlineSeconds: the step's whole budget, its pod's scheduling included. */
  timeoutSeconds: number;
  runAs: RunAs;
}

/** The Job's spec (batch/v1): one pod at a time, never restarted in place, bounded in time and retries. */
export function stepJobSpec(args: StepJobArgs) {
  return {
    backoffLimit: BACKOFF_LIMIT,
    activeDeadlineSeconds: args.timeoutSeconds,
    // A final error fails the Job now; a pod lost with its node (DisruptionTarget) is not counted.
    podFailurePolicy: {
      rules: [
        { action: "FailJob", onExitCodes: { containerName: "main", operator: "In", values: [EXIT_FINAL] } },
        { action: "Ignore", onPodConditions: [{ type: "DisruptionTarget", status: "True" }] },
      ],
    },
    template: {
      metadata: { labels: { ...args.labels, [KIND_LABEL]: args.kind }, annotations: { [TRIGGER_ANNOTATION]: args.trigger } },
      spec: {
        // podFailurePolicy requires Never: each retry is a new pod, counted against backoffLimit.
        restartPolicy: "Never",
        serviceAccountName: args.serviceAccountName,
        // The token patches the result ConfigMap, and nothing else (the Role; the rollout's: rolloutRules too).
        automountServiceAccountToken: true,
        enableServiceLinks: false,
        securityContext: podSecurityContext(args.runAs),
        containers: [
          {
            name: "main",
            image: args.image,
            // The image's entrypoint is scripts/deploy-step.ts; the step's name is not a secret.
            args: [args.step],
            env: [
              { name: ENV.step, value: args.step },
              { name: ENV.resultConfigMap, value: args.resultConfigMapName },
              { name: ENV.trigger, value: args.trigger },
              { name: ENV.namespace, valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } },
            ],
            volumeMounts: [
              { name: "input", mountPath: INPUT_DIR, readOnly: true },
              // tsx compiles into the temporary directory.
              { name: "tmp", mountPath: "/tmp" },
            ],
            resources: { requests: STEP_RESOURCES, limits: STEP_RESOURCES },
            securityContext: containerSecurityContext(),
          },
        ],
        volumes: [
          // Readable by the pod's group only (fsGroup); it holds the passwords.
          { name: "input", secret: { secretName: args.inputSecretName, defaultMode: 0o440 } },
          { name: "tmp", emptyDir: {} },
        ],
      },
    },
  };
}

/** The Role's rules: read and patch the step's own result ConfigMap, nothing else. */
export function resultWriterRules(resultConfigMapName: string) {
  return [{ apiGroups: [""], resources: ["configmaps"], resourceNames: [resultConfigMapName], verbs: ["get", "patch"] }];
}

/**
 * The rollout Role's rules, besides resultWriterRules: read the Patroni groups' StatefulSets (their
 * selector and updateRevision), list pods (a list cannot be limited by name: the namespace's pods'
 * names and labels, which hold no secret), delete the groups' members' pods and no other.
 */
export function rolloutRules(restarts: { statefulSet: string; members: string[] }[]) {
  return [
    { apiGroups: ["apps"], resources: ["statefulsets"], resourceNames: restarts.map((r) => r.statefulSet), verbs: ["get"] },
    { apiGroups: [""], resources: ["pods"], verbs: ["list"] },
    { apiGroups: [""], resources: ["pods"], resourceNames: restarts.flatMap((r) => r.members), verbs: ["delete"] },
  ];
}

/**
 * The scaling Role's rules, besides resultWriterRules: read the worker StatefulSets that go (their
 * selector) and set their scale to 0 (the `scale` subresource, by name), list pods (to wait until
 * theirs are gone). Nothing else: the sets themselves are deleted by Pulumi afterwards.
 */
export function scalingRules(statefulSets: string[]) {
  return [
    { apiGroups: ["apps"], resources: ["statefulsets"], resourceNames: statefulSets, verbs: ["get"] },
    { apiGroups: ["apps"], resources: ["statefulsets/scale"], resourceNames: statefulSets, verbs: ["patch"] },
    { apiGroups: [""], resources: ["pods"], verbs: ["list"] },
  ];
}

/**
 * Egress of the steps' pods of `kind`: HAProxy's read-write port and PgBouncer (pods of this
 * cluster), DNS, and the Kubernetes API (ports 443 and 6443 at any address: the API server's address
 * is the cluster's own, outside the pod network on most clusters, and a policy cannot name it
 * portably); the rollout's also Patroni's REST API on the database pods; the scaling step's HAProxy's
 * read-write port only (no PgBouncer).
 */
export function stepEgressPolicySpec(clusterName: string, kind: StepKind = DEPLOY_STEP_KIND) {
  const router = (peer: string, port: number) => ({
    to: [{ podSelector: { matchLabels: { "app.kubernetes.io/part-of": clusterName, [KIND_LABEL]: peer } } }],
    ports: [{ protocol: "TCP", port }],
  });
  return {
    podSelector: { matchLabels: { "app.kubernetes.io/part-of": clusterName, [KIND_LABEL]: kind } },
    policyTypes: ["Egress"],
    egress: [
      router("haproxy", PORTS.haproxyReadWrite),
      ...(kind === SCALING_STEP_KIND ? [] : [router("pgbouncer", PORTS.pgbouncer)]),
      ...(kind === ROLLOUT_STEP_KIND ? [router("database", PORTS.patroniRest)] : []),
      { ports: [{ protocol: "UDP", port: 53 }, { protocol: "TCP", port: 53 }] },
      { ports: [{ protocol: "TCP", port: 443 }, { protocol: "TCP", port: 6443 }] },
    ],
  };
}

/**
 * The step's result from its ConfigMap's data, checked to be the one of `trigger` (the Job that just
 * completed, not an earlier run). Throws, saying which, when it is missing or stale.
 */
export function readStepResult(name: string, data: Record<string, string> | undefined, trigger: string): Record<string, unknown> {
  const found = data?.[TRIGGER_KEY];
  if (data?.[RESULT_KEY] === undefined || found === undefined) {
    throw new Error(`deploy step ${name}: its Job completed but ConfigMap ${stepObjectNames(name).result} holds no result`);
  }
  if (found !== trigger) {
    throw new Error(`deploy step ${name}: ConfigMap ${stepObjectNames(name).result} holds the result of trigger ${found.slice(0, 12)}, not of ${trigger.slice(0, 12)}`);
  }
  return JSON.parse(data[RESULT_KEY]) as Record<string, unknown>;
}
