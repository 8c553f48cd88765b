// The scaling deploy step (Kubernetes): what the scaling Job's pod runs during `pulumi up`
// (components/in-cluster-step.ts) when `workerGroups` changed, with the logic of citus-workers.ts
// that Docker's WorkerRebalance and `npm run local` run:
// - out (no worker group above `workerGroups` is registered): scaleOut, which waits until Patroni
//   has registered every group 1..workerGroups in pg_dist_node, then runs Citus' rebalancer;
// - in (groups above `workerGroups` are registered): drainWorkerGroups (their shards moved off;
//   refused, nothing stopped, when that fails), then their StatefulSets scaled to no pod (Patroni
//   stops PostgreSQL cleanly and releases its leader key), a wait of ttl + 2 loops (a leader key
//   left by a pod killed at its grace period expires; the coordinator's Patroni re-adds a group it
//   still sees a leader for), then removeWorkerGroups (their pg_dist_node rows). Pulumi deletes the
//   StatefulSets afterwards: resources gone from the program are deleted after every other step,
//   and not at all when a step failed (README, "Scaling the worker groups").
// No Pulumi import and no I/O of its own beyond SQL: the StatefulSets' API is given.
import { pgClientConfig, verifyFullUrl, quietClient } from "../pg-client.ts";
import { drainWorkerGroups, registeredWorkerGroups, removeWorkerGroups, scaleOut, ScalingError, type ShardSpread } from "./citus-workers.ts";
import type { StatefulSetScaler } from "../platform/kubernetes/scale-api.ts";

/** The scaling Job's input (its Secret's input.json). */
export interface ScalingStepInputs {
  /** The namespace of the StatefulSets. */
  namespace: string;
  /** A superuser postgresql:// URL through HAProxy's read-write listener, in the Citus database. */
  coordinatorUrl: string;
  /** The cluster CA (PEM): the coordinator is verified with it (verify-full, by the Service's name). */
  ca?: string;
  /** The worker groups wanted (1..64). */
  workerGroups: number;
  /** StatefulSet of worker group g: `${workerStatefulSetPrefix}${g}` (spec.ts groupName: `<scope>-worker`). */
  workerStatefulSetPrefix: string;
  /** Budget of the rebalance or the drain, s (then the job is cancelled and the step fails). */
  rebalanceTimeoutSeconds: number;
  /** How long the going groups' pods may take to stop, s (their termination grace period and some). */
  stopTimeoutSeconds: number;
  /** Wait after the pods are gone before the rows are removed, s (Patroni's ttl + 2 × loop_wait). */
  settleSeconds: number;
}

export interface ScalingStepResult {
  direction: "out" | "in";
  workerGroups: number;
  /** Worker groups registered in pg_dist_node when the step started. */
  registered: number[];
  /** Shard-group moves (rebalance, or drain plus the evening-out after it). */
  moves: number;
  /** Shards of each colocation group per worker group afterwards: `[{ tables: [...], shards: { "1": 4, ... } }]`. */
  shards: { tables: string[]; shards: Record<string, number> }[];
  /** Scale-in: the groups drained, the StatefulSets scaled to 0, the pg_dist_node rows removed. */
  drained: number[];
  stopped: string[];
  removed: string[];
  seconds: number;
}

/** Problems of the input; retrying cannot help. */
export class ScalingInputError extends Error {
  readonly final = true;
}

/** The Citus side (citus-workers.ts); the unit tests give fakes. `url`: verify-full superuser URL. */
export interface CitusScaling {
  registered(url: string): Promise<number[]>;
  scaleOut: typeof scaleOut;
  drain: typeof drainWorkerGroups;
  remove: typeof removeWorkerGroups;
}

/** Worker groups with an active primary row in pg_dist_node, over one connection. */
async function registered(url: string): Promise<number[]> {
  const client = quietClient(pgClientConfig(url, undefined, { connectionTimeoutMillis: 10000 }));
  client.on("error", () => undefined);
  await client.connect();
  return registeredWorkerGroups(client).finally(() => client.end().catch(() => undefined));
}

const CITUS: CitusScaling = { registered, scaleOut, drain: drainWorkerGroups, remove: removeWorkerGroups };

export interface ScalingStepDeps {
  statefulSets: StatefulSetScaler;
  /** Default: citus-workers.ts over SQL. */
  citus?: CitusScaling;
  log?: (line: string) => void;
  sleep?: (ms: number) => Promise<void>;
  /** ms between reads of the pods still there (default 2000). */
  pollMs?: number;
}

function spreadByTable(spread: ShardSpread[]): ScalingStepResult["shards"] {
  return spread.map((s) => ({ tables: s.tables, shards: s.shards }));
}

/** Every problem of `inputs`, naming the field and the value; empty when none. */
export function scalingInputProblems(inputs: ScalingStepInputs): string[] {
  const problems: string[] = [];
  if (!Number.isInteger(inputs.workerGroups) || inputs.workerGroups < 1) problems.push(`workerGroups: got ${JSON.stringify(inputs.workerGroups)}; allowed: an integer of at least 1`);
  if (typeof inputs.coordinatorUrl !== "string" || !inputs.coordinatorUrl.startsWith("postgresql://")) problems.push("coordinatorUrl: allowed: a postgresql:// URL");
  if (typeof inputs.workerStatefulSetPrefix !== "string" || !/^[a-z][-a-z0-9]*$/.test(inputs.workerStatefulSetPrefix)) problems.push(`workerStatefulSetPrefix: got ${JSON.stringify(inputs.workerStatefulSetPrefix)}; allowed: the start of a DNS label`);
  for (const field of ["rebalanceTimeoutSeconds", "stopTimeoutSeconds", "settleSeconds"] as const) {
    if (!(inputs[field] >= 0)) problems.push(`${field}: got ${JSON.stringify(inputs[field])}; allowed: a number of seconds`);
  }
  return problems;
}

/**
 * Scales the Citus worker groups to `inputs.workerGroups` (see the top of this file). Throws
 * ScalingError (final: the Job fails at once, nothing removed) when the rebalance or the drain fails
 * or a going group's pods do not stop; other errors (the coordinator not answering) may be retried
 * by a new pod, which finds where this one stopped (a drained group drains in no time; rows
 * already removed are not registered).
 */
export async function runScalingStep(inputs: ScalingStepInputs, deps: ScalingStepDeps): Promise<ScalingStepResult> {
  const problems = scalingInputProblems(inputs);
  if (problems.length > 0) throw new ScalingInputError(`scaling: invalid input (${problems.length} problems): ${problems.join("; ")}`);
  const log = deps.log ?? (() => undefined);
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const started = Date.now();
  const url = verifyFullUrl(inputs.coordinatorUrl, inputs.ca);
  const options = { timeoutMs: inputs.rebalanceTimeoutSeconds * 1000, log };
  const citus = deps.citus ?? CITUS;
  const registered = await citus.registered(url);
  const going = registered.filter((g) => g > inputs.workerGroups);
  const seconds = () => Math.round((Date.now() - started) / 100) / 10;
  if (going.length === 0) {
    const out = await citus.scaleOut(url, inputs.workerGroups, options);
    return { direction: "out", workerGroups: inputs.workerGroups, registered, moves: out.job.moves, shards: spreadByTable(out.after), drained: [], stopped: [], removed: [], seconds: seconds() };
  }
  // Scale-in. A failed drain throws here: nothing is stopped, the groups take shards again.
  const drain = await citus.drain(url, inputs.workerGroups, options);
  const sets = going.map((g) => `${inputs.workerStatefulSetPrefix}${g}`);
  for (const set of sets) {
    log(`scaling: ${set} drained; scaling it to 0 pods`);
    await deps.statefulSets.scaleToZero(set);
  }
  const deadline = Date.now() + inputs.stopTimeoutSeconds * 1000;
  for (const set of sets) {
    for (;;) {
      const left = await deps.statefulSets.podsLeft(set);
      if (left.length === 0) break;
      if (Date.now() > deadline) {
        throw new ScalingError(`${set}: pods ${left.join(", ")} still there ${inputs.stopTimeoutSeconds} s after its scale went to 0; its shards were moved off, its pg_dist_node rows are kept: run \`pulumi up\` again once they are gone`);
      }
      await sleep(deps.pollMs ?? 2000);
    }
  }
  log(`scaling: ${sets.join(", ")} have no pod; waiting ${inputs.settleSeconds} s before removing their pg_dist_node rows`);
  await sleep(inputs.settleSeconds * 1000);
  const removed = await citus.remove(url, inputs.workerGroups, options);
  return {
    direction: "in",
    workerGroups: inputs.workerGroups,
    registered,
    moves: (drain.job?.moves ?? 0) + (drain.rebalance?.moves ?? 0),
    shards: spreadByTable(drain.after),
    drained: drain.drained,
    stopped: sets,
    removed: removed.removed,
    seconds: seconds(),
  };
}
