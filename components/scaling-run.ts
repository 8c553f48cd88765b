// The worker scaling deploy step (kubernetes): `pulumi up` cannot reach the database there, so the
// rebalance onto new worker groups and the drain of going ones (components/scaling/step.ts, with
// citus-workers.ts, the logic Docker's WorkerRebalance and `npm run local` run) is a Job in the
// cluster, after the schema and every worker group the program declares.
//
// Scale-out: the new groups' StatefulSets are created before the Job (it depends on every group);
// the Job waits until Patroni has registered them in pg_dist_node, then rebalances.
// Scale-in: the going groups are no longer declared, and Pulumi's engine deletes resources gone
// from the program only after the program's every step finished, and not at all when a step failed
// (pulumi/pulumi pkg/resource/deploy/deployment_executor.go: `performDeletes` runs once the
// program's events are done; a failed step cancels the deployment before it). So the Job runs while
// the going StatefulSets still exist: it drains them (refused, nothing stopped, when that fails),
// scales them to no pod, and removes their pg_dist_node rows; Pulumi then deletes the StatefulSets,
// their Secrets, Services, budgets and policies (claims kept: retainDataOnDestroy). Under
// `pulumi up --continue-on-error` the engine skips deleting what a failed step's resource depended
// on (performDeletes' erroredDeps): the replaced Job's previous run depended on every group it saw,
// the going ones included.
import { createHash } from "node:crypto";
import * as pulumi from "@pulumi/pulumi";
import { groupName, type ClusterConfig, type Topology } from "./spec.ts";
import { ROLES } from "./render/types.ts";
import type { ClusterSecrets } from "./render/types.ts";
import type { Platform } from "./platform/types.ts";
import { REBALANCE_TIMEOUT_SECONDS } from "./scaling/worker-scaling.ts";
import type { ScalingStepInputs, ScalingStepResult } from "./scaling/step.ts";

/** The most worker groups a stack may have (spec.ts: workerGroups 1..64). */
export const MAX_WORKER_GROUPS = 64;
/** Patroni 4 raises a smaller ttl to this, s (DESIGN.md §3). */
const PATRONI_MIN_TTL = 20;

/** StatefulSets the step may scale to 0: every worker group's above `workerGroups` (the only ones that can be going). */
export function goingCandidates(topology: Topology, workerGroups: number): string[] {
  return Array.from({ length: MAX_WORKER_GROUPS - workerGroups }, (_, i) => groupName(topology.scope, workerGroups + 1 + i));
}

/** What makes the Job run again: the worker groups wanted (hex sha256). */
export function scalingTrigger(workerGroups: number, prefix: string): string {
  return createHash("sha256").update(JSON.stringify(["scaling", workerGroups, prefix])).digest("hex");
}

/** The step's timings from the config: the rebalance's budget, the going pods' stop, the settle wait. */
export function scalingTimes(config: ClusterConfig) {
  const stopTimeoutSeconds = config.kubernetesTerminationGraceSeconds + 120;
  // A leader key left by a pod killed at its grace period expires after ttl; then two loops of the
  // coordinator's Patroni, which re-adds a group it still sees a leader for.
  const settleSeconds = Math.max(config.patroniTtl, PATRONI_MIN_TTL) + 2 * config.patroniLoopWait;
  return { rebalanceTimeoutSeconds: REBALANCE_TIMEOUT_SECONDS, stopTimeoutSeconds, settleSeconds, deadlineSeconds: 600 + REBALANCE_TIMEOUT_SECONDS + stopTimeoutSeconds + settleSeconds };
}

export interface WorkerScalingArgs {
  readonly config: ClusterConfig;
  readonly topology: Topology;
  readonly platform: Platform;
  readonly secrets: pulumi.Output<ClusterSecrets>;
  /** host:port of HAProxy's read-write Service as the Job's pod reaches it. */
  readonly readWriteEndpoint: string;
  readonly ca: pulumi.Input<string>;
}

/** The scaling Job (type `dpc:index:WorkerScalingStep`); its result is `report`. */
export class WorkerScalingStep extends pulumi.ComponentResource {
  readonly report: pulumi.Output<ScalingStepResult>;

  constructor(name: string, args: WorkerScalingArgs, opts: pulumi.ComponentResourceOptions = {}) {
    const { config, topology, platform } = args;
    super("dpc:index:WorkerScalingStep", name, { namespace: config.kubernetesNamespace, workerGroups: config.workerGroups }, opts);
    const prefix = `${topology.scope}-worker`;
    const times = scalingTimes(config);
    const input = pulumi.secret(
      pulumi.all([args.secrets, args.ca]).apply(
        ([s, ca]): Record<string, unknown> =>
          ({
            namespace: config.kubernetesNamespace,
            coordinatorUrl: `postgresql://${ROLES.superuser}:${encodeURIComponent(s.superuser)}@${args.readWriteEndpoint}/${config.database}`,
            ca,
            workerGroups: config.workerGroups,
            workerStatefulSetPrefix: prefix,
            rebalanceTimeoutSeconds: times.rebalanceTimeoutSeconds,
            stopTimeoutSeconds: times.stopTimeoutSeconds,
            settleSeconds: times.settleSeconds,
          }) satisfies ScalingStepInputs,
      ),
    );
    const result = platform.runDeployStep(
      {
        name,
        step: "scaling",
        input,
        trigger: scalingTrigger(config.workerGroups, prefix),
        timeoutSeconds: times.deadlineSeconds,
        scales: goingCandidates(topology, config.workerGroups),
      },
      // Children do not inherit a component's dependsOn: hand it on (the schema, every group).
      { parent: this, dependsOn: opts.dependsOn },
    );
    if (!result) throw new Error("worker scaling step: the platform runs no deploy step in the cluster");
    this.report = result as unknown as pulumi.Output<ScalingStepResult>;
    this.registerOutputs({ report: this.report });
  }
}
