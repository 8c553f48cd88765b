// The rollout deploy step (kubernetes): where a changed pod template restarts no Patroni member by
// itself (StatefulSets updating OnDelete) and `pulumi up` cannot reach the members' Patroni REST API,
// a Job in the cluster applies the PostgreSQL parameters and replaces the outdated pods in order
// (components/rollout/step.ts). It runs when its trigger changes: a digest of every Patroni group's
// pod template, the members and the wanted parameters; a second `pulumi up` with nothing changed
// registers the same Job and runs nothing. Its report lands in the stack output `rolloutReport`.
//
// Order: the worker groups first, the coordinator group last. The coordinator's switchover is the
// one every client waits for (PgBouncer paused); a worker's holds only the writes to its own shards.
// A template that does not start (a bad image, a broken file) is found on the first pod deleted, a
// worker group's replica, and the step stops there with every primary and the client path
// untouched; the coordinator's pods are replaced only once the template ran on every worker group.
import { createHash } from "node:crypto";
import * as pulumi from "@pulumi/pulumi";
import { groupName, type ClusterConfig, type Topology } from "./spec.ts";
import { PORTS } from "./render/index.ts";
import { dynamicParameters } from "./render/patroni.ts";
import { ROLLOUT_STEP_TIMEOUT_SECONDS } from "./postgres-config.ts";
import type { Platform } from "./platform/types.ts";
import type { RolloutStepInputs, RolloutStepResult } from "./rollout/step.ts";
import { KIND_LABEL } from "./platform/kubernetes/naming.ts";

/** Before the first step: the Job's pod scheduled and pulled, every group found healthy, s. */
const START_SECONDS = 600;

/**
 * The Job's whole budget, s: START_SECONDS plus, per group of n members, the most steps it can take
 * (n pods deleted, a switchover, n restarts and a second switchover for parameters), each at most
 * stepTimeoutSeconds. A cap for a rollout that keeps moving; a stuck step fails the Job after
 * stepTimeoutSeconds anyway. The seed topology: 600 + (7 + 6 × 5) × 300 = 11,700 s.
 */
export function rolloutStepDeadlineSeconds(groupSizes: number[], stepTimeoutSeconds = ROLLOUT_STEP_TIMEOUT_SECONDS): number {
  return START_SECONDS + groupSizes.reduce((sum, n) => sum + (2 * n + 1) * stepTimeoutSeconds, 0);
}

/** The Citus groups in the order the step rolls them: the worker groups by number, the coordinator group (0) last. */
export function rolloutOrder(groups: number[]): number[] {
  return [...groups.filter((g) => g !== 0).sort((a, b) => a - b), ...groups.filter((g) => g === 0)];
}

/**
 * What makes the step run again (hex sha256): the pod template digests (platform.podTemplateDigest),
 * the groups with their StatefulSets and members, the wanted parameters. Credentials, URLs and
 * timeouts alone do not (a changed password changes the files, and so a digest).
 */
export function rolloutTrigger(groups: Pick<RolloutStepInputs["groups"][number], "group" | "statefulSet" | "members">[], parameters: RolloutStepInputs["parameters"], digests: string[]): string {
  const members = groups.map((g) => [g.group, g.statefulSet, g.members.map((m) => m.name)]);
  return createHash("sha256").update(JSON.stringify([members, parameters, digests])).digest("hex");
}

export interface RolloutStepArgs {
  readonly config: ClusterConfig;
  readonly topology: Topology;
  readonly platform: Platform;
  /** Patroni REST API "user:password" (secret). */
  readonly restAuth: pulumi.Input<string>;
  /** PgBouncer's admin console as its admin user, ROLES.poolerAdmin (secret). */
  readonly poolerAdminUrl: pulumi.Input<string>;
  /** A superuser URL through HAProxy's read-write listener (secret). */
  readonly readWriteUrl: pulumi.Input<string>;
  /** The cluster CA certificate (PEM). */
  readonly ca: pulumi.Input<string>;
  /**
   * The REST API credentials before the last password rotation that changed them (secret; undefined
   * when none did): the pods not yet replaced still check them.
   */
  readonly previous?: pulumi.Input<RolloutStepInputs["previous"] | undefined>;
}

/**
 * The rollout step as a component (type `dpc:index:Rollout`): its Job and objects are its children,
 * so that what depends on it (the schema) waits for the Job. Construct it only where the platform has
 * pod templates to roll (platform.podTemplateDigest) and runs steps in the cluster; it throws otherwise.
 */
export class Rollout extends pulumi.ComponentResource {
  /** The step's report (stack output `rolloutReport`). */
  readonly report: pulumi.Output<RolloutStepResult>;

  constructor(name: string, args: RolloutStepArgs, opts: pulumi.ComponentResourceOptions = {}) {
    const { config, topology, platform } = args;
    // Only plain facts go to super(): component inputs are saved in the state.
    super("dpc:index:Rollout", name, { namespace: config.kubernetesNamespace }, opts);
    const groups = rolloutOrder(topology.groups.map((_, group) => group)).map((group) => ({
      group,
      statefulSet: groupName(topology.scope, group),
      members: topology.groups[group].map((node) => ({ name: node.name, restUrl: `https://${platform.hostNaming.host(node.name)}:${PORTS.patroniRest}` })),
    }));
    const digests = groups.map((g) => platform.podTemplateDigest?.(g.statefulSet));
    const missing = groups.filter((_, i) => digests[i] === undefined).map((g) => g.statefulSet);
    if (missing.length > 0) throw new Error(`rollout: no pod template digest for ${missing.join(", ")}: the platform replaces those members itself`);
    const parameters = dynamicParameters(config);
    const input = pulumi.secret(
      pulumi.all([args.restAuth, args.poolerAdminUrl, args.readWriteUrl, args.ca, args.previous]).apply(
        ([restAuth, poolerAdminUrl, readWriteUrl, ca, previous]): Record<string, unknown> =>
          ({
            namespace: config.kubernetesNamespace,
            groups,
            // Patroni's REST API, PgBouncer and PostgreSQL speak TLS, verified against the cluster CA.
            ca,
            restAuth,
            poolerAdminUrl,
            readWriteUrl,
            parameters,
            stepTimeoutSeconds: ROLLOUT_STEP_TIMEOUT_SECONDS,
            // kubernetesRouterReplicas pods each: paused, resumed and checked one by one.
            routers: {
              pgbouncer: { "app.kubernetes.io/part-of": config.clusterName, [KIND_LABEL]: "pgbouncer" },
              haproxy: { "app.kubernetes.io/part-of": config.clusterName, [KIND_LABEL]: "haproxy" },
            },
            // From a rotation of the REST API password until the next one (the trigger does not look at credentials).
            ...(previous?.restAuth ? { previous } : {}),
          }) satisfies RolloutStepInputs,
      ),
    );
    const result = platform.runDeployStep(
      {
        name,
        step: "rollout",
        input,
        trigger: pulumi.all(digests as pulumi.Output<string>[]).apply((d) => rolloutTrigger(groups, parameters, d)),
        timeoutSeconds: rolloutStepDeadlineSeconds(groups.map((g) => g.members.length)),
        restarts: groups.map((g) => ({ statefulSet: g.statefulSet, members: g.members.map((m) => m.name) })),
      },
      // Children do not inherit a component's dependsOn: hand it on.
      { parent: this, dependsOn: opts.dependsOn },
    );
    if (!result) throw new Error("rollout: the platform runs no deploy step in the cluster");
    this.report = result as unknown as pulumi.Output<RolloutStepResult>;
    this.registerOutputs({ report: this.report });
  }
}
