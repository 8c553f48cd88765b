// The password rotation deploy step (kubernetes): `pulumi up` cannot reach the database there, so the
// rotation of changed passwords (components/rotation/step.ts: ALTER ROLE with a SCRAM verifier and
// Citus' pg_dist_authinfo on every node, through HAProxy's read-write Service) runs as a Job in the
// cluster, before anything receives the new values. Which passwords the cluster runs with is kept in
// Pulumi's state by the PasswordRotation resource in its record-only mode (components/password-rotation.ts,
// `inCluster`): its `previous` output holds the passwords of the deployment before the last change.
//
// Order (the Cluster component makes every process depend on this component):
//   the record (previous := the old passwords) -> this Job (roles altered, logging in with the old
//   superuser password; then, for a new application password, one login per pool at each PgBouncer
//   pod, whose pools would otherwise log in to the server with the old password's keys) -> the Secrets with the new files (PgBouncer's hold no rotated password: it
//   checks the application by auth_query), the StatefulSets' templates updated (OnDelete: no pod
//   restarts by itself) -> the rollout Job (components/rollout-run.ts) replaces the Patroni pods one
//   at a time, with the previous REST credentials for the pods not yet replaced; each new pod's
//   Patroni starts with its new superuser, replication, rewind and REST credentials -> the schema Job.
// Its trigger is an HMAC of the old and the new passwords (components/step-trigger.ts, keyed by a
// generated secret, so it lets nobody test guessed passwords offline): a second `up` with nothing changed
// registers the same Job (no run); a change, a new one. The first `up` runs it with nothing to
// rotate (old = new: no connection is made): a new cluster bootstraps with the passwords it is given.
import * as pulumi from "@pulumi/pulumi";
import type { ClusterConfig } from "./spec.ts";
import type { ClusterSecrets } from "./render/types.ts";
import type { Platform } from "./platform/types.ts";
import { passwordRotation, ROTATION_TIMEOUT_SECONDS, type PasswordRotationResource } from "./password-rotation.ts";
import type { RotationStepInputs } from "./rotation/step.ts";
import type { RotationResult } from "./rotation/rotate.ts";
import { keyedTrigger } from "./step-trigger.ts";

/** The Job's budget, s: its pod scheduled and the image pulled, then the rotation's own wait for a leader. */
export const ROTATION_STEP_DEADLINE_SECONDS = 600 + ROTATION_TIMEOUT_SECONDS;

/** What makes the Job run again: hex HMAC-SHA256, keyed by `key`, over the old and the new passwords. */
export function rotationTrigger(key: string, old: ClusterSecrets, next: ClusterSecrets): string {
  return keyedTrigger(key, ["rotation", old, next]);
}

export interface RotationStepArgs {
  readonly config: ClusterConfig;
  readonly platform: Platform;
  /** Every password of the cluster as the config now wants it (secret). */
  readonly passwords: pulumi.Output<ClusterSecrets>;
  /** host:port of HAProxy's read-write Service as the Job's pod reaches it. */
  readonly readWriteEndpoint: string;
  /** The cluster CA certificate (PEM). */
  readonly ca: pulumi.Input<string>;
  /** The trigger's HMAC key (secret, generated; components/step-trigger.ts). */
  readonly triggerKey: pulumi.Input<string>;
  /**
   * Step 3 (a login per pool with the new application password) at each PgBouncer pod: PgBouncer's
   * Service as host:port (the name its certificate carries), the headless Service whose DNS answer
   * lists its ready pods, and the databases that pool the application.
   */
  readonly pgbouncer?: { endpoint: string; pods: string; databases: string[] };
}

/**
 * The record and the rotation Job (type `dpc:index:PasswordRotationStep`). Everything that carries a
 * password must depend on it; it depends on nothing of the cluster's (the cluster the last `up` left
 * runs while it works).
 */
export class PasswordRotationStep extends pulumi.ComponentResource {
  /** The passwords before the last change (secret); undefined before any change. */
  readonly previous: pulumi.Output<ClusterSecrets | undefined>;
  /** What the Job did (roles altered, worker primaries reached): names only. */
  readonly result: pulumi.Output<RotationResult>;
  readonly record: PasswordRotationResource;

  constructor(name: string, args: RotationStepArgs, opts: pulumi.ComponentResourceOptions = {}) {
    const { config, platform } = args;
    super("dpc:index:PasswordRotationStep", name, { namespace: config.kubernetesNamespace }, opts);
    // Children do not inherit a component's dependsOn: hand it on (the DataIdentity).
    const dependsOn = opts.dependsOn;
    this.record = passwordRotation(
      `${name}-record`,
      { passwords: args.passwords, readWriteEndpoint: args.readWriteEndpoint, database: config.database, ca: args.ca, inCluster: true },
      { parent: this, dependsOn },
    );
    this.previous = this.record.previous;
    // No previous record (the first `up`, or nothing ever changed): old = new, nothing to rotate.
    const pair = pulumi.secret(pulumi.all([args.passwords, this.record.previous]).apply(([next, previous]) => ({ old: previous ?? next, next })));
    const input = pulumi.secret(
      pulumi.all([pair, args.ca]).apply(
        ([{ old, next }, ca]): Record<string, unknown> =>
          ({
            old,
            next,
            readWriteEndpoint: args.readWriteEndpoint,
            database: config.database,
            ca,
            timeoutSeconds: ROTATION_TIMEOUT_SECONDS,
            ...(args.pgbouncer ? { pgbouncerEndpoint: args.pgbouncer.endpoint, pgbouncerPods: args.pgbouncer.pods, poolerDatabases: args.pgbouncer.databases } : {}),
          }) satisfies RotationStepInputs,
      ),
    );
    const result = platform.runDeployStep(
      { name, step: "rotation", input, trigger: pulumi.secret(pulumi.all([pair, args.triggerKey]).apply(([{ old, next }, key]) => rotationTrigger(key, old, next))), timeoutSeconds: ROTATION_STEP_DEADLINE_SECONDS },
      { parent: this, dependsOn: [...(dependsOn === undefined ? [] : Array.isArray(dependsOn) ? dependsOn : [dependsOn as pulumi.Input<pulumi.Resource>]), this.record] },
    );
    if (!result) throw new Error("password rotation step: the platform runs no deploy step in the cluster");
    this.result = result as unknown as pulumi.Output<RotationResult>;
    this.registerOutputs({ result: this.result });
  }
}
